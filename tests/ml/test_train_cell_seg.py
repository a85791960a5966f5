"""``python -m ml train cell-seg`` on a real CELL-SEG export: SAM's mask decoder fine-tuned
with the encoders frozen, Recall50/75 on the card, and a card the segmentation stage loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.cards import load_card, load_model
from ml.cli import main
from ml.models.build import build_model
from ml.models.sam_everything import SamEverything
from ml.pipeline import PipelineConfig, build_stages
from ml.stages.cells import BoxPromptSegmenter
from ml.train import layouts
from ml.zoo import install_lite_medsam
from tests.ml.exports import write_bccd_export

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(bccd_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cell-seg")
    args = ["train", "cell-seg", "--data", str(bccd_export), "--out", str(out), "--tiny",
            "--epochs", "1", "--batch-size", "32", "--lr", "1e-4", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    return out / "cell-seg-sam-tiny-decoder-tuned.json"


def test_only_the_mask_decoder_changes_and_the_card_has_recall50_and_recall75(
    trained: Path,
) -> None:
    card = load_card(trained)
    assert card.task == "cell_segmentation" and card.architecture == "sam_tiny"
    assert card.provenance["prompts"] == "points" and card.input_size == 256
    for split in ("validation", "test"):
        figures = card.metrics[split]
        assert figures["n_cells"] > 0
        assert 0.0 <= figures["recall75"] <= figures["recall50"] <= 1.0
        assert figures["loss"] > 0
    # The frozen encoders keep their initial (seeded) weights; the decoder moved.
    torch.manual_seed(0)
    initial = build_model("sam_tiny", {}).state_dict()
    tuned = load_model(card, CPU).state_dict()
    changed = {k.split(".")[0] for k, v in tuned.items() if not torch.equal(v, initial[k])}
    assert changed == {"mask_decoder"}


def test_the_tuned_sam_runs_in_everything_mode_as_the_pipelines_segmenter(
    trained: Path, bccd_export: Path
) -> None:
    card = load_card(trained)
    stages = build_stages({"cell_segmentation": card}, CPU, PipelineConfig())
    assert stages.cells.source.name == card.name
    (image, _), *_ = layouts.cell_seg_tiles(bccd_export / "cell_seg" / "val")
    generator = SamEverything(load_model(card, CPU), CPU, points_per_side=4, pred_iou_thresh=0.0,
                              stability_score_thresh=0.0)  # fmt: skip
    (found,) = generator.generate([layouts.read_rgb(image)])
    assert found.boxes.shape[1] == 4


@pytest.mark.slow
def test_litemedsam_is_fine_tuned_from_its_published_card_with_box_prompts(
    tmp_path: Path,
) -> None:
    export = write_bccd_export(tmp_path / "small", n=3)  # two training slides: a quick epoch
    lite = install_lite_medsam(tmp_path / "models")
    assert lite is not None
    out = tmp_path / "out"
    args = ["train", "cell-seg", "--data", str(export), "--out", str(out), "--init", str(lite.path),
            "--epochs", "1", "--batch-size", "32", "--lr", "1e-5", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    card = load_card(out / "cell-seg-lite-medsam-decoder-tuned.json")
    assert card.architecture == "lite_medsam" and card.provenance["prompts"] == "boxes"
    assert card.provenance["init"] == lite.name and card.input_size == 256
    figures = card.metrics["validation"]
    assert 0.0 <= figures["recall75"] <= figures["recall50"] <= 1.0
    # Published weights prompted by each cell's own box find most BCCD cells.
    assert figures["recall50"] >= 0.5
    config = PipelineConfig(lite_medsam_cells=True)
    stages = build_stages({"cell_segmentation": card}, CPU, config)
    assert isinstance(stages.cells, BoxPromptSegmenter)
