"""``python -m ml train roi`` on a real ROI-SEG export: a card the ROI stage loads, the paper's
figures, a resumed run ending on the same weights, and a stop on a non-finite loss."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.cards import load_card, load_model
from ml.cli import main
from ml.models.predictors import RoiPredictor
from ml.pipeline import PipelineConfig, build_stages
from ml.train import layouts

CPU = torch.device("cpu")


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "roi", "--data", str(data), "--out", str(out), "--tiny", "--epochs", "1",
                 "--no-progress", *extra])  # fmt: skip


@pytest.fixture(scope="module")
def trained(bccd_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("roi")
    assert _train(bccd_export, out) == 0
    return out / "roi-texture-unet-tiny.json"


def test_a_tiny_roi_training_writes_a_card_with_iou_dice_and_pixel_accuracy(trained: Path) -> None:
    card = load_card(trained)
    assert card.task == "roi" and card.architecture == "texture_unet_tiny"
    assert card.classes == ("background", "roi") and card.input_size == 256
    for split in ("validation", "test"):
        figures = card.metrics[split]
        assert set(figures) == {"iou", "dice", "pixel_accuracy"}
        assert all(0.0 <= v <= 1.0 for v in figures.values())
    assert card.metrics["dice"] == card.metrics["validation"]["dice"]
    assert card.provenance["split"]["source"].startswith("the export's split by slide")
    assert card.provenance["history"][0]["epoch"] == 0


def test_the_roi_card_runs_as_the_pipelines_roi_stage_on_a_real_thumbnail(
    trained: Path, bccd_export: Path
) -> None:
    card = load_card(trained)
    stages = build_stages({"roi": card}, CPU, PipelineConfig())
    assert stages.roi is not None
    (image, _), *_ = layouts.roi_pairs(bccd_export / "roi_seg" / "train")
    thumbnail = layouts.read_rgb(image)
    probs = RoiPredictor(load_model(card, CPU), card, CPU).predict(thumbnail)
    assert probs.shape == thumbnail.shape[:2] and 0.0 <= probs.min() <= probs.max() <= 1.0


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_resumed_training_ends_on_the_same_weights_as_an_uninterrupted_one(
    bccd_export: Path, tmp_path: Path
) -> None:
    two = ["--epochs", "2", "--batch-size", "2"]
    assert _train(bccd_export, tmp_path / "straight", *two) == 0
    assert _train(bccd_export, tmp_path / "paused", *two, "--stop-after-epoch", "1") == 0
    assert not list((tmp_path / "paused").glob("*.json"))  # stopped: a checkpoint, no card
    checkpoint = torch.load(tmp_path / "paused" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 0 and {"torch", "generator"} <= set(checkpoint["rng"])
    assert _train(bccd_export, tmp_path / "paused", *two, "--resume") == 0
    weights = "roi-texture-unet-tiny.pt"
    assert _sha(tmp_path / "paused" / weights) == _sha(tmp_path / "straight" / weights)
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    resumed = torch.load(tmp_path / "paused" / "checkpoint.pt", weights_only=True)
    assert resumed["epoch"] == straight["epoch"] == 1
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    history = load_card(tmp_path / "paused" / "roi-texture-unet-tiny.json").provenance["history"]
    assert [row["epoch"] for row in history] == [0, 1]
    assert np.isfinite([row["loss"] for row in history]).all()


def test_an_absurd_learning_rate_stops_roi_training_on_the_non_finite_loss(
    bccd_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(bccd_export, tmp_path / "out", "--lr", "1e30", "--batch-size", "1") == 1
    err = capsys.readouterr().err
    assert "error: loss is nan" in err and "training stopped" in err
    assert not list((tmp_path / "out").glob("*.json"))


def test_a_folder_without_roi_seg_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, tmp_path / "out") == 1
    assert "holds no roi_seg/ folder" in capsys.readouterr().err
