"""QuPath GeoJSON and Labelme: the one writer and reader of each, and their round trips."""

from __future__ import annotations

import json

import pytest

from ml.classes import DEFAULT_CLASSES
from ml.interchange import InterchangeError, labelme, parse_file, qupath
from ml.interchange.qupath import PathClass

SQUARE = {"type": "Polygon", "coordinates": [[[10, 10], [50, 10], [50, 50], [10, 50], [10, 10]]]}
BLAST = next(c for c in DEFAULT_CLASSES if c.key == "myeloblast")


def _as_file(document: dict) -> bytes:
    return json.dumps(document).encode()


def test_a_classified_detection_carries_name_colour_and_key() -> None:
    feature = qupath.feature(
        SQUARE,
        object_type=qupath.DETECTION,
        path_class=PathClass(BLAST.key, BLAST.name, BLAST.colour),
        feature_id="f-1",
        measurements={"area_px": 1600.0},
        properties={"id": 7},
    )
    assert feature["id"] == "f-1" and feature["geometry"] == SQUARE
    props = feature["properties"]
    assert props["objectType"] == "detection" and props["isLocked"] is False
    assert props["classification"] == {"name": "Myeloblast", "color": [0xBE, 0x00, 0x32]}
    assert props["class_key"] == "myeloblast"
    assert props["measurements"] == {"area_px": 1600.0} and props["id"] == 7


def test_an_unclassified_region_has_no_classification() -> None:
    feature = qupath.feature(SQUARE, object_type=qupath.ANNOTATION, path_class=None)
    assert feature["properties"] == {"objectType": "annotation", "isLocked": False}
    with pytest.raises(ValueError, match="objectType"):
        qupath.feature(SQUARE, object_type="cell", path_class=None)


def test_what_the_writer_writes_the_reader_reads_back_by_key() -> None:
    # Two classes share a display name: only the key tells them apart on the way back.
    features = [
        qupath.feature(SQUARE, object_type=qupath.DETECTION, path_class=PathClass(k, "Blast"))
        for k in ("myeloblast", "promyelocyte")
    ]
    items = parse_file(_as_file(qupath.feature_collection(features)), "geojson")
    assert [i["label"] for i in items] == ["myeloblast", "promyelocyte"]
    assert items[0]["geometry"] == SQUARE and items[1]["source"] == "feature 1"


def test_a_file_saved_by_qupath_is_read_by_classification_name() -> None:
    # QuPath keeps classification and drops properties it does not know, such as class_key.
    saved = {
        "type": "Feature",
        "geometry": {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]] * 2},
        "properties": {"objectType": "annotation", "classification": {"name": "Plasma cell"}},
    }
    items = parse_file(_as_file(saved), "geojson", offset=(100, 0))
    assert [(i["label"], i["source"]) for i in items] == [
        ("Plasma cell", "feature 0"),
        ("Plasma cell", "feature 0 part 1"),
    ]
    assert items[0]["geometry"]["coordinates"][0][0] == [110, 10]


def test_labelme_written_and_read_back_keeps_labels_and_points() -> None:
    document = labelme.document([("lymphocyte", SQUARE)], width=100, height=80, image_path="s")
    assert document["imageWidth"] == 100 and document["shapes"][0]["points"] == [
        [10, 10],
        [50, 10],
        [50, 50],
        [10, 50],
    ]
    (item,) = parse_file(_as_file(document), "labelme")
    assert item["label"] == "lymphocyte"
    assert item["geometry"]["coordinates"][0] == document["shapes"][0]["points"]


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"\x89PNG", "labelme", "not JSON"),
        (b'{"type": "FeatureCollection", "features": []}', "geojson", "holds no shapes"),
        (b'{"type": "FeatureCollection"}', "labelme", '"shapes"'),
        (b"[]", "shapefile", "unknown format"),
        (
            b'[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}]',
            "geojson",
            "a Point is not an area",
        ),
    ],
)
def test_a_file_that_cannot_be_read_says_why(data: bytes, fmt: str, message: str) -> None:
    with pytest.raises(InterchangeError, match=message):
        parse_file(data, fmt)
