"""Agreement of two raters' labels on shared items: classes of matched cells, TOI tiles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml import metrics
from ml.agreement.estimates import (
    N_RESAMPLES,
    Estimate,
    estimate,
    multinomial_counts,
)
from ml.metrics import agreement_from_confusions, kappa_from_confusions

#: A label as stored; ``None`` or ``""`` means "not labelled".
Label = str | None
#: A TOI tile as ``(col, row)`` on the project's tile grid.
TileKey = tuple[int, int]

#: TOI tile labels as the annotation store keeps them.
TOI_LABELS: tuple[str, str] = ("toi", "non_toi")


@dataclass(frozen=True)
class ClassRow:
    """One class: how often A and B used it on shared items, how often both did on the same item,
    and their specific (positive) agreement ``2·both / (n_a + n_b)``, ``None`` when unused."""

    n_a: int
    n_b: int
    n_both: int
    agreement: float | None


def class_rows(labels: Sequence[str], confusion: np.ndarray) -> dict[str, ClassRow]:
    """Per-class rows of an ``(L, L)`` confusion (row = A, column = B) over ``labels``."""
    rows, cols, diag = confusion.sum(1), confusion.sum(0), np.diag(confusion)
    out = {}
    for i, label in enumerate(labels):
        used = int(rows[i] + cols[i])
        share = 2.0 * float(diag[i]) / used if used else None
        out[label] = ClassRow(int(rows[i]), int(cols[i]), int(diag[i]), share)
    return out


@dataclass(frozen=True)
class LabelAgreement:
    """Agreement of two raters on items both labelled (TOI tiles, matched cells).

    ``confusion`` is int64 ``(L, L)`` over ``labels``: row = A's label, column = B's.
    """

    labels: tuple[str, ...]
    confusion: np.ndarray
    kappa: Estimate
    percent_agreement: Estimate

    @property
    def n(self) -> int:
        """Items both raters labelled."""
        return int(self.confusion.sum())

    @property
    def per_class(self) -> dict[str, ClassRow]:
        """Per-class use and specific agreement, in ``labels`` order."""
        return class_rows(self.labels, self.confusion)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: labels, confusion (list of rows), kappa, percent agreement, per class."""
        return {
            "n": self.n,
            "labels": list(self.labels),
            "confusion": self.confusion.tolist(),
            "kappa": self.kappa.to_dict(),
            "percent_agreement": self.percent_agreement.to_dict(),
            "per_class": {k: vars(v) for k, v in self.per_class.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelAgreement:
        """Inverse of :meth:`to_dict`."""
        labels = tuple(data["labels"])
        confusion = np.asarray(data["confusion"], dtype=np.int64).reshape(len(labels), len(labels))
        return cls(
            labels=labels,
            confusion=confusion,
            kappa=Estimate.from_dict(data["kappa"]),
            percent_agreement=Estimate.from_dict(data["percent_agreement"]),
        )


def label_agreement(
    labels_a: Sequence[Label],
    labels_b: Sequence[Label],
    classes: Sequence[str] = (),
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> LabelAgreement:
    """Cohen's kappa, percent agreement and confusion of paired labels (item ``i`` = both raters'
    label of the same item); pairs where either label is missing are left out.

    The confusion spans ``classes`` in their order, then any other label seen, sorted, so a label
    outside the project's list is shown rather than silently dropped.
    """
    if len(labels_a) != len(labels_b):
        raise ValueError(f"paired labels differ in length: {len(labels_a)} vs {len(labels_b)}")
    pairs = [(a, b) for a, b in zip(labels_a, labels_b, strict=True) if a and b]
    seen = {x for pair in pairs for x in pair}
    labels = tuple(classes) + tuple(sorted(seen - set(classes)))
    y_a = np.array([a for a, _ in pairs], dtype=object)
    y_b = np.array([b for _, b in pairs], dtype=object)
    confusion = metrics.confusion_matrix(y_a, y_b, labels)
    return _label_agreement_from_confusion(labels, confusion, n_resamples, seed)


def _label_agreement_from_confusion(
    labels: tuple[str, ...], confusion: np.ndarray, n_resamples: int, seed: int
) -> LabelAgreement:
    n = int(confusion.sum())
    reps = multinomial_counts(confusion.ravel(), n_resamples, seed)
    reps = reps.reshape(n_resamples, *confusion.shape)
    kappa = kappa_from_confusions(confusion)
    agree = float(agreement_from_confusions(confusion)) if n else None
    agree_reps = agreement_from_confusions(reps)
    return LabelAgreement(
        labels=labels,
        confusion=confusion,
        kappa=estimate(None if n == 0 else float(kappa), kappa_from_confusions(reps), n),
        percent_agreement=estimate(agree, agree_reps, n),
    )


# --------------------------------------------------------------------------------- TOI


@dataclass(frozen=True)
class ToiAgreement:
    """TOI labels of two annotators on the tile grid: label agreement on tiles both labelled, and
    the tiles only one of them labelled (keyed ``(col, row)``)."""

    only_a: int
    only_b: int
    labels: LabelAgreement

    def to_dict(self) -> dict[str, Any]:
        """``only_a``, ``only_b`` and the label agreement's fields."""
        return {"only_a": self.only_a, "only_b": self.only_b, **self.labels.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToiAgreement:
        """Inverse of :meth:`to_dict`."""
        return cls(int(data["only_a"]), int(data["only_b"]), LabelAgreement.from_dict(data))


def toi_agreement(
    tiles_a: Mapping[TileKey, Label],
    tiles_b: Mapping[TileKey, Label],
    *,
    labels: Sequence[str] = TOI_LABELS,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> ToiAgreement:
    """Agreement of two TOI labellings, each ``{(col, row): "toi" | "non_toi"}``.

    Unlabelled tiles (absent, ``None`` or ``""``) count for neither side.
    """
    keys_a = {k for k, v in tiles_a.items() if v}
    keys_b = {k for k, v in tiles_b.items() if v}
    both = sorted(keys_a & keys_b)
    pairs = label_agreement(
        [tiles_a[k] for k in both],
        [tiles_b[k] for k in both],
        labels,
        n_resamples=n_resamples,
        seed=seed,
    )
    return ToiAgreement(len(keys_a - keys_b), len(keys_b - keys_a), pairs)
