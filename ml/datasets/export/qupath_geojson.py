"""QuPath GeoJSON: one FeatureCollection per slide, level-0 px, through ml.interchange.qupath.

Layout: ``qupath/<split>/<slide>.geojson``. ROI polygons and TOI tiles are ``annotation``
objects (classes ``roi``, ``toi``/``non_toi``); cells are ``detection`` objects classified by
the class map (name and colour), with ``measurements`` ``{"Area px^2", "Perimeter px"}``.
"""

from __future__ import annotations

import json
from typing import Any, cast

import shapely

from ml.datasets.export.context import Context, Format
from ml.datasets.export.samples import SlideExport
from ml.geojson import polygons_from_geojson
from ml.interchange import qupath
from ml.interchange.qupath import PathClass
from ml.slide import SlideReader

ROI_CLASS = PathClass("roi", "ROI")


class QuPath(Format):
    name = "qupath"

    def add(self, slide: SlideExport, reader: SlideReader, split: str, ctx: Context) -> None:
        features = [
            qupath.feature(_polygon(rings), object_type=qupath.ANNOTATION, path_class=ROI_CLASS)
            for rings in slide.roi
        ]
        for decision in slide.tiles:
            x0, y0, x1, y1 = decision.tile.box
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
            features.append(
                qupath.feature(
                    _polygon([ring]),
                    object_type=qupath.ANNOTATION,
                    path_class=PathClass(decision.label, decision.label),
                    properties={"tile_col": decision.tile.col, "tile_row": decision.tile.row},
                )
            )
        features.extend(_cell_features(slide, ctx))
        document = qupath.feature_collection(features)
        ctx.sink.write(f"qupath/{split}/{slide.key}.geojson", json.dumps(document).encode())


def _cell_features(slide: SlideExport, ctx: Context) -> list[dict]:
    if not slide.cells:
        return []
    shapes = polygons_from_geojson([cast(Any, c.coordinates) for c in slide.cells])
    areas, perimeters = shapely.area(shapes), shapely.length(shapes)
    out = []
    for cell, area, perimeter in zip(slide.cells, areas, perimeters, strict=True):
        info = ctx.class_map.get(cell.label)
        path_class = PathClass(info.key, info.name, info.colour) if info else None
        extra = {} if cell.annotation_id is None else {"annotation_id": cell.annotation_id}
        out.append(
            qupath.feature(
                _polygon(cell.rings()),
                object_type=qupath.DETECTION,
                path_class=path_class,
                measurements={"Area px^2": float(area), "Perimeter px": float(perimeter)},
                properties=extra,
            )
        )
    return out


def _polygon(rings: object) -> dict:
    return {"type": "Polygon", "coordinates": rings}
