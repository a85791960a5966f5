"""Labelme JSON and QuPath GeoJSON: reading them into annotation items, writing a set out.

Reading returns plain items ``{"geometry", "label", "source"}`` in level-0 slide px; the label
is still the file's own label, mapped to ours by :func:`map_labels`. Nothing here touches the
database: ``services.import_file`` validates and stores the items, all or nothing.

- Labelme (the tool the published annotators used): ``{"shapes": [{"label", "points",
  "shape_type"}], "imageWidth", "imageHeight"}`` in image px. A per-tile file is placed on the
  slide with ``offset`` (the tile's level-0 top-left); a per-slide file uses offset (0, 0).
- QuPath GeoJSON: a FeatureCollection, a bare list of Features or one Feature, with Polygon or
  MultiPolygon geometries and the class in ``properties.classification.name``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ImportFailed

FORMATS = ("labelme", "geojson")
# A Labelme circle becomes a polygon with this many vertices.
_CIRCLE_VERTICES = 32


def parse_file(data: bytes, fmt: str, *, offset: tuple[float, float] = (0.0, 0.0)) -> list[dict]:
    """Items ``[{"geometry": GeoJSON Polygon, "label": str, "source": str}]`` from a file.

    ``offset`` (level-0 px) is added to every point. Raises :class:`ImportFailed` for a file
    that is not JSON of the expected shape, or holds a shape this app cannot store.
    """
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFailed(f"the file is not JSON: {exc}") from exc
    if fmt == "labelme":
        items = _labelme_items(document)
    elif fmt == "geojson":
        items = _geojson_items(document)
    else:
        raise ImportFailed(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not items:
        raise ImportFailed("the file holds no shapes")
    dx, dy = offset
    for item in items:
        item["geometry"] = _shifted(item["geometry"], dx, dy)
    return items


def _labelme_items(document: Any) -> list[dict]:
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise ImportFailed('not a Labelme file: no "shapes" list')
    items = []
    for index, shape in enumerate(document["shapes"]):
        where = f"shape {index}"
        if not isinstance(shape, dict) or not isinstance(shape.get("points"), list):
            raise ImportFailed(f'{where}: no "points" list')
        kind = shape.get("shape_type") or "polygon"
        ring = _labelme_ring(kind, shape["points"], where)
        items.append(
            {
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "label": str(shape.get("label") or ""),
                "source": where,
            }
        )
    return items


def _labelme_ring(kind: str, points: list[Any], where: str) -> list[Any]:
    if kind == "polygon":
        return list(points)
    if kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    if kind == "circle" and len(points) == 2:
        (cx, cy), (px, py) = points
        r = math.hypot(px - cx, py - cy)
        steps = range(_CIRCLE_VERTICES)
        return [
            [
                cx + r * math.cos(2 * math.pi * i / _CIRCLE_VERTICES),
                cy + r * math.sin(2 * math.pi * i / _CIRCLE_VERTICES),
            ]
            for i in steps
        ]
    raise ImportFailed(f"{where}: a {kind!r} shape with {len(points)} point(s) is not an area")


def _geojson_items(document: Any) -> list[dict]:
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
    elif isinstance(document, dict) and document.get("type") == "Feature":
        features = [document]
    else:
        features = document
    if not isinstance(features, list):
        raise ImportFailed("not GeoJSON: expected a FeatureCollection, a Feature or a list of them")
    items = []
    for index, feature in enumerate(features):
        where = f"feature {index}"
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise ImportFailed(f"{where}: not a Feature with a geometry")
        label = _geojson_label(feature.get("properties") or {})
        for part, polygon in enumerate(_polygons_of(feature["geometry"], where)):
            source = where if part == 0 else f"{where} part {part}"
            items.append({"geometry": polygon, "label": label, "source": source})
    return items


def _polygons_of(geometry: Mapping[str, Any], where: str) -> Iterable[dict]:
    kind = geometry.get("type")
    if kind == "Polygon":
        return [{"type": "Polygon", "coordinates": geometry.get("coordinates")}]
    if kind == "MultiPolygon" and isinstance(geometry.get("coordinates"), list):
        return [{"type": "Polygon", "coordinates": c} for c in geometry["coordinates"]]
    raise ImportFailed(f"{where}: a {kind} is not an area (Polygon or MultiPolygon)")


def _geojson_label(properties: Mapping[str, Any]) -> str:
    classification = properties.get("classification")
    if isinstance(classification, dict) and classification.get("name"):
        return str(classification["name"])
    return str(properties.get("label") or "")


def _shifted(geometry: dict, dx: float, dy: float) -> dict:
    if not dx and not dy:
        return geometry
    rings = geometry.get("coordinates")
    try:
        shifted = [[[p[0] + dx, p[1] + dy] for p in ring] for ring in rings]
    except (TypeError, IndexError, KeyError) as exc:
        raise ImportFailed("coordinates must be lists of [x, y] numbers") from exc
    return {"type": "Polygon", "coordinates": shifted}


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


def to_geojson(rows: Iterable[Mapping[str, Any]]) -> dict:
    """A QuPath-readable FeatureCollection; ``classification.name`` carries our label key."""
    features = []
    for row in rows:
        properties: dict[str, Any] = {
            "objectType": "annotation",
            "id": row["id"],
            "label": row["label"],
            "version": row["version"],
        }
        if row["label"]:
            properties["classification"] = {"name": row["label"]}
        if row["tile_col"] is not None:
            properties["tile_col"], properties["tile_row"] = row["tile_col"], row["tile_row"]
        features.append({"type": "Feature", "geometry": row["geometry"], "properties": properties})
    return {"type": "FeatureCollection", "features": features}


def to_labelme(rows: Iterable[Mapping[str, Any]], *, width: int, height: int, name: str) -> dict:
    """A per-slide Labelme document (level-0 px); holes are dropped, as Labelme has none."""
    shapes = [
        {
            "label": row["label"],
            "points": row["geometry"]["coordinates"][0][:-1],
            "group_id": None,
            "shape_type": "polygon",
            "flags": {},
        }
        for row in rows
    ]
    return {
        "version": "5.2.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": name,
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }
