"""Model cards: a good card loads its weights; a bad or missing field is named in the error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from ml.cards import (
    ModelCardError,
    Normalisation,
    discover_cards,
    load_card,
    load_model,
    save_model,
)
from ml.classes import DEFAULT_CLASSES, class_keys
from ml.models.build import build_model

IMAGENET = Normalisation(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
KEYS = class_keys(DEFAULT_CLASSES)


def _write_classifier_card(directory: Path, name: str) -> Path:
    # A TCNet-tiny head over the 22 classes: the card rules are the same for any architecture,
    # and this one builds in milliseconds.
    torch.manual_seed(0)
    model = build_model("tcnet_tiny", {"num_classes": len(KEYS)})
    confusion = [[10 if i == j else 0 for j in range(len(KEYS))] for i in range(len(KEYS))]
    card = save_model(
        model,
        directory,
        name=name,
        task="cell_classification",
        architecture="tcnet_tiny",
        config={"num_classes": len(KEYS)},
        classes=KEYS,
        input_size=224,
        normalisation=IMAGENET,
        provenance={"source": "random weights for a test"},
        metrics={"accuracy": 1.0, "confusion_matrix": confusion},
    )
    return card.path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_classifier_card(tmp_path_factory.mktemp("card"), "classifier")


def _classifier_card(directory: Path, template: Path, name: str = "classifier") -> Path:
    """A fresh copy of the template card (and its weights) in ``directory``, named ``name``."""
    shutil.copy(template.with_suffix(".pt"), directory / f"{name}.pt")
    raw = json.loads(template.read_text())
    raw.update(name=name, weights=f"{name}.pt")
    path = directory / f"{name}.json"
    path.write_text(json.dumps(raw))
    return path


def _edit(path: Path, change: Any) -> Path:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    return path


def test_a_saved_card_loads_with_the_same_weights(template: Path, tmp_path: Path) -> None:
    card = load_card(_classifier_card(tmp_path, template))
    assert card.task == "cell_classification" and card.classes == KEYS
    assert card.confusion_matrix is not None and card.confusion_matrix.shape == (22, 22)
    model = load_model(card, torch.device("cpu"))
    saved = torch.load(card.weights, map_location="cpu", weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key])


@pytest.mark.parametrize(
    "field",
    [
        "schema_version",
        "name",
        "task",
        "architecture",
        "config",
        "weights",
        "classes",
        "input_size",
        "normalisation",
        "provenance",
        "metrics",
    ],
)
def test_a_card_missing_a_required_field_names_it(
    template: Path, tmp_path: Path, field: str
) -> None:
    path = _edit(_classifier_card(tmp_path, template), lambda raw: raw.pop(field))
    with pytest.raises(ModelCardError) as caught:
        load_card(path)
    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda raw: raw.update(task="detect"), "task"),
        (lambda raw: raw.update(architecture="resnet9000"), "architecture"),
        (lambda raw: raw.update(input_size=True), "input_size"),
        (lambda raw: raw.update(input_size=-3), "input_size"),
        (lambda raw: raw.update(classes=["a", "a"]), "classes"),
        (lambda raw: raw["normalisation"].update(std=[0.2, 0.0, 0.2]), "normalisation.std"),
        (lambda raw: raw["normalisation"].pop("mean"), "normalisation.mean"),
        (lambda raw: raw["provenance"].pop("source"), "provenance"),
        (lambda raw: raw["metrics"].pop("confusion_matrix"), "metrics.confusion_matrix"),
        (lambda raw: raw["metrics"]["confusion_matrix"].pop(), "metrics.confusion_matrix"),
        (
            lambda raw: raw["metrics"]["confusion_matrix"][0].__setitem__(0, -1),
            "metrics.confusion_matrix",
        ),
        (lambda raw: raw["config"].update(num_classes=5), "config.num_classes"),
        (lambda raw: raw.update(weights="nowhere.pt"), "weights"),
        (lambda raw: raw.update(weights_sha256="0" * 64), "weights_sha256"),
    ],
)
def test_a_card_with_a_bad_field_names_it(
    template: Path, tmp_path: Path, change: Any, field: str
) -> None:
    path = _edit(_classifier_card(tmp_path, template), change)
    with pytest.raises(ModelCardError) as caught:
        load_model(load_card(path), torch.device("cpu"))
    assert caught.value.field == field


def test_weights_of_another_architecture_are_refused_by_field(
    template: Path, tmp_path: Path
) -> None:
    path = _classifier_card(tmp_path, template)
    torch.save(build_model("texture_unet_tiny").state_dict(), tmp_path / "classifier.pt")
    _edit(path, lambda raw: raw.pop("weights_sha256"))
    with pytest.raises(ModelCardError) as caught:
        load_model(load_card(path), torch.device("cpu"))
    assert caught.value.field == "weights"


def test_a_pickled_object_is_refused_because_weights_load_weights_only(
    template: Path, tmp_path: Path
) -> None:
    path = _classifier_card(tmp_path, template)
    torch.save(
        {"model": build_model("tcnet_tiny").state_dict(), "extra": Path("x")},
        tmp_path / "classifier.pt",
    )
    _edit(path, lambda raw: raw.pop("weights_sha256"))
    with pytest.raises(ModelCardError) as caught:
        load_model(load_card(path), torch.device("cpu"))
    assert caught.value.field == "weights" and "cannot be loaded" in caught.value.message


def test_a_file_that_is_not_json_is_a_card_error(template: Path, tmp_path: Path) -> None:
    bad = tmp_path / "card.json"
    bad.write_text("{not json")
    with pytest.raises(ModelCardError) as caught:
        load_card(bad)
    assert caught.value.field == "<file>"


def test_discover_refuses_two_cards_for_one_task(template: Path, tmp_path: Path) -> None:
    _classifier_card(tmp_path, template, "first")
    _classifier_card(tmp_path, template, "second")
    with pytest.raises(ModelCardError) as caught:
        discover_cards(tmp_path)
    assert caught.value.field == "task"


def test_discover_finds_nothing_in_an_empty_folder(template: Path, tmp_path: Path) -> None:
    assert discover_cards(tmp_path) == {}
    assert discover_cards(None) == {}
