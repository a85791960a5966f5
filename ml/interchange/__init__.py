"""Annotation interchange formats, read and written in one place: QuPath GeoJSON and Labelme.

Readers turn a file into plain items ``{"geometry": GeoJSON Polygon, "label": str, "source":
str}`` in level-0 slide px; ``label`` is the file's own label (mapping it to a project's keys is
the caller's business) and ``source`` names the shape in the file ("feature 3 part 1") for error
messages. Writers take level-0 px polygons and the class key, display name and colour.

Nothing here touches a database; a file that cannot be read raises :class:`InterchangeError`
with a message for the user.
"""

from __future__ import annotations

import json
from typing import Any

from ml.interchange import labelme, qupath
from ml.interchange.errors import InterchangeError

FORMATS = ("labelme", "geojson")
__all__ = ["FORMATS", "InterchangeError", "labelme", "parse_file", "qupath"]


def parse_file(
    data: bytes, fmt: str, *, offset: tuple[float, float] = (0.0, 0.0)
) -> list[dict[str, Any]]:
    """Items ``[{"geometry", "label", "source"}]`` from a Labelme or QuPath GeoJSON file.

    ``offset`` (level-0 px) is added to every point: a per-tile Labelme file is placed at its
    tile's top-left. Raises :class:`InterchangeError` for a file that is not JSON of the
    expected shape, holds a shape that is not an area, or holds no shapes.
    """
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InterchangeError(f"the file is not JSON: {exc}") from exc
    if fmt == "labelme":
        items = labelme.read(document)
    elif fmt == "geojson":
        items = qupath.read(document)
    else:
        raise InterchangeError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not items:
        raise InterchangeError("the file holds no shapes")
    dx, dy = offset
    for item in items:
        item["geometry"] = _shifted(item["geometry"], dx, dy)
    return items


def _shifted(geometry: dict[str, Any], dx: float, dy: float) -> dict[str, Any]:
    if not dx and not dy:
        return geometry
    rings = geometry.get("coordinates") or []
    try:
        shifted = [[[p[0] + dx, p[1] + dy] for p in ring] for ring in rings]
    except (TypeError, IndexError, KeyError) as exc:
        raise InterchangeError("coordinates must be lists of [x, y] numbers") from exc
    return {"type": "Polygon", "coordinates": shifted}
