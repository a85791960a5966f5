"""Registry test helpers: a fresh MODEL_DIR and EXPORT_DIR per test, small real model cards
(random weights of a real architecture, written by ``ml.cards.save_model``), and a worker that
runs queued jobs in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.cards import Normalisation, save_model
from ml.models.build import build_model

CLASSES = ("lymphocyte", "myeloblast")


@pytest.fixture(autouse=True)
def registry_dirs(settings, tmp_path: Path) -> Path:
    from apps.analysis import runtime

    # Not tmp_path / "models": test_setup_models.py makes that one itself.
    settings.MODEL_DIR = tmp_path / "model-dir"
    settings.MODEL_DIR.mkdir()
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.ANALYSIS_DEVICE = "cpu"
    runtime.clear()
    yield settings.MODEL_DIR
    runtime.clear()


def classifier_card(directory: Path, *, seed: int = 0, name: str = "tiny-classifier") -> Path:
    """A TCNet-tiny cell classifier over :data:`CLASSES` with random weights drawn with ``seed``
    (so two seeds give two different weights files); its card path."""
    torch.manual_seed(seed)
    card = save_model(
        build_model("tcnet_tiny", {"num_classes": len(CLASSES)}),
        directory,
        name=name,
        task="cell_classification",
        architecture="tcnet_tiny",
        config={"num_classes": len(CLASSES)},
        classes=CLASSES,
        input_size=224,
        normalisation=Normalisation(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
        provenance={"source": f"random weights (seed {seed}) for a test"},
        metrics={"accuracy": 0.5, "confusion_matrix": [[3, 1], [2, 4]]},
    )
    return card.path


@pytest.fixture
def sync_worker(monkeypatch, django_capture_on_commit_callbacks):
    """Run queued django-q2 tasks in-process when the request's transaction commits."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)
