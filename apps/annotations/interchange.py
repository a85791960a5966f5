"""The app's side of annotation interchange: files in as items with our label keys, stored
rows out as QuPath GeoJSON or Labelme.

The formats are written and read once, in :mod:`ml.interchange` (the pipeline's GeoJSON goes
through the same writer). This module adds what needs the app: our error class, the mapping of
a file's labels to a project's keys, and the classes (display name, colour) of stored labels.
Nothing here writes to the database: ``services.import_file`` validates and stores the items,
all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ml.interchange import FORMATS, InterchangeError, labelme, qupath
from ml.interchange import parse_file as _parse_file
from ml.interchange.qupath import PathClass

from .errors import ImportFailed
from .models import LabelClass, Stage

__all__ = ["FORMATS", "map_labels", "parse_file", "path_classes", "to_geojson", "to_labelme"]

#: QuPath objectType per stage: drawn regions are annotations, cells are detections.
_OBJECT_TYPES: dict[str, str] = {Stage.ROI: qupath.ANNOTATION, Stage.TOI: qupath.ANNOTATION}


def parse_file(data: bytes, fmt: str, *, offset: tuple[float, float] = (0.0, 0.0)) -> list[dict]:
    """Items ``[{"geometry", "label", "source"}]`` of a file (:func:`ml.interchange.parse_file`).

    Raises :class:`ImportFailed` with the reader's message for a file it cannot read.
    """
    try:
        return _parse_file(data, fmt, offset=offset)
    except InterchangeError as exc:
        raise ImportFailed(exc.message) from exc


def map_labels(
    items: list[dict], *, allowed: Mapping[str, str], label_map: Mapping[str, str]
) -> list[dict]:
    """Replace each file label by our key; unknown labels raise one :class:`ImportFailed`.

    ``allowed`` maps every spelling we accept on our own (key, lower-cased name) to a key;
    ``label_map`` ({their_label: our_key}) wins over it. A label_map target must be allowed.
    """
    bad_targets = sorted({v for v in label_map.values() if v not in allowed.values()})
    if bad_targets:
        raise ImportFailed(
            f"label_map points at unknown or retired labels: {', '.join(bad_targets)}"
        )
    unknown: set[str] = set()
    for item in items:
        theirs = item["label"]
        ours = label_map.get(theirs, allowed.get(theirs, allowed.get(theirs.lower())))
        if ours is None:
            unknown.add(theirs)
        item["label"] = ours
    if unknown:
        listed = ", ".join(repr(u) for u in sorted(unknown))
        raise ImportFailed(
            f"unknown labels: {listed}; map them with label_map {{their_label: our_key}}"
        )
    return items


def path_classes(project_id: int) -> dict[str, PathClass]:
    """Every class of the project's label schema (retired ones too), by key."""
    rows = LabelClass.objects.filter(project_id=project_id).values_list("key", "name", "colour")
    return {key: PathClass(key, name, colour) for key, name, colour in rows}


def to_geojson(
    rows: Iterable[Mapping[str, Any]], *, stage: str, classes: Mapping[str, PathClass]
) -> dict:
    """A QuPath-readable FeatureCollection of stored annotation rows (level-0 px).

    ``rows`` carry id, geometry, label, version and tile_col/tile_row. A label outside
    ``classes`` (a TOI tile's ``toi``/``non_toi``) is its own display name, with no colour.
    """
    object_type = _OBJECT_TYPES.get(stage, qupath.DETECTION)
    features = []
    for row in rows:
        label = row["label"]
        extra: dict[str, Any] = {"id": row["id"], "version": row["version"]}
        if row["tile_col"] is not None:
            extra["tile_col"], extra["tile_row"] = row["tile_col"], row["tile_row"]
        features.append(
            qupath.feature(
                row["geometry"],
                object_type=object_type,
                path_class=(classes.get(label) or PathClass(label, label)) if label else None,
                properties=extra,
            )
        )
    return qupath.feature_collection(features)


def to_labelme(rows: Iterable[Mapping[str, Any]], *, width: int, height: int, name: str) -> dict:
    """A per-slide Labelme document of stored rows (level-0 px; holes are dropped)."""
    return labelme.document(
        ((row["label"], row["geometry"]) for row in rows),
        width=width,
        height=height,
        image_path=name,
    )
