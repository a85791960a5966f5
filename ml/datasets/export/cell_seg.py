"""CELL-SEG: TOI tiles at 1024 x 1024 with one binary mask per cell and an instance mask.

Each tile is read at level 0, ``tile_size`` square (1600), and **resized** to
``cell_seg_size`` (1024, SAM's input), so a tile keeps its whole field of view as in the
pipeline. Masks are rasterised at 1024 straight from the level-0 outlines (pixel centres
inside the polygon), never resized. Cells cut by the tile edge are kept, clipped.

Layout, with ``<tile>`` = ``<slide>_c<col>_r<row>``::

    cell_seg/<split>/images/<tile>.png           RGB uint8, 1024 x 1024
    cell_seg/<split>/masks/<tile>/<n>.png        uint8 0/255, one per cell (n from 0)
    cell_seg/<split>/instances/<tile>.png        uint16, 0 = background, n + 1 = cell n

A pixel claimed by two overlapping outlines goes to the later cell in the instance mask; the
per-cell masks keep both whole.
"""

from __future__ import annotations

import cv2
import numpy as np

from ml.datasets.export.context import Context, Format, cell_boxes, cell_tiles, cells_touching
from ml.datasets.export.images import png, read_tiles, tile_stem
from ml.datasets.export.samples import SlideExport
from ml.geometry import Frame, polygons_to_mask
from ml.slide import SlideReader


class CellSeg(Format):
    name = "cell_seg"

    def add(self, slide: SlideExport, reader: SlideReader, split: str, ctx: Context) -> None:
        size, out = ctx.options.tile_size, ctx.options.cell_seg_size
        tiles = cell_tiles(slide, size)
        if not tiles:
            return
        boxes = cell_boxes(slide.cells)
        for tile, image in read_tiles(reader, tiles, size, workers=ctx.options.reader_workers):
            stem = tile_stem(slide.key, tile)
            resized = cv2.resize(image, (out, out), interpolation=cv2.INTER_AREA)
            frame = Frame(sx=size / out, sy=size / out, ox=tile.x, oy=tile.y)
            instances = np.zeros((out, out), dtype=np.uint16)
            n = 0
            for index in cells_touching(boxes, tile, size):
                mask = polygons_to_mask([slide.cells[index].polygon()], frame, (out, out))
                if not mask.any():
                    continue
                ctx.sink.write(f"cell_seg/{split}/masks/{stem}/{n}.png", png(_u8(mask)))
                instances[mask] = n + 1
                n += 1
            ctx.sink.write(f"cell_seg/{split}/images/{stem}.png", png(resized))
            ctx.sink.write(f"cell_seg/{split}/instances/{stem}.png", png(instances))


def _u8(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.uint8) * 255
