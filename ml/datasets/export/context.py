"""What every format writer shares: the options, the class map, the sink, and tile choice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ml.datasets.export.samples import TOI, CellSample, ClassInfo, SlideExport
from ml.datasets.export.sink import Sink
from ml.geometry import Tile, tile_grid
from ml.slide import SlideReader

#: The classifier's box offset at inference (``ml.pipeline.PipelineConfig.box_offset``); the
#: export crops with the same margin so training sees what inference sees.
DEFAULT_BOX_OFFSET = 0.15


@dataclass(frozen=True)
class ExportOptions:
    """Sizes of the written images.

    ``tile_size``: the TOI grid (level-0 px). ``cell_seg_size``: CELL-SEG tiles are read at
    ``tile_size`` and **resized** to this (1600 -> 1024, SAM's input; the masks are rasterised
    at 1024 from the level-0 outlines, not resized). ``crop_size``/``box_offset``: CELL-CLS
    crops, made by :func:`ml.crops.crop_square`, the classifier's own crop.
    """

    tile_size: int = 1600
    cell_seg_size: int = 1024
    crop_size: int = 224
    box_offset: float = DEFAULT_BOX_OFFSET
    thumbnail_factor: float = 100.0
    reader_workers: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    sink: Sink
    options: ExportOptions
    class_map: Mapping[str, ClassInfo]

    @property
    def category_ids(self) -> dict[str, int]:
        """Class key -> 1-based id, in class-map order (COCO's category ids)."""
        return {key: i + 1 for i, key in enumerate(self.class_map)}


class Format:
    """One output format. ``add`` writes a slide's files; ``finish`` writes cross-slide ones."""

    name: str = ""

    def add(self, slide: SlideExport, reader: SlideReader, split: str, ctx: Context) -> None:
        raise NotImplementedError

    def finish(self, ctx: Context) -> None:
        """Called once after every slide (COCO writes its per-split files here)."""


def cell_tiles(slide: SlideExport, tile_size: int) -> list[Tile]:
    """The tiles CELL-SEG and Labelme export: the TOIs when the slide has TOI decisions, else
    every grid tile that holds a cell's centre (row-major)."""
    tois = [t.tile for t in slide.tiles if t.label == TOI]
    if tois or slide.tiles:
        return tois
    if not slide.cells:
        return []
    centres = cell_boxes(slide.cells)
    cols = np.floor((centres[:, 0] + centres[:, 2]) / 2 / tile_size).astype(np.int64)
    rows = np.floor((centres[:, 1] + centres[:, 3]) / 2 / tile_size).astype(np.int64)
    held = set(zip(rows.tolist(), cols.tolist(), strict=True))
    return [t for t in tile_grid((slide.width, slide.height), tile_size) if (t.row, t.col) in held]


def cell_boxes(cells: Sequence[CellSample]) -> np.ndarray:
    """``(N, 4)`` float64 XYXY level-0 boxes of the cells' exterior rings (vectorised: the
    crops' first window waits on this for 50,000 cells)."""
    if not cells:
        return np.zeros((0, 4), dtype=np.float64)
    rings = [np.asarray(c.coordinates[0], dtype=np.float64).reshape(-1, 2) for c in cells]
    starts = np.cumsum([0] + [len(r) for r in rings[:-1]])
    points = np.concatenate(rings)
    lo = np.minimum.reduceat(points, starts, axis=0)
    hi = np.maximum.reduceat(points, starts, axis=0)
    return np.hstack([lo, hi])


def cells_touching(boxes: np.ndarray, tile: Tile, tile_size: int) -> np.ndarray:
    """Indices of the cells whose box overlaps the ``tile_size`` square at ``tile``'s corner."""
    x0, y0 = tile.x, tile.y
    x1, y1 = x0 + tile_size, y0 + tile_size
    hit = (boxes[:, 0] < x1) & (boxes[:, 2] > x0) & (boxes[:, 1] < y1) & (boxes[:, 3] > y0)
    return np.flatnonzero(hit)
