"""The differential cell count (DCC) and its alerts (SPEC §4).

Labels are class keys of a project's class set (:mod:`ml.classes`), plus two reserved labels:
:data:`UNCLASSIFIED`, which the pipeline uses for cells found while no classifier is installed,
and :data:`ml.classes.ERYTHROBLAST_UNSTAGED`, which a classifier that cannot stage erythroblasts
emits (counted, erythroid, on a line of its own; see there).
Proportions are fractions in [0, 1]; percentages (blast percentage, the vectors compared with a
manual count) are in [0, 100] and say so in their names. Every result has ``to_dict()`` giving a
JSON-friendly dict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ml.classes import (
    BLAST_KEYS,
    DEFAULT_CLASSES,
    ERYTHROBLAST_UNSTAGED,
    ERYTHROBLAST_UNSTAGED_NAME,
    ERYTHROID_KEYS,
    MYELOID_KEYS,
    CellClass,
    class_by_key,
    class_keys,
    counted_keys,
)
from ml.metrics import BlandAltman, bland_altman, lins_ccc, pearson_r, wilson_interval

#: Label of a cell found by segmentation but never classified (no classifier installed).
UNCLASSIFIED = "unclassified"

#: Top-class probability below which a cell must be reviewed before sign-off (SPEC §4).
REVIEW_THRESHOLD = 0.60

#: Validation misclassification rate from which a class counts as error-prone (SPEC §4).
RESCREENING_THRESHOLD = 0.10


@dataclass(frozen=True)
class DccRow:
    """One counted class: count, share of all counted cells and its 95% Wilson interval."""

    key: str
    name: str
    count: int
    proportion: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Dcc:
    """A differential cell count.

    Attributes:
        rows: one row per counted class, in class-set order (zeros included).
        total_counted: number of cells in counted classes, unstaged erythroblasts included (the
            DCC denominator).
        non_counted: tally per non-counted class, in class-set order (zeros included).
        unclassified: number of cells labelled :data:`UNCLASSIFIED`.
        classifier_installed: ``False`` when the cells were found but not classified; then the
            rows are all zero and ``message`` says so.
        me_ratio: myeloid:erythroid ratio, ``None`` when no erythroid cell was counted.
        blast_percentage: blasts as a percentage (0-100) of counted cells, ``None`` when nothing
            was counted.
        message: a plain sentence for the report when the count cannot be given, else ``""``.
        erythroblasts_unstaged: counted erythroblasts labelled
            :data:`ml.classes.ERYTHROBLAST_UNSTAGED` (when that is not a class of the set): in
            ``total_counted`` and the M:E ratio, in no row. The rows' shares plus
            ``erythroblasts_unstaged / total_counted`` sum to 1.
        unstaged_row: the same as a row of its own (:data:`ml.classes.ERYTHROBLAST_UNSTAGED_NAME`,
            share and interval), for a report to list after ``rows``; ``None`` when there are none.
    """

    rows: tuple[DccRow, ...]
    total_counted: int
    non_counted: dict[str, int]
    unclassified: int
    classifier_installed: bool
    me_ratio: float | None
    blast_percentage: float | None
    message: str = ""
    erythroblasts_unstaged: int = 0
    unstaged_row: DccRow | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Counted class key -> count, in class-set order; plus
        :data:`ml.classes.ERYTHROBLAST_UNSTAGED` last when there are unstaged erythroblasts."""
        counts = {row.key: row.count for row in self.rows}
        if self.erythroblasts_unstaged:
            counts[ERYTHROBLAST_UNSTAGED] = self.erythroblasts_unstaged
        return counts

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (rows become a list of dicts)."""
        out = asdict(self)
        out["rows"] = [asdict(row) for row in self.rows]
        return out


def differential_count(
    labels: Sequence[str],
    classes: Sequence[CellClass] = DEFAULT_CLASSES,
    *,
    myeloid_keys: Iterable[str] = MYELOID_KEYS,
    erythroid_keys: Iterable[str] = ERYTHROID_KEYS,
    blast_keys: Iterable[str] = BLAST_KEYS,
    z: float = 1.96,
) -> Dcc:
    """Count cells by class: the 16-component DCC (for the default set) plus side tallies.

    ``labels`` holds one class key per cell, or :data:`UNCLASSIFIED`. A label that is neither
    raises ``ValueError``: the count never invents or drops classes silently. Group keys missing
    from ``classes`` simply contribute nothing. Cells a classifier calls ``others`` (or any
    class not counted) go to ``non_counted``, never into the count.
    """
    tally = Counter(labels)
    known = {c.key for c in classes} | {UNCLASSIFIED, ERYTHROBLAST_UNSTAGED}
    unknown = sorted(set(tally) - known)
    if unknown:
        raise ValueError(f"labels not in the class set: {unknown}")
    unstaged = 0 if ERYTHROBLAST_UNSTAGED in class_keys(classes) else tally[ERYTHROBLAST_UNSTAGED]
    total = sum(tally[k] for k in counted_keys(classes)) + unstaged
    rows = tuple(_row(c.key, c.name, tally[c.key], total, z) for c in classes if c.counted)
    unclassified = tally[UNCLASSIFIED]
    installed = not (unclassified > 0 and unclassified == sum(tally.values()))
    erythroid = sum(tally[k] for k in erythroid_keys)
    return Dcc(
        rows=rows,
        total_counted=total,
        non_counted={c.key: tally[c.key] for c in classes if not c.counted},
        unclassified=unclassified,
        classifier_installed=installed,
        me_ratio=sum(tally[k] for k in myeloid_keys) / erythroid if erythroid else None,
        blast_percentage=100.0 * sum(tally[k] for k in blast_keys) / total if total else None,
        message="" if installed else _no_classifier_message(unclassified),
        erythroblasts_unstaged=unstaged,
        unstaged_row=(
            _row(ERYTHROBLAST_UNSTAGED, ERYTHROBLAST_UNSTAGED_NAME, unstaged, total, z)
            if unstaged
            else None
        ),
    )


def _row(key: str, name: str, count: int, total: int, z: float) -> DccRow:
    low, high = wilson_interval(count, total, z)
    proportion = count / total if total else 0.0
    return DccRow(key, name, count, proportion, low, high)


def _no_classifier_message(n_cells: int) -> str:
    return (
        f"No cell classifier is installed: {n_cells} cells were found but not classified, "
        "so no differential count is given."
    )


def review_flags(probabilities: np.ndarray, threshold: float = REVIEW_THRESHOLD) -> np.ndarray:
    """Cells to review: ``True`` where the top class probability is below ``threshold``.

    ``probabilities`` is float ``(N, C)``, each row a softmax over the class set; returns bool
    ``(N,)``. A cell exactly at the threshold is not flagged (the rule is "below 0.60").
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must be (N, C), got {probabilities.shape}")
    if probabilities.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return probabilities.max(axis=1) < threshold


