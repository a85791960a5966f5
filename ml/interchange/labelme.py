"""Labelme JSON, the tool the published annotators used: reading shapes, writing a document.

A document is ``{"shapes": [{"label", "points", "shape_type"}], "imageWidth", "imageHeight"}``
in image px: per tile (placed on the slide with an offset) or per slide (offset (0, 0)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ml.interchange.errors import InterchangeError

#: A Labelme circle becomes a polygon with this many vertices.
CIRCLE_VERTICES = 32
#: The Labelme version our documents say they are.
VERSION = "5.2.1"


def read(document: Any) -> list[dict[str, Any]]:
    """Items ``{"geometry", "label", "source"}`` of every shape, in the document's px.

    Polygons, rectangles and circles are areas; anything else raises :class:`InterchangeError`.
    """
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise InterchangeError('not a Labelme file: no "shapes" list')
    items = []
    for index, shape in enumerate(document["shapes"]):
        where = f"shape {index}"
        if not isinstance(shape, dict) or not isinstance(shape.get("points"), list):
            raise InterchangeError(f'{where}: no "points" list')
        kind = shape.get("shape_type") or "polygon"
        ring = _ring(kind, shape["points"], where)
        items.append(
            {
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "label": str(shape.get("label") or ""),
                "source": where,
            }
        )
    return items


def _ring(kind: str, points: list[Any], where: str) -> list[Any]:
    if kind == "polygon":
        return list(points)
    if kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    if kind == "circle" and len(points) == 2:
        (cx, cy), (px, py) = points
        r = math.hypot(px - cx, py - cy)
        return [
            [
                cx + r * math.cos(2 * math.pi * i / CIRCLE_VERTICES),
                cy + r * math.sin(2 * math.pi * i / CIRCLE_VERTICES),
            ]
            for i in range(CIRCLE_VERTICES)
        ]
    raise InterchangeError(f"{where}: a {kind!r} shape with {len(points)} point(s) is not an area")


def document(
    shapes: Iterable[tuple[str, Mapping[str, Any]]], *, width: int, height: int, image_path: str
) -> dict[str, Any]:
    """A per-slide Labelme document from ``(label, GeoJSON Polygon)`` pairs in level-0 px.

    Holes are dropped (Labelme has none); each exterior ring is written open, as Labelme does.
    """
    return {
        "version": VERSION,
        "flags": {},
        "shapes": [
            {
                "label": label,
                "points": geometry["coordinates"][0][:-1],
                "group_id": None,
                "shape_type": "polygon",
                "flags": {},
            }
            for label, geometry in shapes
        ],
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }
