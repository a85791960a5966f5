"""Import (Labelme per tile and per slide, QuPath GeoJSON) and export, with round trips."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.annotations.models import Annotation, LabelClass
from tests.annotations.conftest import add_cell, own_set, polygon

pytestmark = pytest.mark.django_db


def _import(api, set_id, document, fmt, **fields):
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    upload = SimpleUploadedFile("annotations.json", data, content_type="application/json")
    return api.post(
        f"/api/annotation-sets/{set_id}/import/",
        {"file": upload, "format": fmt, **fields},
        format="multipart",
    )


def _labelme(shapes, width=1600, height=1600):
    return {
        "version": "4.5.6",
        "flags": {},
        "imagePath": "tile_1_0.jpg",
        "imageData": None,
        "imageWidth": width,
        "imageHeight": height,
        "shapes": [
            {"label": label, "points": points, "group_id": None, "shape_type": kind, "flags": {}}
            for label, points, kind in shapes
        ],
    }


def _stored(set_id):
    return list(
        Annotation.objects.filter(set_id=set_id).order_by("id").values_list("label", "geometry")
    )


def test_labelme_per_tile_lands_at_the_tile_offset(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    document = _labelme(
        [
            ("lymphocyte", [[10, 20], [60, 20], [60, 80], [10, 80]], "polygon"),
            ("basophil", [[100, 100], [150, 140]], "rectangle"),
        ]
    )
    response = _import(api, set_id, document, "labelme", offset_x=1600, offset_y=800)
    assert response.status_code == 201 and response.json()["imported"] == 2
    (label_a, geom_a), (label_b, geom_b) = _stored(set_id)
    assert label_a == "lymphocyte"
    assert geom_a["coordinates"][0][:4] == [[1610, 820], [1660, 820], [1660, 880], [1610, 880]]
    assert label_b == "basophil"
    assert geom_b["coordinates"][0][:4] == [[1700, 900], [1750, 900], [1750, 940], [1700, 940]]


def test_labelme_labels_match_class_names_in_any_case(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    document = _labelme([("Segmented Neutrophil", [[10, 20], [60, 20], [60, 80]], "polygon")])
    assert _import(api, set_id, document, "labelme").status_code == 201
    assert _stored(set_id)[0][0] == "segmented_neutrophil"


def test_unknown_labels_are_listed_and_nothing_is_imported(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    document = _labelme(
        [
            ("lymphocyte", [[10, 20], [60, 20], [60, 80]], "polygon"),
            ("blast", [[110, 20], [160, 20], [160, 80]], "polygon"),
            ("neut", [[210, 20], [260, 20], [260, 80]], "polygon"),
        ]
    )
    refused = _import(api, set_id, document, "labelme")
    assert refused.status_code == 400
    assert "unknown labels: 'blast', 'neut'" in refused.json()["detail"]
    assert _stored(set_id) == []
    mapped = _import(
        api,
        set_id,
        document,
        "labelme",
        label_map=json.dumps({"blast": "myeloblast", "neut": "segmented_neutrophil"}),
    )
    assert mapped.status_code == 201
    assert [label for label, _ in _stored(set_id)] == [
        "lymphocyte",
        "myeloblast",
        "segmented_neutrophil",
    ]


def test_label_map_to_an_unknown_key_is_refused(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    document = _labelme([("blast", [[10, 20], [60, 20], [60, 80]], "polygon")])
    response = _import(api, set_id, document, "labelme", label_map=json.dumps({"blast": "dragon"}))
    assert response.status_code == 400 and "dragon" in response.json()["detail"]


def test_a_bad_file_imports_nothing_and_says_why(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    not_json = _import(api, set_id, b"\x89PNG not json", "labelme")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["detail"]
    not_labelme = _import(api, set_id, {"type": "FeatureCollection", "features": []}, "labelme")
    assert not_labelme.status_code == 400 and "shapes" in not_labelme.json()["detail"]
    one_bad = _labelme(
        [
            ("lymphocyte", [[10, 20], [60, 20], [60, 80]], "polygon"),
            ("lymphocyte", [[0, 0], [100, 100], [100, 0], [0, 100]], "polygon"),
            ("lymphocyte", [[5, 5]], "point"),
        ]
    )
    point = _import(api, set_id, one_bad, "labelme")
    assert point.status_code == 400 and "shape 2: a 'point' shape" in point.json()["detail"]
    one_bad["shapes"].pop()
    bowtie = _import(api, set_id, one_bad, "labelme")
    assert bowtie.status_code == 400
    assert bowtie.json()["errors"] == [
        {"index": 1, "source": "shape 1", "detail": bowtie.json()["errors"][0]["detail"]}
    ]
    assert "Self-intersection" in bowtie.json()["errors"][0]["detail"]
    assert _stored(set_id) == []


def test_qupath_geojson_with_classification_and_multipolygon(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    square = [[[100, 100], [200, 100], [200, 200], [100, 200], [100, 100]]]
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "a1",
                "geometry": {"type": "Polygon", "coordinates": square},
                "properties": {
                    "objectType": "annotation",
                    "classification": {"name": "Plasma cell", "colorRGB": -3670016},
                },
            },
            {
                "type": "Feature",
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[300, 300], [340, 300], [340, 340], [300, 340], [300, 300]]],
                        [[[400, 400], [440, 400], [440, 440], [400, 440], [400, 400]]],
                    ],
                },
                "properties": {"objectType": "detection", "classification": {"name": "eosinophil"}},
            },
        ],
    }
    response = _import(api, set_id, document, "geojson")
    assert response.status_code == 201 and response.json()["imported"] == 3
    stored = _stored(set_id)
    assert [label for label, _ in stored] == ["plasma_cell", "eosinophil", "eosinophil"]
    assert stored[0][1]["coordinates"] == square


def test_geojson_point_features_are_refused(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    document = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]}, "properties": {}}
    ]
    response = _import(api, set_id, document, "geojson")
    assert response.status_code == 400 and "a Point is not an area" in response.json()["detail"]


@pytest.mark.parametrize("fmt", ["geojson", "labelme"])
def test_export_then_import_round_trips(as_user, member, partner, slide, fmt):
    api = as_user(member)
    source = own_set(api, slide, "cell")
    originals = [
        add_cell(api, source, 300, 400, label="myeloblast"),
        add_cell(api, source, 1200.5, 2000.25, label="late_erythroblast"),
    ]
    add_cell(api, source, 700, 700, label="lymphocyte")
    api.delete(f"/api/annotations/{Annotation.objects.order_by('-id').first().pk}/?version=1")
    exported = api.get(f"/api/annotation-sets/{source}/export/?format={fmt}")
    assert exported.status_code == 200 and "attachment" in exported["Content-Disposition"]

    other = as_user(partner)
    target = own_set(other, slide, "cell")
    imported = _import(other, target, exported.content, fmt)
    assert imported.status_code == 201 and imported.json()["imported"] == 2
    assert _stored(target) == [(a["label"], a["geometry"]) for a in originals]
    again = other.get(f"/api/annotation-sets/{target}/export/?format={fmt}").json()
    first = json.loads(exported.content)
    key = "features" if fmt == "geojson" else "shapes"
    strip = (lambda f: f["geometry"]) if fmt == "geojson" else (lambda s: (s["label"], s["points"]))
    assert [strip(x) for x in again[key]] == [strip(x) for x in first[key]]


def test_export_names_and_colours_classes_for_qupath_and_keeps_their_keys(
    as_user, member, partner, slide
):
    api = as_user(member)
    source = own_set(api, slide, "cell")
    add_cell(api, source, 300, 400, label="myeloblast")
    add_cell(api, source, 900, 400, label="promyelocyte")
    # Display names may repeat (and be renamed); the key is what comes back.
    LabelClass.objects.filter(project=slide.project, key__in=["myeloblast", "promyelocyte"]).update(
        name="Blast"
    )
    exported = api.get(f"/api/annotation-sets/{source}/export/?format=geojson")
    features = json.loads(exported.content)["features"]
    colours = dict(LabelClass.objects.filter(project=slide.project).values_list("key", "colour"))
    for feature, key in zip(features, ["myeloblast", "promyelocyte"], strict=True):
        props = feature["properties"]
        assert props["objectType"] == "detection" and props["class_key"] == key
        assert props["classification"]["name"] == "Blast"
        hex_colour = "#" + "".join(f"{c:02x}" for c in props["classification"]["color"])
        assert hex_colour == colours[key]
    target = own_set(as_user(partner), slide, "cell")
    assert _import(as_user(partner), target, exported.content, "geojson").status_code == 201
    assert [label for label, _ in _stored(target)] == ["myeloblast", "promyelocyte"]


def test_roi_export_is_unclassified_qupath_annotations(as_user, member, slide):
    api = as_user(member)
    roi = own_set(api, slide, "roi")
    add_cell(api, roi, 500, 500, label="")
    (feature,) = api.get(f"/api/annotation-sets/{roi}/export/?format=geojson").json()["features"]
    assert feature["properties"]["objectType"] == "annotation"
    assert "classification" not in feature["properties"]


def test_roi_import_ignores_labels_and_toi_import_snaps_to_tiles(as_user, member, slide):
    api = as_user(member)
    roi = own_set(api, slide, "roi")
    assert (
        _import(
            api,
            roi,
            _labelme([("junction", [[10, 10], [900, 10], [900, 900]], "polygon")]),
            "labelme",
        ).status_code
        == 201
    )
    assert _stored(roi)[0][0] == ""
    toi = own_set(api, slide, "toi")
    tiles = _labelme(
        [
            ("toi", [[0, 0], [1600, 0], [1600, 1600], [0, 1600]], "polygon"),
            ("non_toi", [[1650, 1700], [2200, 1700], [2200, 2900]], "polygon"),
        ]
    )
    assert _import(api, toi, tiles, "labelme").status_code == 201
    cells = (
        Annotation.objects.filter(set_id=toi)
        .order_by("id")
        .values_list("label", "tile_col", "tile_row")
    )
    assert list(cells) == [("toi", 0, 0), ("non_toi", 1, 1)]


def test_cells_outside_the_slide_after_offset_are_refused(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    document = _labelme([("lymphocyte", polygon(100, 100)["coordinates"][0], "polygon")])
    response = _import(api, set_id, document, "labelme", offset_x=2200, offset_y=0)
    assert (
        response.status_code == 400
        and "outside the slide" in response.json()["errors"][0]["detail"]
    )
