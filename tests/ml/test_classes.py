from __future__ import annotations

import dataclasses

import pytest

from ml.classes import (
    BLAST_KEYS,
    COUNTED_KEYS,
    DEFAULT_CLASSES,
    ERYTHROBLAST_UNSTAGED,
    ERYTHROID_KEYS,
    MYELOID_KEYS,
    RESERVED_HOTKEYS,
    CellClass,
    class_by_key,
    classifier_labels,
    counted_keys,
    validate_classes,
)

SPEC_COUNTED = {
    "band_neutrophil",
    "basophil",
    "early_erythroblast",
    "eosinophil",
    "immature_monocyte",
    "intermediate_erythroblast",
    "intermediate_neutrophilic_myelocyte",
    "late_erythroblast",
    "late_neutrophilic_myelocyte",
    "lymphocyte",
    "monocyte",
    "myeloblast",
    "plasma_cell",
    "promonocyte",
    "promyelocyte",
    "segmented_neutrophil",
}
SPEC_NOT_COUNTED = {
    "apoptotic_cell",
    "atypical_lymphocyte",
    "immature_lymphocyte",
    "prolymphocyte",
    "smudge_cell",
    "others",
}


def test_default_set_has_the_22_spec_classes_with_16_counted() -> None:
    assert len(DEFAULT_CLASSES) == 22
    assert set(COUNTED_KEYS) == SPEC_COUNTED
    assert {c.key for c in DEFAULT_CLASSES if not c.counted} == SPEC_NOT_COUNTED


def test_default_set_passes_validation() -> None:
    validate_classes(DEFAULT_CLASSES)


def test_hotkeys_avoid_the_viewer_keys() -> None:
    assert not {c.hotkey for c in DEFAULT_CLASSES} & RESERVED_HOTKEYS
    assert set("nptfxed") <= RESERVED_HOTKEYS


def test_colours_are_distinct_hex() -> None:
    colours = [c.colour for c in DEFAULT_CLASSES]
    assert len(set(colours)) == 22
    assert all(len(c) == 7 and int(c[1:], 16) >= 0 for c in colours)


def test_groups_are_counted_classes_and_disjoint() -> None:
    assert MYELOID_KEYS <= SPEC_COUNTED
    assert ERYTHROID_KEYS - {ERYTHROBLAST_UNSTAGED} <= SPEC_COUNTED  # plus the classifier label
    assert not MYELOID_KEYS & ERYTHROID_KEYS
    assert {"myeloblast"} == BLAST_KEYS


def test_counted_keys_follows_a_replacement_class_set() -> None:
    other = (
        CellClass("a_cell", "A", True, "#000001", "a"),
        CellClass("junk", "Junk", False, "#000002", "b"),
        CellClass("b_cell", "B", True, "#000003", "c"),
    )
    assert counted_keys(other) == ("a_cell", "b_cell")
    assert class_by_key(other)["junk"].counted is False


def test_validation_rejects_reserved_or_duplicate_hotkeys() -> None:
    first = DEFAULT_CLASSES[0]
    with pytest.raises(ValueError, match="reserved"):
        validate_classes([dataclasses.replace(first, hotkey="d")])
    with pytest.raises(ValueError, match="duplicate hotkey"):
        validate_classes([first, dataclasses.replace(first, key="x2", colour="#123456")])


def test_cell_class_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_CLASSES[0].counted = False  # type: ignore[misc]


def test_unstaged_erythroblasts_are_a_classifier_label_not_an_annotation_class() -> None:
    labels = classifier_labels()
    assert ERYTHROBLAST_UNSTAGED not in {c.key for c in DEFAULT_CLASSES}
    assert ERYTHROBLAST_UNSTAGED in ERYTHROID_KEYS
    assert labels[labels.index("late_erythroblast") + 1] == ERYTHROBLAST_UNSTAGED
    assert len(labels) == len(DEFAULT_CLASSES) + 1


def test_a_class_set_with_its_own_unstaged_class_is_left_as_it_is() -> None:
    own = (CellClass(ERYTHROBLAST_UNSTAGED, "Erythroblast", True, "#112233", "a"),
           CellClass("b_cell", "B", True, "#445566", "b"))  # fmt: skip
    assert classifier_labels(own) == (ERYTHROBLAST_UNSTAGED, "b_cell")
    assert classifier_labels(own[1:]) == ("b_cell", ERYTHROBLAST_UNSTAGED)
