"""Cell masks: one-to-one matching of two annotators' cells and every figure built on it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ml.agreement.estimates import (
    N_RESAMPLES,
    Estimate,
    bootstrap_means,
    estimate,
    multinomial_counts,
)
from ml.agreement.labels import Label, LabelAgreement, label_agreement
from ml.agreement.shapes import PolygonLike, to_geometries
from ml.metrics import safe_ratio


@dataclass(frozen=True)
class CellMatch:
    """One-to-one matching of A's cells to B's (indices into the inputs, in input order).

    ``pairs`` int64 ``(K, 2)`` of ``(a_index, b_index)`` sorted by ``a_index``; ``ious`` float64
    ``(K,)`` in [threshold, 1]; ``a_only``/``b_only`` int64 ascending; ``bounds_a``/``bounds_b``
    float64 ``(N, 4)`` XYXY boxes of every cell (for the viewer to jump to).
    """

    iou_threshold: float
    pairs: np.ndarray
    ious: np.ndarray
    a_only: np.ndarray
    b_only: np.ndarray
    bounds_a: np.ndarray = field(repr=False)
    bounds_b: np.ndarray = field(repr=False)

    @property
    def dices(self) -> np.ndarray:
        """Dice of each matched pair, ``2·IoU / (1 + IoU)``."""
        return 2.0 * self.ious / (1.0 + self.ious)


def match_cells(
    cells_a: Iterable[PolygonLike], cells_b: Iterable[PolygonLike], *, iou_threshold: float = 0.5
) -> CellMatch:
    """Match cells one-to-one at IoU >= ``iou_threshold`` (in (0, 1]); see the package docstring.

    Runs in about ``O((n + m) log(n + m))`` plus the exact intersections of neighbouring pairs.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    geoms_a, geoms_b = to_geometries(cells_a), to_geometries(cells_b)
    ia, ib, ious = _eligible_pairs(geoms_a, geoms_b, iou_threshold)
    pairs, pair_ious = _assign(ia, ib, ious, geoms_a.size, geoms_b.size)
    return CellMatch(
        iou_threshold=iou_threshold,
        pairs=pairs,
        ious=pair_ious,
        a_only=np.setdiff1d(np.arange(geoms_a.size), pairs[:, 0]),
        b_only=np.setdiff1d(np.arange(geoms_b.size), pairs[:, 1]),
        bounds_a=shapely.bounds(geoms_a).reshape(-1, 4),
        bounds_b=shapely.bounds(geoms_b).reshape(-1, 4),
    )


def _eligible_pairs(
    geoms_a: np.ndarray, geoms_b: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ia, ib, iou)`` of every pair with exact IoU >= ``threshold``."""
    empty = np.zeros(0, np.int64)
    if geoms_a.size == 0 or geoms_b.size == 0:
        return empty, empty, np.zeros(0)
    ia, ib = shapely.STRtree(geoms_b).query(geoms_a)
    area_a, area_b = shapely.area(geoms_a), shapely.area(geoms_b)
    box_a, box_b = shapely.bounds(geoms_a)[ia], shapely.bounds(geoms_b)[ib]
    box_w = np.minimum(box_a[:, 2], box_b[:, 2]) - np.maximum(box_a[:, 0], box_b[:, 0])
    box_h = np.minimum(box_a[:, 3], box_b[:, 3]) - np.maximum(box_a[:, 1], box_b[:, 1])
    # No intersection can exceed the smaller area or the overlap of the boxes: an exact bound.
    bound = np.minimum.reduce([area_a[ia], area_b[ib], box_w.clip(0) * box_h.clip(0)])
    keep = safe_ratio(bound, area_a[ia] + area_b[ib] - bound) >= threshold
    ia, ib = ia[keep], ib[keep]
    inter = shapely.area(shapely.intersection(geoms_a[ia], geoms_b[ib]))
    ious = safe_ratio(inter, area_a[ia] + area_b[ib] - inter)
    keep = ious >= threshold
    return ia[keep].astype(np.int64), ib[keep].astype(np.int64), ious[keep]


def _assign(
    ia: np.ndarray, ib: np.ndarray, ious: np.ndarray, n_a: int, n_b: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian assignment per connected component of the eligible-pair graph."""
    if ia.size == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    graph = coo_matrix((np.ones(ia.size), (ia, n_a + ib)), shape=(n_a + n_b,) * 2)
    _, component = connected_components(graph, directed=False)
    edge_comp = component[ia]
    lone = np.bincount(edge_comp)[edge_comp] == 1  # most cells: one candidate, nothing to solve
    chosen = [np.flatnonzero(lone)]
    crowded = np.flatnonzero(~lone)
    crowded = crowded[np.argsort(edge_comp[crowded], kind="stable")]
    starts = np.flatnonzero(np.diff(edge_comp[crowded], prepend=-1))
    for group in np.split(crowded, starts[1:]):
        if group.size:
            chosen.append(group[_solve_component(ia[group], ib[group], ious[group])])
    picked = np.concatenate(chosen)
    picked = picked[np.argsort(ia[picked], kind="stable")]
    return np.stack([ia[picked], ib[picked]], axis=1), ious[picked]


