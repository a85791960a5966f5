"""Labelme: one JSON per exported tile, its 1600 x 1600 image alongside.

Layout: ``labelme/<split>/<tile>.json`` and ``labelme/<split>/<tile>.png``. Shapes are the
tile's cells (those whose box overlaps it) in **tile px** (level-0 px minus the tile's corner);
reading one back with ``ml.interchange.parse_file(data, "labelme", offset=(tile.x, tile.y))``
gives the level-0 outlines. The document is written by :func:`ml.interchange.labelme.document`.
"""

from __future__ import annotations

import json

import numpy as np

from ml.datasets.export.context import Context, Format, cell_boxes, cell_tiles, cells_touching
from ml.datasets.export.images import png, read_tiles, tile_stem
from ml.datasets.export.samples import SlideExport
from ml.interchange import labelme
from ml.slide import SlideReader


class Labelme(Format):
    name = "labelme"

    def add(self, slide: SlideExport, reader: SlideReader, split: str, ctx: Context) -> None:
        size = ctx.options.tile_size
        tiles = cell_tiles(slide, size)
        if not tiles:
            return
        boxes = cell_boxes(slide.cells)
        for tile, image in read_tiles(reader, tiles, size, workers=ctx.options.reader_workers):
            stem = tile_stem(slide.key, tile)
            shapes = []
            for index in cells_touching(boxes, tile, size):
                cell = slide.cells[index]
                rings = [
                    (np.asarray(ring, dtype=np.float64)[:, :2] - (tile.x, tile.y)).tolist()
                    for ring in cell.coordinates
                ]
                shapes.append((cell.label, {"type": "Polygon", "coordinates": rings}))
            document = labelme.document(shapes, width=size, height=size, image_path=f"{stem}.png")
            ctx.sink.write(f"labelme/{split}/{stem}.png", png(image))
            ctx.sink.write(f"labelme/{split}/{stem}.json", json.dumps(document).encode())
