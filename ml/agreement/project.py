"""Project level: per-slide figures averaged and pooled, with slide-bootstrap 95% CIs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.agreement.cells import CellAgreement
from ml.agreement.estimates import (
    N_RESAMPLES,
    Estimate,
    estimate,
    multinomial_counts,
)
from ml.agreement.labels import LabelAgreement, ToiAgreement, class_rows
from ml.agreement.roi import RoiAgreement
from ml.metrics import agreement_from_confusions, kappa_from_confusions, safe_ratio


@dataclass(frozen=True)
class Aggregate:
    """A project figure two ways: ``mean`` of the per-slide values (slides where it is defined)
    and ``pooled`` from the summed counts of all slides; CIs resample slides."""

    mean: Estimate
    pooled: Estimate

    def to_dict(self) -> dict[str, Any]:
        """``{"mean": ..., "pooled": ...}``."""
        return {"mean": self.mean.to_dict(), "pooled": self.pooled.to_dict()}


def _slide_weights(n_slides: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(R, S)`` multiplicities of each slide in each bootstrap resample of the slides."""
    return multinomial_counts(np.ones(n_slides, np.int64), n_resamples, seed)


def _aggregate(
    values: Sequence[float | None],
    stats: np.ndarray,
    pooled: Callable[[np.ndarray], np.ndarray],
    n_resamples: int,
    seed: int,
) -> Aggregate:
    """Mean of ``values`` over slides, and ``pooled(sum of stats rows)``; ``stats`` is ``(S, D)``
    per-slide sufficient statistics and ``pooled`` maps ``(R, D)`` sums to ``(R,)`` figures."""
    if not values:
        return Aggregate(mean=Estimate(None), pooled=Estimate(None))
    defined = np.array([v for v in values if v is not None], dtype=np.float64)
    w_mean = _slide_weights(defined.size, n_resamples, seed)
    mean_reps = safe_ratio(w_mean @ defined, w_mean.sum(axis=1).astype(np.float64))
    mean_value = float(defined.mean()) if defined.size else None
    stats = np.asarray(stats, dtype=np.float64).reshape(len(values), -1)
    w = _slide_weights(len(values), n_resamples, seed).astype(np.float64)
    total = pooled(stats.sum(axis=0, keepdims=True))[0]
    pooled_value = float(total) if np.isfinite(total) else None
    return Aggregate(
        mean=estimate(mean_value, mean_reps, int(defined.size)),
        pooled=estimate(pooled_value, pooled(w @ stats), len(values)),
    )


@dataclass(frozen=True)
class ProjectRoi:
    """ROI agreement over a project's slides; pooled IoU = Σ intersections / Σ unions."""

    n_slides: int
    iou: Aggregate
    dice: Aggregate

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-friendly dict."""
        return {"n_slides": self.n_slides, "iou": self.iou.to_dict(), "dice": self.dice.to_dict()}


def aggregate_roi(
    slides: Sequence[RoiAgreement], *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> ProjectRoi:
    """Project ROI figures from per-slide results."""
    stats = np.array([[s.intersection, s.union, s.area_a + s.area_b] for s in slides]).reshape(
        -1, 3
    )
    iou = _aggregate(
        [s.iou for s in slides],
        stats,
        lambda t: safe_ratio(t[:, 0], t[:, 1], 1.0),
        n_resamples,
        seed,
    )
    dice = _aggregate(
        [s.dice for s in slides],
        stats,
        lambda t: safe_ratio(2 * t[:, 0], t[:, 2], 1.0),
        n_resamples,
        seed,
    )
    return ProjectRoi(len(slides), iou, dice)


@dataclass(frozen=True)
class ProjectLabels:
    """Label agreement over a project: pooled confusion (summed over slides) and kappa."""

    n_slides: int
    labels: tuple[str, ...]
    confusion: np.ndarray
    kappa: Aggregate
    percent_agreement: Aggregate

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-friendly dict."""
        return {
            "n_slides": self.n_slides,
            "n": int(self.confusion.sum()),
            "labels": list(self.labels),
            "confusion": self.confusion.tolist(),
            "kappa": self.kappa.to_dict(),
            "percent_agreement": self.percent_agreement.to_dict(),
            "per_class": {k: vars(v) for k, v in class_rows(self.labels, self.confusion).items()},
        }


