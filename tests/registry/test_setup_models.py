"""``manage.py setup_models`` trains the starter classifier once (tiny here; jobs run in sync)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.registry.services import LOCK_NAME
from ml.cards import load_card
from tests.ml.data import SHARED_DATA

TINY = ["--limit-per-class", "4", "--epochs", "1", "--img-size", "32"]


@pytest.fixture
def model_dir(settings, tmp_path: Path) -> Path:
    settings.MODEL_DIR = tmp_path / "models"
    settings.SHARED_DATA_DIR = SHARED_DATA
    return settings.MODEL_DIR


def _setup_models(*args: str) -> str:
    out = io.StringIO()
    call_command("setup_models", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_setup_trains_the_starter_once_and_then_leaves_it_alone(model_dir: Path) -> None:
    first = _setup_models(*TINY)
    (card_path,) = model_dir.glob("*.json")
    card = load_card(card_path)
    assert "training in the background" in first
    assert card.name.endswith("NOT-MARROW-VALIDATED") and card.weights.parent == model_dir
    assert not (model_dir / LOCK_NAME).exists()
    written = card_path.stat().st_mtime_ns

    second = _setup_models(*TINY)
    assert "a card is installed" in second
    assert list(model_dir.glob("*.json")) == [card_path]
    assert card_path.stat().st_mtime_ns == written


@pytest.mark.django_db
def test_a_queued_training_is_not_queued_twice(model_dir: Path) -> None:
    model_dir.mkdir(parents=True)
    (model_dir / LOCK_NAME).write_text(
        json.dumps({"state": "queued", "pid": os.getpid(), "since": "2999-01-01T00:00:00+00:00"})
    )
    assert "already queued or running" in _setup_models(*TINY)
    assert not list(model_dir.glob("*.json"))


@pytest.mark.django_db
def test_a_lock_left_by_a_dead_training_is_replaced(model_dir: Path) -> None:
    model_dir.mkdir(parents=True)
    dead = {"state": "running", "pid": 2**22 + 12345, "since": "2020-01-01T00:00:00+00:00"}
    (model_dir / LOCK_NAME).write_text(json.dumps(dead))
    assert "training in the background" in _setup_models(*TINY)
    assert len(list(model_dir.glob("*.json"))) == 1


@pytest.mark.django_db
def test_without_the_pbc_cells_setup_says_how_to_train_later(settings, tmp_path: Path) -> None:
    settings.MODEL_DIR = tmp_path / "models"
    settings.SHARED_DATA_DIR = tmp_path / "no-shared-data"
    out = _setup_models(*TINY)
    assert "no PBC cells" in out and "python -m ml train cell-classifier" in out
    assert not settings.MODEL_DIR.exists() or not list(settings.MODEL_DIR.glob("*.json"))


@pytest.mark.django_db
def test_a_broken_card_in_the_model_folder_is_named_and_nothing_is_queued(
    model_dir: Path,
) -> None:
    model_dir.mkdir(parents=True)
    (model_dir / "broken.json").write_text("{not json")
    err = io.StringIO()
    call_command("setup_models", *TINY, stdout=io.StringIO(), stderr=err)
    assert "broken.json" in err.getvalue() and "nothing queued" in err.getvalue()
    assert not (model_dir / LOCK_NAME).exists()
