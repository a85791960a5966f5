"""The default bone-marrow-aspirate cell class set (SPEC §3) and the groups the report uses.

A project may replace the class set, so every helper takes the class list as an argument that
defaults to :data:`DEFAULT_CLASSES`; nothing reads a global-only path.

Hotkeys are single lowercase letters or digits, unique within the set. The viewer keeps
``n``, ``p``, ``t``, ``f``, ``x``, ``e`` and ``d`` for navigation, TOI marking, editing and
deleting, so those are never used here. Letters are mnemonic where one is free (``m`` myeloblast,
``l`` lymphocyte, ``s`` segmented neutrophil); the erythroid series takes ``1``-``3`` and the
myelocyte series ``4``-``5`` in maturation order, so a hand on the number row walks a lineage.

Colours are Kelly's 22 colours of maximum contrast, with white and black (invisible on a bright
slide background and on dark nuclei) swapped for cyan and navy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Keys the viewer binds for navigation, TOI marking, edit and delete.
RESERVED_HOTKEYS: frozenset[str] = frozenset("nptfxed")


@dataclass(frozen=True)
class CellClass:
    """One cell class of a project's label set.

    Attributes:
        key: stable snake_case identifier stored with annotations (never renamed).
        name: human-readable name shown in the UI and the report.
        counted: whether the class enters the differential count (ICSH guideline).
        colour: ``#rrggbb`` overlay colour.
        hotkey: one lowercase letter or digit, not in :data:`RESERVED_HOTKEYS`.
    """

    key: str
    name: str
    counted: bool
    colour: str
    hotkey: str


DEFAULT_CLASSES: tuple[CellClass, ...] = (
    # Counted (16), SPEC §3.
    CellClass("myeloblast", "Myeloblast", True, "#be0032", "m"),
    CellClass("promyelocyte", "Promyelocyte", True, "#f38400", "r"),
    CellClass(
        "intermediate_neutrophilic_myelocyte",
        "Intermediate neutrophilic myelocyte",
        True,
        "#f6a600",
        "4",
    ),
    CellClass("late_neutrophilic_myelocyte", "Late neutrophilic myelocyte", True, "#f3c300", "5"),
    CellClass("band_neutrophil", "Band neutrophil", True, "#dcd300", "b"),
    CellClass("segmented_neutrophil", "Segmented neutrophil", True, "#8db600", "s"),
    CellClass("eosinophil", "Eosinophil", True, "#e25822", "i"),
    CellClass("basophil", "Basophil", True, "#604e97", "a"),
    CellClass("early_erythroblast", "Early erythroblast", True, "#882d17", "1"),
    CellClass("intermediate_erythroblast", "Intermediate erythroblast", True, "#b3446c", "2"),
    CellClass("late_erythroblast", "Late erythroblast", True, "#e68fac", "3"),
    CellClass("lymphocyte", "Lymphocyte", True, "#0067a5", "l"),
    CellClass("monocyte", "Monocyte", True, "#008856", "o"),
    CellClass("promonocyte", "Promonocyte", True, "#2b3d26", "6"),
    CellClass("immature_monocyte", "Immature monocyte", True, "#654522", "7"),
    CellClass("plasma_cell", "Plasma cell", True, "#875692", "c"),
    # Labelled but not counted (6).
    CellClass("apoptotic_cell", "Apoptotic cell", False, "#c2b280", "z"),
    CellClass("atypical_lymphocyte", "Atypical lymphocyte", False, "#a1caf1", "y"),
    CellClass("immature_lymphocyte", "Immature lymphocyte", False, "#f99379", "j"),
    CellClass("prolymphocyte", "Prolymphocyte", False, "#17becf", "k"),
    CellClass("smudge_cell", "Smudge cell", False, "#848482", "u"),
    CellClass(
        "others", "Others (irrelevant cell, fragment, impurity, red cell)", False, "#000080", "q"
    ),
)

#: Granulocytic series for the myeloid:erythroid ratio. Monocytes and lymphocytes are left out,
#: following the ICSH definition of the M:E ratio (granulocytes and precursors only).
MYELOID_KEYS: frozenset[str] = frozenset(
    {
        "myeloblast",
        "promyelocyte",
        "intermediate_neutrophilic_myelocyte",
        "late_neutrophilic_myelocyte",
        "band_neutrophil",
        "segmented_neutrophil",
        "eosinophil",
        "basophil",
    }
)

#: A classifier label, not an annotation class: a nucleated erythroid precursor whose stage the
#: classifier cannot tell. It exists because the only expert-labelled cells available offline
#: (the PBC data set) label erythroblasts without a stage, so a classifier trained on them can
#: say "erythroblast" but not "early", "intermediate" or "late". Annotators still stage
#: erythroblasts, so it is not in :data:`DEFAULT_CLASSES` (the SPEC's 22/16 default stays as is).
#: In the count (:func:`ml.count.differential_count`) such a cell IS counted: it is in the total
#: of counted cells (every share's and the blast percentage's denominator), it is on the
#: erythroid side of the M:E ratio, and it has its own line next to the 16 rows, whose shares
#: plus its share sum to 1. The three staged erythroblast rows then hold only staged cells, and
#: the classifier-coverage alert says that this classifier cannot stage erythroblasts. A project
#: that wants it as an ordinary class may add a class with this key to its own set.
ERYTHROBLAST_UNSTAGED = "erythroblast_unstaged"
#: How counts, reports and the review gallery name it (it has no project class to name it).
ERYTHROBLAST_UNSTAGED_NAME = "Erythroblast, stage not given"

#: Nucleated erythroid precursors for the M:E ratio (unstaged ones included).
ERYTHROID_KEYS: frozenset[str] = frozenset(
    {"early_erythroblast", "intermediate_erythroblast", "late_erythroblast", ERYTHROBLAST_UNSTAGED}
)

#: Blasts for the blast percentage.
BLAST_KEYS: frozenset[str] = frozenset({"myeloblast"})


def counted_keys(classes: Sequence[CellClass] = DEFAULT_CLASSES) -> tuple[str, ...]:
    """Keys of the counted classes, in class-set order (the order of the DCC histogram)."""
    return tuple(c.key for c in classes if c.counted)


def class_keys(classes: Sequence[CellClass] = DEFAULT_CLASSES) -> tuple[str, ...]:
    """Keys of all classes, in class-set order (the classifier's output order)."""
    return tuple(c.key for c in classes)


def classifier_labels(classes: Sequence[CellClass] = DEFAULT_CLASSES) -> tuple[str, ...]:
    """Every label a cell classifier may emit for this class set, in report order.

    That is the class keys plus :data:`ERYTHROBLAST_UNSTAGED` (placed after the last staged
    erythroblast when the set has one, else at the end). A card whose classes fall outside this
    cannot be used with the project.
    """
    keys = list(class_keys(classes))
    if ERYTHROBLAST_UNSTAGED not in keys:
        staged = [i for i, k in enumerate(keys) if k in ERYTHROID_KEYS]
        keys.insert(staged[-1] + 1 if staged else len(keys), ERYTHROBLAST_UNSTAGED)
    return tuple(keys)


def class_by_key(classes: Sequence[CellClass] = DEFAULT_CLASSES) -> dict[str, CellClass]:
    """Map key -> class for look-ups."""
    return {c.key: c for c in classes}


def validate_classes(classes: Iterable[CellClass]) -> None:
    """Raise ``ValueError`` unless keys, colours and hotkeys are unique and well formed.

    Checks: keys are non-empty snake_case, colours are ``#rrggbb`` and distinct, hotkeys are a
    single lowercase letter or digit, distinct and not reserved by the viewer.
    """
    classes = tuple(classes)
    for field in ("key", "colour", "hotkey"):
        values = [getattr(c, field) for c in classes]
        if len(set(values)) != len(values):
            raise ValueError(f"duplicate {field} in class set")
    for c in classes:
        if not c.key or not all(ch.islower() or ch.isdigit() or ch == "_" for ch in c.key):
            raise ValueError(f"class key {c.key!r} is not snake_case")
        if len(c.colour) != 7 or c.colour[0] != "#" or not _is_hex(c.colour[1:]):
            raise ValueError(f"colour {c.colour!r} of {c.key} is not #rrggbb")
        if len(c.hotkey) != 1 or not (c.hotkey.islower() or c.hotkey.isdigit()):
            raise ValueError(f"hotkey {c.hotkey!r} of {c.key} is not one lowercase letter/digit")
        if c.hotkey in RESERVED_HOTKEYS:
            raise ValueError(f"hotkey {c.hotkey!r} of {c.key} is reserved by the viewer")


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in text)


COUNTED_KEYS: tuple[str, ...] = counted_keys(DEFAULT_CLASSES)
