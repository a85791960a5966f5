"""Every metric of the project in one place: segmentation, agreement, classification, detection,
correlation and confidence intervals.

Inputs are numpy arrays (or anything ``np.asarray`` accepts); outputs are plain Python floats,
ints, tuples or numpy arrays. No function returns NaN for an input it accepts: each docstring says
what a degenerate input (no items, one class only, zero variance) gives, which is either a
documented value or ``None``.

Boxes are XYXY in pixel-edge coordinates: a box covering pixel columns ``c0..c1`` inclusive has
``x1 = c0`` and ``x2 = c1 + 1``, so its area is ``(x2 - x1) * (y2 - y1)``. The frame (tile,
slide or thumbnail pixels) is whatever the caller uses, as long as both box sets share it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.stats import rankdata

# --------------------------------------------------------------------------- masks


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape.

    Two empty masks agree perfectly and give 1.0 (the inter-observer use: both annotators drew
    nothing). Values are in [0, 1].
    """
    a, b = _same_shape_bool(a, b)
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(a & b)) / union


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient ``2|A∩B| / (|A|+|B|)`` of two boolean masks; two empty masks give 1.0."""
    a, b = _same_shape_bool(a, b)
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


def pixel_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Share of pixels where ``pred == target`` (any integer or boolean label maps).

    Raises ``ValueError`` for shapes that differ or hold no pixel.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {target.shape}")
    if pred.size == 0:
        raise ValueError("pixel_accuracy of an empty map is undefined")
    return float(np.count_nonzero(pred == target)) / pred.size


def _same_shape_bool(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return a, b


# ----------------------------------------------------------------------- agreement


def confusion_matrix(
    y_true: Sequence[Hashable] | np.ndarray,
    y_pred: Sequence[Hashable] | np.ndarray,
    labels: Sequence[Hashable],
) -> np.ndarray:
    """Confusion matrix, int64 ``(L, L)``: row = true label, column = predicted label.

    Order follows ``labels``. Pairs where either label is not in ``labels`` are ignored (as in
    scikit-learn).
    """
    y_true, y_pred = _paired(y_true, y_pred)
    index = {label: i for i, label in enumerate(labels)}
    size = len(labels)
    codes_t = np.fromiter((index.get(t, -1) for t in y_true.tolist()), np.int64, y_true.size)
    codes_p = np.fromiter((index.get(p, -1) for p in y_pred.tolist()), np.int64, y_pred.size)
    keep = (codes_t >= 0) & (codes_p >= 0)
    flat = np.bincount(codes_t[keep] * size + codes_p[keep], minlength=size * size)
    return flat.reshape(size, size).astype(np.int64)


def percent_agreement(
    y_a: Sequence[Hashable] | np.ndarray, y_b: Sequence[Hashable] | np.ndarray
) -> float | None:
    """Share of items on which two raters agree, in [0, 1]; ``None`` when there are no items."""
    y_a, y_b = _paired(y_a, y_b)
    if y_a.size == 0:
        return None
    return float(np.count_nonzero(y_a == y_b)) / y_a.size


def cohen_kappa(
    y_a: Sequence[Hashable] | np.ndarray,
    y_b: Sequence[Hashable] | np.ndarray,
    labels: Sequence[Hashable] | None = None,
) -> float | None:
    """Cohen's kappa between two raters, unweighted, in [-1, 1].

    ``labels`` defaults to the sorted union of the labels seen; pairs with a label outside
    ``labels`` are ignored, as in scikit-learn. Degenerate cases:
    no items -> ``None``; chance agreement ``p_e == 1`` happens only when both raters gave every
    item the same single class, which is perfect agreement, so it returns 1.0 (scikit-learn
    returns NaN there).
    """
    y_a, y_b = _paired(y_a, y_b)
    if labels is None:
        labels = sorted(set(y_a.tolist()) | set(y_b.tolist()))
    kappa = float(kappa_from_confusions(confusion_matrix(y_a, y_b, labels)))
    return None if np.isnan(kappa) else kappa


def kappa_from_confusions(confusions: np.ndarray) -> np.ndarray:
    """Cohen's kappa of a stack of confusion matrices ``(..., L, L)`` -> float64 ``(...)``.

    The one kappa formula (:func:`cohen_kappa` and the agreement bootstraps use it). ``p_e == 1``
    (both raters gave every item one and the same class) gives 1.0; an empty matrix gives NaN
    (callers drop it or answer ``None``), never a warning.
    """
    m = np.asarray(confusions, dtype=np.float64)
    n = m.sum(axis=(-2, -1))
    safe_n = np.where(n > 0, n, 1.0)
    p_o = np.trace(m, axis1=-2, axis2=-1) / safe_n
    p_e = (m.sum(axis=-1) * m.sum(axis=-2)).sum(axis=-1) / (safe_n * safe_n)
    one = np.isclose(p_e, 1.0)
    kappa = np.where(one, 1.0, (p_o - p_e) / np.where(one, 1.0, 1.0 - p_e))
    return np.where(n > 0, kappa, np.nan)


def agreement_from_confusions(confusions: np.ndarray) -> np.ndarray:
    """Percent agreement (the diagonal's share) of a stack of confusion matrices ``(..., L, L)``
    -> float64 ``(...)`` in [0, 1]; NaN for an empty matrix, as :func:`kappa_from_confusions`."""
    m = np.asarray(confusions, dtype=np.float64)
    return safe_ratio(np.trace(m, axis1=-2, axis2=-1), m.sum(axis=(-2, -1)), np.nan)


def fleiss_kappa(
    ratings: np.ndarray | Sequence[Sequence[Hashable]],
    labels: Sequence[Hashable] | None = None,
) -> float | None:
    """Fleiss' kappa for ``ratings`` of shape ``(n_items, n_raters)`` holding class labels.

    Every item must have the same number of raters (>= 2). ``labels`` defaults to the sorted
    labels seen; a rating outside ``labels`` raises ``ValueError``. Degenerate cases: no items -> ``None``; ``P_e == 1`` (every rating is the same
    class) is perfect agreement -> 1.0.
    """
    ratings = np.asarray(ratings, dtype=object)
    if ratings.size == 0:
        return None
    if ratings.ndim != 2 or ratings.shape[1] < 2:
        raise ValueError("ratings must be (n_items, n_raters) with at least two raters")
    if labels is None:
        labels = sorted(set(ratings.ravel().tolist()))
    index = {label: j for j, label in enumerate(labels)}
    unknown = set(ratings.ravel().tolist()) - set(index)
    if unknown:
        raise ValueError(f"ratings outside labels: {sorted(map(str, unknown))}")
    table = np.zeros((ratings.shape[0], len(labels)), dtype=np.float64)
    for i, row in enumerate(ratings):
        for label in row:
            table[i, index[label]] += 1
    return _fleiss_from_table(table)


def _fleiss_from_table(table: np.ndarray) -> float:
    """Fleiss' kappa from an ``(n_items, n_categories)`` table of rater counts."""
    n_items = table.shape[0]
    n_raters = table[0].sum()
    p_j = table.sum(axis=0) / (n_items * n_raters)
    p_i = ((table * table).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_bar = p_i.mean()
    p_e = float((p_j * p_j).sum())
    if np.isclose(p_e, 1.0):
        return 1.0
    return float((p_bar - p_e) / (1.0 - p_e))


def _paired(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two 1-D arrays of equal length, got {a.shape} and {b.shape}")
    return a, b


# ------------------------------------------------------------------ classification


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one class, in [0, 1]; ``support`` = true items of the class."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationReport:
    """Accuracy plus per-class and macro-averaged precision / recall / F1."""

    accuracy: float | None
    per_class: dict[Hashable, ClassScores]
    macro_precision: float
    macro_recall: float
    macro_f1: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict; class labels become strings."""
        return {
            "accuracy": self.accuracy,
            "per_class": {str(k): asdict(v) for k, v in self.per_class.items()},
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
        }


def classification_report(
    y_true: Sequence[Hashable] | np.ndarray,
    y_pred: Sequence[Hashable] | np.ndarray,
    labels: Sequence[Hashable],
) -> ClassificationReport:
    """Accuracy and per-class / macro precision, recall and F1 over ``labels``.

    A ratio whose denominator is zero (a class never predicted, never present, or with zero
    precision and recall) is 0.0, matching scikit-learn's ``zero_division=0``. Macro averages are
    unweighted means over all of ``labels``. Accuracy is over all pairs (labels outside
    ``labels`` count as wrong) and is ``None`` when there are no items.
    """
    y_true, y_pred = _paired(y_true, y_pred)
    matrix = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = safe_ratio(tp, matrix.sum(axis=0))
    recall = safe_ratio(tp, support)
    f1 = safe_ratio(2 * precision * recall, precision + recall)
    per_class = {
        label: ClassScores(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, label in enumerate(labels)
    }
    accuracy = None if y_true.size == 0 else float(np.count_nonzero(y_true == y_pred)) / y_true.size
    return ClassificationReport(
        accuracy=accuracy,
        per_class=per_class,
        macro_precision=float(precision.mean()) if len(labels) else 0.0,
        macro_recall=float(recall.mean()) if len(labels) else 0.0,
        macro_f1=float(f1.mean()) if len(labels) else 0.0,
    )


def safe_ratio(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """Elementwise ``num / den`` as float64, ``empty`` where ``den <= 0`` (no warning).

    The one zero-denominator rule: 0.0 by default, as scikit-learn's ``zero_division=0``.
    """
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.full(num.shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def auroc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float | None:
    """Area under the ROC curve for a binary task, in [0, 1].

    ``y_true`` holds 0/1 (or booleans), ``scores`` higher = more positive. Ties count one half
    (Mann-Whitney U with average ranks). ``None`` when only one class is present.
    """
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.shape != scores.shape or y_true.ndim != 1:
        raise ValueError("y_true and scores must be 1-D arrays of equal length")
    n_pos = int(np.count_nonzero(y_true))
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    u = ranks[y_true].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def macro_auroc(
    y_true: Sequence[Hashable] | np.ndarray,
    probs: np.ndarray,
    labels: Sequence[Hashable],
) -> float | None:
    """Unweighted mean of one-vs-rest AUROCs.

    ``probs`` is ``(N, C)`` with column ``j`` the score of ``labels[j]``. Classes whose
    one-vs-rest AUROC is undefined (absent, or the only class present) are left out of the mean;
    ``None`` when none is defined.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (y_true.size, len(labels)):
        raise ValueError(f"probs must be (N, {len(labels)}), got {probs.shape}")
    values = [auroc(y_true == label, probs[:, j]) for j, label in enumerate(labels)]
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


# ----------------------------------------------------------------------- detection


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of XYXY boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)`` -> float64 ``(N, M)``.

    A pair whose union has zero area (two degenerate boxes) has IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = _box_area(a)[:, None]
    area_b = _box_area(b)[None, :]
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = area_a + area_b - inter
    return safe_ratio(inter, union)


def _box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Tight XYXY pixel-edge boxes of boolean masks ``(N, H, W)`` -> float64 ``(N, 4)``.

    An empty mask gives the degenerate box ``(0, 0, 0, 0)``.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got {masks.shape}")
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float64)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size:
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def boxes_from_label_image(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of every instance of an int label image ``(H, W)`` (0 = background).

    Returns ``(ids, boxes)``: ids int64 ``(N,)`` ascending, boxes float64 ``(N, 4)`` XYXY
    pixel-edge, in the label image's pixel frame.
    """
    labels = np.asarray(labels)
    slices = ndimage.find_objects(labels)
    ids, boxes = [], []
    for i, sl in enumerate(slices, start=1):
        if sl is not None:
            ids.append(i)
            boxes.append((sl[1].start, sl[0].start, sl[1].stop, sl[0].stop))
    return np.asarray(ids, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def match_boxes(gt_boxes: np.ndarray, pred_boxes: np.ndarray, thr: float) -> list[tuple[int, int]]:
    """One-to-one greedy matching of ground-truth and predicted boxes by IoU.

    All (gt, pred) pairs with IoU >= ``thr`` are visited in decreasing IoU order (ties by gt then
    pred index); a pair is kept when neither box is matched yet. Each box is matched at most once,
    so a duplicate prediction of one cell counts once. Returns ``[(gt_index, pred_index), ...]``.
    """
    ious = box_iou_matrix(gt_boxes, pred_boxes)
    gi, pi = np.nonzero(ious >= thr)
    order = np.lexsort((pi, gi, -ious[gi, pi]))
    used_g, used_p, pairs = set(), set(), []
    for g, p in zip(gi[order].tolist(), pi[order].tolist(), strict=True):
        if g not in used_g and p not in used_p:
            used_g.add(g)
            used_p.add(p)
            pairs.append((g, p))
    return pairs


def detection_counts(gt: np.ndarray, pred: np.ndarray, thr: float = 0.5) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` under :func:`match_boxes`' one-to-one matching at IoU >= ``thr``."""
    n_gt = np.asarray(gt).reshape(-1, 4).shape[0]
    n_pred = np.asarray(pred).reshape(-1, 4).shape[0]
    tp = len(match_boxes(gt, pred, thr))
    return tp, n_pred - tp, n_gt - tp


def recall_at_iou(gt_boxes: np.ndarray, pred_boxes: np.ndarray, thr: float) -> float | None:
    """Share of ground-truth boxes matched one-to-one (:func:`match_boxes`) at IoU >= ``thr``.

    Recall50 and Recall75 (SPEC §2.3) are ``thr=0.5`` and ``thr=0.75``. ``None`` when there is no
    ground-truth box. Over a data set, sum :func:`detection_counts` per image instead of
    averaging per-image recalls.
    """
    n_gt = np.asarray(gt_boxes).reshape(-1, 4).shape[0]
    if n_gt == 0:
        return None
    return len(match_boxes(gt_boxes, pred_boxes, thr)) / n_gt


# --------------------------------------------------------------------- correlation


def pearson_r(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float | None:
    """Pearson correlation in [-1, 1]; ``None`` for fewer than 2 pairs or a constant input."""
    a, b = _paired_float(a, b)
    if a.size < 2:
        return None
    da, db = a - a.mean(), b - b.mean()
    den = np.sqrt((da * da).sum() * (db * db).sum())
    if den == 0:
        return None
    return float(np.clip((da * db).sum() / den, -1.0, 1.0))


def lins_ccc(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float | None:
    """Lin's concordance correlation coefficient in [-1, 1] (population moments, as Lin 1989).

    ``None`` for no pairs. Two identical constant vectors agree perfectly and give 1.0; otherwise
    a zero denominator cannot happen.
    """
    a, b = _paired_float(a, b)
    if a.size == 0:
        return None
    cov = ((a - a.mean()) * (b - b.mean())).mean()
    den = a.var() + b.var() + (a.mean() - b.mean()) ** 2
    if den == 0:
        return 1.0
    return float(2.0 * cov / den)


@dataclass(frozen=True)
class BlandAltman:
    """Bland-Altman agreement of paired measurements ``a - b``.

    ``sd`` uses ``ddof=1``; the limits of agreement are ``mean_diff ± z * sd``.
    """

    n: int
    mean_diff: float
    sd: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


def bland_altman(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, z: float = 1.96
) -> BlandAltman | None:
    """Mean difference ``a - b``, its sample SD and the limits of agreement ``mean ± 1.96 SD``.

    ``None`` for fewer than 2 pairs (the SD is undefined).
    """
    a, b = _paired_float(a, b)
    if a.size < 2:
        return None
    diff = a - b
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    return BlandAltman(
        n=int(a.size), mean_diff=mean, sd=sd, lower=mean - z * sd, upper=mean + z * sd
    )


def _paired_float(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two 1-D arrays of equal length, got {a.shape} and {b.shape}")
    return a, b


# ------------------------------------------------------------ confidence intervals


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n``, bounds in [0, 1].

    ``n == 0`` carries no information and gives ``(0.0, 1.0)``. Raises ``ValueError`` unless
    ``0 <= k <= n``.
    """
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def bootstrap_ci(
    data: np.ndarray | Sequence[float] | tuple[np.ndarray, ...],
    statistic: Callable[..., float | None] = np.mean,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of ``statistic``.

    ``data`` is either one 1-D array (``statistic(x)``) or a tuple of equal-length 1-D arrays
    resampled together by item (``statistic(x, y, ...)``, e.g. :func:`lins_ccc`). Resamples whose
    statistic is ``None`` or non-finite are dropped. Returns ``(low, high)``, or ``None`` when
    there are no items or no resample gave a value. Deterministic for a given ``seed``.
    """
    arrays = tuple(np.asarray(x) for x in data) if isinstance(data, tuple) else (np.asarray(data),)
    n = arrays[0].shape[0]
    if any(x.shape[0] != n for x in arrays):
        raise ValueError("all arrays must have the same length")
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        value = statistic(*(x[idx] for x in arrays))
        if value is not None and np.isfinite(value):
            values.append(float(value))
    return percentile_ci(np.asarray(values, dtype=np.float64), confidence)


def percentile_ci(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float] | None:
    """The percentile interval of the finite bootstrap ``replicates``; ``None`` when none is.

    The one percentile rule: :func:`bootstrap_ci` and the vectorised agreement bootstraps
    (:mod:`ml.agreement.estimates`) both end here.
    """
    values = np.asarray(replicates, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)
