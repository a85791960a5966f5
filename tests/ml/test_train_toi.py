"""``python -m ml train toi`` on a real TOI-CLS export: a card the TOI stage loads, with the
paper's accuracy, precision, recall, F1 and AUROC."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.cards import load_card, load_model
from ml.cli import main
from ml.models.predictors import TilePredictor
from ml.pipeline import PipelineConfig, build_stages
from ml.train import layouts

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(bccd_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toi")
    args = ["train", "toi", "--data", str(bccd_export), "--out", str(out), "--tiny",
            "--epochs", "1", "--img-size", "64", "--batch-size", "16", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    return out / "toi-tcnet-tiny.json"


def test_a_tiny_toi_training_writes_a_card_with_the_papers_figures(trained: Path) -> None:
    card = load_card(trained)
    assert card.task == "toi" and card.architecture == "tcnet_tiny"
    assert card.classes == ("non_toi", "toi") and card.input_size == 64
    for split in ("validation", "test"):
        figures = card.metrics[split]
        assert figures["positive_class"] == "toi" and figures["n"] == 4  # one slide, 4 tiles
        for key in ("accuracy", "precision", "recall", "f1"):
            assert 0.0 <= figures[key] <= 1.0
        assert figures["auroc"] is None or 0.0 <= figures["auroc"] <= 1.0
        assert sum(map(sum, figures["confusion_matrix"])) == 4
    assert card.metrics["f1"] == card.metrics["validation"]["f1"]


def test_the_toi_card_runs_as_the_pipelines_toi_stage_on_real_tiles(
    trained: Path, bccd_export: Path
) -> None:
    card = load_card(trained)
    stages = build_stages({"toi": card}, CPU, PipelineConfig())
    assert stages.toi is not None
    tiles = [
        layouts.read_rgb(p)
        for p, _ in layouts.toi_tiles(bccd_export / "toi_cls" / "val", card.classes)
    ]
    probs = TilePredictor(load_model(card, CPU), card, CPU).predict(tiles)
    assert probs.shape == (4,) and ((probs >= 0) & (probs <= 1)).all()