def _solve_component(ia: np.ndarray, ib: np.ndarray, ious: np.ndarray) -> np.ndarray:
    """Edge positions of a maximum-cardinality, then maximum-IoU matching of one component."""
    rows, r = np.unique(ia, return_inverse=True)
    cols, c = np.unique(ib, return_inverse=True)
    bonus = float(min(rows.size, cols.size) + 1)  # one more pair always outweighs any IoU gain
    weight = np.zeros((rows.size, cols.size))
    edge_at = np.full((rows.size, cols.size), -1, np.int64)
    weight[r, c] = bonus + ious
    edge_at[r, c] = np.arange(ia.size)
    sel_r, sel_c = linear_sum_assignment(weight, maximize=True)
    edges = edge_at[sel_r, sel_c]
    return edges[edges >= 0]


@dataclass(frozen=True)
class CellAgreement:
    """Cell masks and classes of two annotators on one slide.

    ``sum_iou``/``sum_dice`` over matched pairs are kept so project figures can pool them.
    """

    iou_threshold: float
    n_a: int
    n_b: int
    matched: int
    sum_iou: float
    sum_dice: float
    mean_iou: Estimate
    mean_dice: Estimate
    detection_f1: Estimate
    classes: LabelAgreement

    @property
    def a_only(self) -> int:
        """Cells only A drew (or drew too differently to match)."""
        return self.n_a - self.matched

    @property
    def b_only(self) -> int:
        """Cells only B drew."""
        return self.n_b - self.matched

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of every figure."""
        return {
            "iou_threshold": self.iou_threshold,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "matched": self.matched,
            "a_only": self.a_only,
            "b_only": self.b_only,
            "sum_iou": self.sum_iou,
            "sum_dice": self.sum_dice,
            "mean_iou": self.mean_iou.to_dict(),
            "mean_dice": self.mean_dice.to_dict(),
            "detection_f1": self.detection_f1.to_dict(),
            "classes": self.classes.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellAgreement:
        """Inverse of :meth:`to_dict`."""
        return cls(
            iou_threshold=float(data["iou_threshold"]),
            n_a=int(data["n_a"]),
            n_b=int(data["n_b"]),
            matched=int(data["matched"]),
            sum_iou=float(data["sum_iou"]),
            sum_dice=float(data["sum_dice"]),
            mean_iou=Estimate.from_dict(data["mean_iou"]),
            mean_dice=Estimate.from_dict(data["mean_dice"]),
            detection_f1=Estimate.from_dict(data["detection_f1"]),
            classes=LabelAgreement.from_dict(data["classes"]),
        )


def cell_agreement(
    match: CellMatch,
    labels_a: Sequence[Label],
    labels_b: Sequence[Label],
    classes: Sequence[str] = (),
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> CellAgreement:
    """Every cell figure of one slide from a :func:`match_cells` result and both label lists
    (``labels_a[i]`` is the class of A's cell ``i``; ``classes`` is the project's class order)."""
    n_a, n_b = len(labels_a), len(labels_b)
    if (n_a, n_b) != (len(match.bounds_a), len(match.bounds_b)):
        raise ValueError(
            f"{n_a} + {n_b} labels for {len(match.bounds_a)} + {len(match.bounds_b)} matched cells"
        )
    k = int(match.pairs.shape[0])
    dices = match.dices
    mean_iou = float(match.ious.mean()) if k else None
    mean_dice = float(dices.mean()) if k else None
    means = bootstrap_means(np.stack([match.ious, dices]), n_resamples, seed)
    units = np.array([k, n_a - k, n_b - k])
    f1_reps = _f1_of_units(multinomial_counts(units, n_resamples, seed))
    paired_a = [labels_a[i] for i in match.pairs[:, 0]]
    paired_b = [labels_b[j] for j in match.pairs[:, 1]]
    return CellAgreement(
        iou_threshold=match.iou_threshold,
        n_a=n_a,
        n_b=n_b,
        matched=k,
        sum_iou=float(match.ious.sum()),
        sum_dice=float(dices.sum()),
        mean_iou=estimate(mean_iou, means[:, 0], k),
        mean_dice=estimate(mean_dice, means[:, 1], k),
        detection_f1=estimate(float(_f1_of_units(units)), f1_reps, int(units.sum())),
        classes=label_agreement(paired_a, paired_b, classes, n_resamples=n_resamples, seed=seed),
    )


def _f1_of_units(units: np.ndarray) -> np.ndarray:
    """Detection F1 ``2M / (2M + A_only + B_only)`` of ``(..., 3)`` counts; 1.0 when all zero."""
    units = np.asarray(units, dtype=np.float64)
    num = 2.0 * units[..., 0]
    return safe_ratio(num, num + units[..., 1] + units[..., 2], 1.0)


def compare_cells(
    cells_a: Sequence[PolygonLike],
    labels_a: Sequence[Label],
    cells_b: Sequence[PolygonLike],
    labels_b: Sequence[Label],
    classes: Sequence[str] = (),
    *,
    iou_threshold: float = 0.5,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[CellMatch, CellAgreement]:
    """:func:`match_cells` then :func:`cell_agreement`: everything the report shows for cells."""
    match = match_cells(cells_a, cells_b, iou_threshold=iou_threshold)
    return match, cell_agreement(
        match, labels_a, labels_b, classes, n_resamples=n_resamples, seed=seed
    )
