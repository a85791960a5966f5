"""CELL-CLS-LABELED and CELL-CLS-UNLABELED: square crops of cells, read from the slide.

Each crop is :func:`ml.crops.crop_square` of the cell's box with the box offset,
resized to ``crop_size``: the very function the classifier crops with, so training sees what
inference sees. Cells are read grouped by the grid tile holding their box centre, one window
per tile (the union of its cells' squares, clipped to the slide), a few windows ahead in
threads: memory stays at a few tiles whatever the slide.

Layout: ``cell_cls_labeled/<split>/<class key>/<slide>_<n>.png`` (an ImageFolder; cells with
no label are left out) and ``cell_cls_unlabeled/<split>/<slide>_<n>.png`` (every cell); ``n``
is the annotation id when known, else the cell's index in the slide's list.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ml.crops import crop_square
from ml.datasets.export.context import Context, Format, cell_boxes
from ml.datasets.export.images import png
from ml.datasets.export.samples import SlideExport
from ml.geometry import square_box
from ml.slide import SlideReader
from ml.stages.reader import Window, stream_windows

LABELED, UNLABELED = "cell_cls_labeled", "cell_cls_unlabeled"
#: Crops queued for encoding at most.
_ENCODE_AHEAD = 64


class CellCrops(Format):
    """Both crop formats; one read of each cell serves whichever of them is selected."""

    name = "cell_cls"

    def __init__(self, *, labeled: bool, unlabeled: bool) -> None:
        self.labeled = labeled
        self.unlabeled = unlabeled

    def add(self, slide: SlideExport, reader: SlideReader, split: str, ctx: Context) -> None:
        # PNG encoding is most of the CPU; OpenCV releases the GIL, so threads encode while
        # this one writes. At most ``_ENCODE_AHEAD`` crops wait, which bounds memory.
        workers = max(1, ctx.options.reader_workers)
        with ThreadPoolExecutor(workers, thread_name_prefix="png") as pool:
            pending: deque[tuple[int, Future[bytes]]] = deque()
            for index, crop in iter_crops(slide, reader, ctx):
                pending.append((index, pool.submit(png, crop)))
                if len(pending) >= _ENCODE_AHEAD:
                    self._write(slide, split, ctx, *pending.popleft())
            while pending:
                self._write(slide, split, ctx, *pending.popleft())

    def _write(
        self, slide: SlideExport, split: str, ctx: Context, index: int, encoded: Future[bytes]
    ) -> None:
        cell = slide.cells[index]
        n = cell.annotation_id if cell.annotation_id is not None else index
        data = encoded.result()
        if self.labeled and cell.label:
            ctx.sink.write(f"{LABELED}/{split}/{cell.label}/{slide.key}_{n}.png", data)
        if self.unlabeled:
            ctx.sink.write(f"{UNLABELED}/{split}/{slide.key}_{n}.png", data)


def iter_crops(
    slide: SlideExport, reader: SlideReader, ctx: Context
) -> Iterator[tuple[int, np.ndarray]]:
    """``(cell index, (S, S, 3) uint8 crop)`` for every cell, grouped by tile."""
    if not slide.cells:
        return
    options = ctx.options
    boxes = cell_boxes(slide.cells)
    windows = _windows(boxes, slide, options.tile_size, options.box_offset)
    for window, image in stream_windows(reader, windows, workers=options.reader_workers):
        for index in window.key:
            local = boxes[index] - np.array([window.x, window.y, window.x, window.y])
            yield int(index), crop_square(image, local, options.box_offset, options.crop_size)


def _windows(boxes: np.ndarray, slide: SlideExport, tile_size: int, offset: float) -> list[Window]:
    """One window per occupied tile, keyed by the indices of its cells."""
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    cols = np.floor(cx / tile_size).astype(np.int64)
    rows = np.floor(cy / tile_size).astype(np.int64)
    order = np.lexsort((cols, rows))
    tile_ids = rows[order] * (1 << 32) + cols[order]
    starts = np.flatnonzero(np.r_[True, tile_ids[1:] != tile_ids[:-1]])
    squares = np.array([square_box(b, offset) for b in boxes], dtype=np.int64).reshape(-1, 4)
    windows = []
    for members in np.split(order, starts[1:]):
        x0, y0 = squares[members, :2].min(axis=0)
        x1, y1 = squares[members, 2:].max(axis=0)
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        x1, y1 = min(int(x1), slide.width), min(int(y1), slide.height)
        windows.append(Window(tuple(members.tolist()), x0, y0, x1 - x0, y1 - y0))
    return windows