def aggregate_labels(
    slides: Sequence[LabelAgreement], *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> ProjectLabels:
    """Project label figures; confusions are aligned on the union of labels (first seen order)."""
    labels = tuple(dict.fromkeys(label for s in slides for label in s.labels))
    size = len(labels)
    stacked = np.stack([_align(s, labels) for s in slides]) if slides else np.zeros((0, size, size))
    flat = stacked.reshape(len(slides), size * size)

    def pooled_kappa(t: np.ndarray) -> np.ndarray:
        return kappa_from_confusions(t.reshape(-1, size, size))

    def pooled_agree(t: np.ndarray) -> np.ndarray:
        return agreement_from_confusions(t.reshape(-1, size, size))

    kappa = _aggregate([s.kappa.value for s in slides], flat, pooled_kappa, n_resamples, seed)
    agree = _aggregate(
        [s.percent_agreement.value for s in slides], flat, pooled_agree, n_resamples, seed
    )
    return ProjectLabels(len(slides), labels, stacked.sum(axis=0).astype(np.int64), kappa, agree)


def _align(agreement: LabelAgreement, labels: tuple[str, ...]) -> np.ndarray:
    index = np.array([labels.index(label) for label in agreement.labels], dtype=np.int64)
    out = np.zeros((len(labels), len(labels)), dtype=np.int64)
    out[np.ix_(index, index)] = agreement.confusion
    return out


@dataclass(frozen=True)
class ProjectToi:
    """TOI agreement over a project: pooled one-sided tile counts and label agreement."""

    only_a: int
    only_b: int
    labels: ProjectLabels

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-friendly dict."""
        return {"only_a": self.only_a, "only_b": self.only_b, **self.labels.to_dict()}


def aggregate_toi(
    slides: Sequence[ToiAgreement], *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> ProjectToi:
    """Project TOI figures from per-slide results."""
    labels = aggregate_labels([s.labels for s in slides], n_resamples=n_resamples, seed=seed)
    return ProjectToi(sum(s.only_a for s in slides), sum(s.only_b for s in slides), labels)


@dataclass(frozen=True)
class ProjectCells:
    """Cell agreement over a project: pooled counts, mean IoU / Dice / F1 and class agreement."""

    n_slides: int
    n_a: int
    n_b: int
    matched: int
    mean_iou: Aggregate
    mean_dice: Aggregate
    detection_f1: Aggregate
    classes: ProjectLabels

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-friendly dict."""
        return {
            "n_slides": self.n_slides,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "matched": self.matched,
            "a_only": self.n_a - self.matched,
            "b_only": self.n_b - self.matched,
            "mean_iou": self.mean_iou.to_dict(),
            "mean_dice": self.mean_dice.to_dict(),
            "detection_f1": self.detection_f1.to_dict(),
            "classes": self.classes.to_dict(),
        }


def aggregate_cells(
    slides: Sequence[CellAgreement], *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> ProjectCells:
    """Project cell figures; pooled mean IoU is over all matched pairs of all slides."""
    stats = np.array(
        [[s.matched, s.sum_iou, s.sum_dice, s.n_a, s.n_b] for s in slides], dtype=np.float64
    ).reshape(-1, 5)

    def run(values: list[float | None], pooled: Callable[[np.ndarray], np.ndarray]) -> Aggregate:
        return _aggregate(values, stats, pooled, n_resamples, seed)

    return ProjectCells(
        n_slides=len(slides),
        n_a=int(stats[:, 3].sum()),
        n_b=int(stats[:, 4].sum()),
        matched=int(stats[:, 0].sum()),
        mean_iou=run(
            [s.mean_iou.value for s in slides], lambda t: safe_ratio(t[:, 1], t[:, 0], np.nan)
        ),
        mean_dice=run(
            [s.mean_dice.value for s in slides], lambda t: safe_ratio(t[:, 2], t[:, 0], np.nan)
        ),
        detection_f1=run(
            [s.detection_f1.value for s in slides],
            lambda t: safe_ratio(2 * t[:, 0], t[:, 3] + t[:, 4], 1.0),
        ),
        classes=aggregate_labels([s.classes for s in slides], n_resamples=n_resamples, seed=seed),
    )
