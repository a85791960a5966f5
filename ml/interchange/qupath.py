"""QuPath GeoJSON: the one writer of a Feature, and the reader.

A written Feature (level-0 px, what QuPath 0.4+ imports)::

    {"type": "Feature", "id": <optional>, "geometry": <GeoJSON Polygon>,
     "properties": {"objectType": "annotation" | "detection", "isLocked": false,
                    "classification": {"name": <display name>, "color": [r, g, b]},
                    "class_key": <our stable key>, "measurements": {...}, ...}}

QuPath shows ``classification.name``; ``class_key`` keeps our key, because display names may
repeat or be renamed. QuPath drops properties it does not know when it saves, so a file edited
there comes back with names only, and names are matched then.

The reader takes a FeatureCollection, a bare list of Features or one Feature, with Polygon or
MultiPolygon geometries (one item per polygon). An item's ``label`` is, in order of preference,
``properties.class_key``, ``properties.classification.name`` and ``properties.label``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ml.interchange.errors import InterchangeError

#: A region someone drew (ROI, a TOI tile) and an object a detector (or a cell tracer) made.
ANNOTATION, DETECTION = "annotation", "detection"


@dataclass(frozen=True)
class PathClass:
    """A QuPath classification: our stable ``key``, its display ``name``, a ``#rrggbb`` colour
    (``None``: QuPath picks one)."""

    key: str
    name: str
    colour: str | None = None


def rgb(colour: str) -> list[int]:
    """``"#rrggbb"`` -> ``[r, g, b]`` in 0..255, QuPath's ``classification.color``."""
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def feature(
    geometry: Mapping[str, Any] | None,
    *,
    object_type: str,
    path_class: PathClass | None,
    feature_id: str | None = None,
    measurements: Mapping[str, float] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One QuPath Feature: the layout in the module docstring.

    ``path_class`` ``None`` writes no classification (unclassified, as QuPath writes it);
    ``properties`` are extra fields of ours (ids, versions, tile indices) written after QuPath's.
    """
    if object_type not in (ANNOTATION, DETECTION):
        raise ValueError(f"objectType must be {ANNOTATION!r} or {DETECTION!r}, not {object_type!r}")
    props: dict[str, Any] = {"objectType": object_type, "isLocked": False}
    if path_class is not None:
        classification: dict[str, Any] = {"name": path_class.name}
        if path_class.colour:
            classification["color"] = rgb(path_class.colour)
        props["classification"] = classification
        props["class_key"] = path_class.key
    if measurements is not None:
        props["measurements"] = dict(measurements)
    props.update(properties or {})
    out: dict[str, Any] = {"type": "Feature"}
    if feature_id is not None:
        out["id"] = feature_id
    out["geometry"] = geometry
    out["properties"] = props
    return out


def feature_collection(features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``features``."""
    return {"type": "FeatureCollection", "features": list(features)}


def read(document: Any) -> list[dict[str, Any]]:
    """Items ``{"geometry", "label", "source"}``, one per polygon; see the module docstring."""
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
    elif isinstance(document, dict) and document.get("type") == "Feature":
        features = [document]
    else:
        features = document
    if not isinstance(features, list):
        raise InterchangeError(
            "not GeoJSON: expected a FeatureCollection, a Feature or a list of them"
        )
    items = []
    for index, item in enumerate(features):
        where = f"feature {index}"
        if not isinstance(item, dict) or not isinstance(item.get("geometry"), dict):
            raise InterchangeError(f"{where}: not a Feature with a geometry")
        label = label_of(item.get("properties") or {})
        for part, polygon in enumerate(_polygons_of(item["geometry"], where)):
            source = where if part == 0 else f"{where} part {part}"
            items.append({"geometry": polygon, "label": label, "source": source})
    return items


def label_of(properties: Mapping[str, Any]) -> str:
    """The file's label of a Feature: ``class_key``, else ``classification.name``, else
    ``label``; "" when it has none."""
    if properties.get("class_key"):
        return str(properties["class_key"])
    classification = properties.get("classification")
    if isinstance(classification, dict) and classification.get("name"):
        return str(classification["name"])
    return str(properties.get("label") or "")


def _polygons_of(geometry: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    kind = geometry.get("type")
    if kind == "Polygon":
        return [{"type": "Polygon", "coordinates": geometry.get("coordinates")}]
    if kind == "MultiPolygon" and isinstance(geometry.get("coordinates"), list):
        return [{"type": "Polygon", "coordinates": c} for c in geometry["coordinates"]]
    raise InterchangeError(f"{where}: a {kind} is not an area (Polygon or MultiPolygon)")
