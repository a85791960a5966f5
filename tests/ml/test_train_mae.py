"""``python -m ml train mae-pretrain`` on real CELL-CLS-UNLABELED crops: an encoder card whose
weights load as the ViT the classifier fine-tunes, with the reconstruction loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.cards import discover_cards, load_card, load_model
from ml.cli import main
from ml.models.build import build_model
from ml.train import layouts
from ml.zoo import install_lite_medsam

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(bccd_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mae")
    args = ["train", "mae-pretrain", "--data", str(bccd_export), "--out", str(out), "--tiny",
            "--epochs", "1", "--img-size", "64", "--batch-size", "64", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    return out / "mae-vit-tiny-mae-encoder.json"


def test_mae_pretraining_writes_an_encoder_card_with_its_reconstruction_loss(trained: Path) -> None:
    card = load_card(trained)
    assert card.task == "cell_encoder" and card.architecture == "mae_vit_tiny"
    assert card.config == {"num_classes": 0, "img_size": 64} and card.classes == ()
    assert card.metrics["mask_ratio"] == 0.75
    for split in ("validation", "test"):
        assert 0.0 < card.metrics[split]["reconstruction_loss"] < 10.0
        assert card.metrics[split]["n"] > 0
    # An encoder is not a pipeline stage: a models folder holding it gives no stage a card.
    assert discover_cards(trained.parent) == {}


def test_the_encoder_loads_strictly_and_its_weights_fit_the_classifier_but_the_head(
    trained: Path, bccd_export: Path
) -> None:
    card = load_card(trained)
    encoder = load_model(card, CPU)
    crop = layouts.read_rgb(layouts.pngs(bccd_export / "cell_cls_unlabeled" / "val")[0])
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    assert encoder(x).shape == (1, 192)
    classifier = build_model("mae_vit_tiny", {"num_classes": 22, "img_size": 64})
    missing, unexpected = classifier.load_state_dict(encoder.state_dict(), strict=False)
    assert set(missing) == {"head.weight", "head.bias"} and not unexpected


@pytest.mark.slow
def test_the_cell_classifier_starts_from_the_encoder_card_with_init(
    trained: Path, bccd_export: Path, tmp_path: Path
) -> None:
    out = tmp_path / "classifier"
    args = ["train", "cell-classifier", "--data", str(bccd_export),
            "--out", str(out), "--init", str(trained), "--epochs", "1", "--batch-size", "32",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    (path,) = out.glob("*.json")
    card = load_card(path)
    encoder = load_card(trained)
    assert card.architecture == "mae_vit_tiny" and card.input_size == 64
    assert card.config == {"num_classes": 2, "img_size": 64}
    assert set(card.classes) == {"neutrophil", "others"}
    assert card.provenance["pretrained"] == {
        "card": encoder.name,
        "weights_sha256": encoder.weights_sha256,
    }
    assert card.confusion_matrix is not None and card.confusion_matrix.shape == (2, 2)
    # The export's split by slide is kept: validation and test are the manifest's slides.
    assert card.provenance["split"]["by"] == "slide"
    assert card.provenance["dataset"]["layout"] == "export"
    assert card.metrics["validation"]["n"] == len(
        layouts.image_folder(bccd_export / "cell_cls_labeled" / "val")
    )


def test_init_refuses_a_card_that_is_not_an_encoder(
    bccd_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = install_lite_medsam(tmp_path / "models")
    assert card is not None
    args = ["train", "cell-classifier", "--data", str(bccd_export / "cell_cls_labeled" / "train"),
            "--out", str(tmp_path / "o"), "--init", str(card.path), "--no-progress"]  # fmt: skip
    assert main(args) == 1
    assert "--init needs a 'cell_encoder' card" in capsys.readouterr().err


def test_a_vit_encoder_refuses_another_input_side(
    trained: Path, bccd_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "cell-classifier", "--data", str(bccd_export), "--out", str(tmp_path / "o"),
            "--init", str(trained), "--img-size", "32", "--no-progress"]  # fmt: skip
    assert main(args) == 1
    assert "takes 64 px only, not --img-size 32" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
