"""The disagreements a reviewer walks through to build a consensus set, in viewer order.

Pure lists over matched cells, labelled tiles and ROI unions; the app's adjudication (its rows,
its consensus writes) is :mod:`apps.agreement.services`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import shapely

from ml.agreement.cells import CellMatch
from ml.agreement.labels import Label, TileKey
from ml.agreement.shapes import PolygonLike, bounds_of, union_of


@dataclass(frozen=True)
class Disagreement:
    """One item for adjudication. ``kind`` is ``cell_only_a``, ``cell_only_b``, ``cell_class``,
    ``toi_only_a``, ``toi_only_b``, ``toi_label`` or ``roi``; ``a``/``b`` are the cell index or
    ``(col, row)`` tile of each side (``None`` when absent; ``roi`` has none); ``bbox`` is the XYXY
    region to show, in the annotations' frame (level-0 px)."""

    kind: str
    a: int | TileKey | None
    b: int | TileKey | None
    label_a: Label
    label_b: Label
    bbox: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tiles become ``[col, row]``)."""
        return {**vars(self), "bbox": list(self.bbox)}


def cell_disagreements(
    match: CellMatch, labels_a: Sequence[Label], labels_b: Sequence[Label], *, band: float = 1600.0
) -> list[Disagreement]:
    """Cells only one annotator drew, and matched cells whose labels differ (one unlabelled counts
    as different), in reading order (rows of height ``band`` px, then left to right) so the
    viewer walks the slide once."""
    items = [
        Disagreement("cell_only_a", int(i), None, labels_a[i], None, _box(match.bounds_a[i]))
        for i in match.a_only
    ]
    items += [
        Disagreement("cell_only_b", None, int(j), None, labels_b[j], _box(match.bounds_b[j]))
        for j in match.b_only
    ]
    for i, j in match.pairs.tolist():
        if (labels_a[i] or None) != (labels_b[j] or None):
            box_a, box_b = match.bounds_a[i], match.bounds_b[j]
            bbox = (*np.minimum(box_a[:2], box_b[:2]), *np.maximum(box_a[2:], box_b[2:]))
            items.append(Disagreement("cell_class", i, j, labels_a[i], labels_b[j], _box(bbox)))
    return sorted(items, key=lambda d: _reading_order(d.bbox, band))


def toi_disagreements(
    tiles_a: Mapping[TileKey, Label], tiles_b: Mapping[TileKey, Label], tile_size: int
) -> list[Disagreement]:
    """Tiles labelled differently or by one annotator only, row by row; ``bbox`` is the tile."""
    keys = sorted(
        {k for k, v in chain(tiles_a.items(), tiles_b.items()) if v}, key=lambda k: k[::-1]
    )
    items = []
    for col, row in keys:
        la, lb = tiles_a.get((col, row)) or None, tiles_b.get((col, row)) or None
        if la == lb:
            continue
        kind = "toi_label" if la and lb else ("toi_only_a" if la else "toi_only_b")
        bbox = (col * tile_size, row * tile_size, (col + 1) * tile_size, (row + 1) * tile_size)
        items.append(
            Disagreement(
                kind, (col, row) if la else None, (col, row) if lb else None, la, lb, _box(bbox)
            )
        )
    return items


def roi_disagreement(
    rois_a: Iterable[PolygonLike], rois_b: Iterable[PolygonLike], *, tolerance: float = 0.0
) -> Disagreement | None:
    """One ``roi`` item when the ROI unions differ (IoU < 1 - ``tolerance``), spanning both."""
    a, b = union_of(rois_a), union_of(rois_b)
    inter = float(shapely.area(shapely.intersection(a, b)))
    union = a.area + b.area - inter
    if union <= 0 or inter / union >= 1.0 - tolerance:
        return None
    return Disagreement("roi", None, None, None, None, bounds_of(shapely.union(a, b)))


def _box(values: Iterable[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in values)
    return (x0, y0, x1, y1)


def _reading_order(bbox: tuple[float, float, float, float], band: float) -> tuple[float, float]:
    return (float(((bbox[1] + bbox[3]) / 2) // band), (bbox[0] + bbox[2]) / 2)