def misclassification_rates(
    confusion: np.ndarray, labels: Sequence[str]
) -> dict[str, float | None]:
    """Per-class misclassification rate ``1 - recall`` from a validation confusion matrix.

    ``confusion`` is ``(L, L)``, row = true class, column = predicted class, in ``labels`` order
    (as :func:`ml.metrics.confusion_matrix`). A class with no validation sample has an unknown
    rate and maps to ``None``.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion must be ({len(labels)}, {len(labels)}), got {confusion.shape}")
    support = confusion.sum(axis=1)
    return {
        label: (1.0 - confusion[i, i] / support[i]) if support[i] > 0 else None
        for i, label in enumerate(labels)
    }


@dataclass(frozen=True)
class Alert:
    """A report alert: ``kind`` is a stable id, ``classes`` maps the class keys that caused it to
    their misclassification rates."""

    kind: str
    message: str
    classes: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


def rescreening_alert(
    present_classes: Iterable[str],
    misclassification_rates: Mapping[str, float | None],
    threshold: float = RESCREENING_THRESHOLD,
) -> Alert | None:
    """The "automatic rescreening" alert of SPEC §4, or ``None``.

    Fires when MORE THAN ONE class in ``present_classes`` (classes with at least one cell in the
    count) has a validation misclassification rate ``>= threshold``. Classes absent from the
    count never contribute; a class with an unknown rate (``None`` or missing from the mapping,
    i.e. no validation samples) cannot be shown to be error-prone and does not contribute either.
    """
    risky = {
        key: float(rate)
        for key in dict.fromkeys(present_classes)
        if (rate := misclassification_rates.get(key)) is not None and rate >= threshold
    }
    if len(risky) <= 1:
        return None
    names = ", ".join(f"{key} ({rate:.0%})" for key, rate in risky.items())
    message = (
        f"Automatic rescreening: {len(risky)} cell types in this count have a validation "
        f"misclassification rate of {threshold:.0%} or more: {names}. Verify the count manually."
    )
    return Alert(kind="automatic_rescreening", message=message, classes=risky)


def coverage_alert(
    classifier_classes: Sequence[str], classes: Sequence[CellClass] = DEFAULT_CLASSES
) -> Alert | None:
    """A ``classifier_coverage`` alert naming the counted classes the classifier cannot output.

    A cell of such a class is always called something else, so its row is 0 (or its cells
    inflate another row): each is listed in ``classes`` with misclassification rate 1.0. ``None``
    when the classifier covers every counted class. A classifier that emits
    :data:`ml.classes.ERYTHROBLAST_UNSTAGED` is said to count erythroblasts without a stage.
    """
    known = set(classifier_classes)
    counted = counted_keys(classes)
    missing = [key for key in counted if key not in known]
    if not missing:
        return None
    by_key = class_by_key(classes)
    names = ", ".join(by_key[key].name.lower() for key in missing)
    message = (
        f"The cell classifier cannot recognise {len(missing)} of the {len(counted)} counted "
        f"classes: {names}. Cells of those classes are counted as a class it knows, so those "
        "rows read 0 and others may be inflated; verify them manually."
    )
    if ERYTHROBLAST_UNSTAGED in known and any(key in ERYTHROID_KEYS for key in missing):
        message += (
            " It cannot stage erythroblasts: they are counted, and enter the M:E ratio, on a "
            "line of their own (erythroblast, stage not given)."
        )
    return Alert(kind="classifier_coverage", message=message, classes=dict.fromkeys(missing, 1.0))


@dataclass(frozen=True)
class ManualComparison:
    """Agreement of an automated and a manual DCC on the counted-class percentage vectors.

    ``auto_percent`` and ``manual_percent`` are in [0, 100], in ``keys`` order. Statistics that are
    undefined for the data (see :mod:`ml.metrics`) are ``None``.
    """

    keys: tuple[str, ...]
    auto_percent: tuple[float, ...]
    manual_percent: tuple[float, ...]
    pearson_r: float | None
    lins_ccc: float | None
    bland_altman: BlandAltman | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


def compare_with_manual(
    auto_counts: Mapping[str, int],
    manual_counts: Mapping[str, int],
    classes: Sequence[CellClass] = DEFAULT_CLASSES,
) -> ManualComparison:
    """Pearson r, Lin's CCC and Bland-Altman between the automated and manual DCC.

    Both count mappings are class key -> count; keys outside the counted classes are ignored and
    missing keys count 0. Each is turned into a percentage vector over the counted classes (a
    count with no counted cell gives all zeros, which makes the correlations ``None``).

    When either count holds unstaged erythroblasts (:data:`ml.classes.ERYTHROBLAST_UNSTAGED`,
    as :attr:`Dcc.counts` gives them), stages cannot be compared: the staged erythroblast
    classes and the unstaged ones become one component, :data:`POOLED_ERYTHROBLASTS`, placed
    where the first staged class was.
    """
    keys = counted_keys(classes)
    if auto_counts.get(ERYTHROBLAST_UNSTAGED) or manual_counts.get(ERYTHROBLAST_UNSTAGED):
        keys, auto_counts, manual_counts = _pool_erythroblasts(keys, auto_counts, manual_counts)
    auto = _percent_vector(auto_counts, keys)
    manual = _percent_vector(manual_counts, keys)
    return ManualComparison(
        keys=keys,
        auto_percent=tuple(auto.tolist()),
        manual_percent=tuple(manual.tolist()),
        pearson_r=pearson_r(auto, manual),
        lins_ccc=lins_ccc(auto, manual) if auto.sum() and manual.sum() else None,
        bland_altman=bland_altman(auto, manual),
    )


#: The component of a manual comparison that pools erythroblasts of every stage (and none).
POOLED_ERYTHROBLASTS = "erythroblasts_all_stages"
POOLED_ERYTHROBLASTS_NAME = "Erythroblasts, all stages"


def _pool_erythroblasts(
    keys: Sequence[str], *counts: Mapping[str, int]
) -> tuple[tuple[str, ...], Mapping[str, int], Mapping[str, int]]:
    erythroid = [k for k in (*keys, ERYTHROBLAST_UNSTAGED) if k in ERYTHROID_KEYS]
    at = next((i for i, k in enumerate(keys) if k in ERYTHROID_KEYS), len(keys))
    rest = [k for k in keys if k not in ERYTHROID_KEYS]
    pooled_keys = (*rest[:at], POOLED_ERYTHROBLASTS, *rest[at:])
    pooled = [
        {**c, POOLED_ERYTHROBLASTS: sum(c.get(k, 0) for k in dict.fromkeys(erythroid))}
        for c in counts
    ]
    return pooled_keys, pooled[0], pooled[1]


def _percent_vector(counts: Mapping[str, int], keys: Sequence[str]) -> np.ndarray:
    vector = np.array([counts.get(k, 0) for k in keys], dtype=np.float64)
    total = vector.sum()
    return 100.0 * vector / total if total else vector
