"""``python -m ml train cell-classifier`` on a few real PBC cells: a card that loads and works.

The full training is a benchmark (bench/classifier.py), never a test: these runs use four cells
per class, 32 px images and one epoch. The default starts from EfficientNet-Lite0's ImageNet
weights (``--init imagenet``); ``--backbone`` alone trains a timm model from random weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.cards import load_card, load_model
from ml.classes import COUNTED_KEYS, ERYTHROBLAST_UNSTAGED
from ml.cli import main
from ml.datasets.bccd import load_bccd
from ml.device import training_dtype
from ml.models.predictors import CellClassifier
from ml.pipeline import PipelineConfig, analyse, build_stages
from ml.pyramid import build_mosaic_slide
from ml.train.cell_classifier import (
    EMA_DECAY,
    ENCODER_IMG_SIZE,
    get_args_parser,
    resolve_init,
)
from ml.zoo import IMAGENET_SHA256, imagenet_encoder_card
from tests.ml.data import BCCD_DIR, PBC_DIR

CPU = torch.device("cpu")
TINY = ["--limit-per-class", "4", "--epochs", "1", "--img-size", "32", "--batch-size", "8"]


def _train(out: Path, *extra: str) -> int:
    return main(["train", "cell-classifier", "--data", str(PBC_DIR), "--out", str(out), *TINY,
                 "--no-progress", *extra])  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The card of one tiny training run on real PBC cells (shared by the tests below)."""
    out = tmp_path_factory.mktemp("classifier")
    assert _train(out) == 0
    (card,) = out.glob("*.json")
    return card


def test_a_tiny_training_writes_a_card_that_validates_and_says_it_is_not_for_marrow(
    trained: Path,
) -> None:
    card = load_card(trained)
    assert card.name == "starter-pbc-efficientnet-lite0-imagenet-1k-NOT-MARROW-VALIDATED"
    assert card.task == "cell_classification" and card.architecture == "efficientnet_lite"
    assert card.config == {"variant": "efficientnet-lite0", "num_classes": 11, "img_size": 32}
    assert card.input_size == 32
    assert card.provenance["pretrained"] == {
        "card": "efficientnet-lite0-imagenet-1k",
        "weights_sha256": IMAGENET_SHA256,
    }
    source = card.provenance["source"]
    assert source.startswith("efficientnet_lite trained from the pre-trained encoder ")
    assert "efficientnet-lite0-imagenet-1k (EfficientNet-Lite0 ImageNet-1k weights" in source
    assert card.normalisation == imagenet_encoder_card().normalisation
    assert card.provenance["validated_on_marrow"] is False
    assert "peripheral blood" in card.provenance["dataset"]["tissue"]
    assert card.provenance["dataset"]["licence"] == "CC BY 4.0"
    assert card.provenance["split"]["seed"] == 0
    assert "train cell-classifier" in card.provenance["command"]
    assert card.provenance["timings"]["cpu_s"] > 0
    # The default budget is the 15 minutes; one tiny epoch fits it.
    timings = card.provenance["timings"]
    assert timings["time_budget_min"] == 15.0
    assert timings["epochs_asked"] == timings["epochs_trained"] == 1
    expected = str(training_dtype(torch.device("cpu"))).removeprefix("torch.")
    assert card.provenance["timings"]["training_precision"] == (
        expected if expected != "None" else "fp32"
    )
    # The default trains on the central 70%: the cell fills the frame as in the pipeline's crop.
    assert card.provenance["centre_crop"] == 0.7
    assert "central square of 70%" in card.provenance["framing"]
    assert ERYTHROBLAST_UNSTAGED in card.classes and "others" in card.classes
    # The weights kept are a moving average of the training's, and the card says so.
    assert card.provenance["weight_average"]["decay"] == EMA_DECAY == 0.99


def test_the_card_holds_validation_and_test_figures_and_the_validation_confusion_matrix(
    trained: Path,
) -> None:
    card = load_card(trained)
    val, test = card.metrics["validation"], card.metrics["test"]
    assert card.metrics["confusion_matrix_split"] == "validation"
    assert card.confusion_matrix.tolist() == val["confusion_matrix"]
    assert card.confusion_matrix.sum() == val["n"] == 11  # one validation cell per class
    assert card.confusion_matrix.sum(axis=1).tolist() == [1] * 11  # rows are the true class
    assert card.metrics["test_accuracy"] == test["accuracy"] and test["n"] == 11
    for split in (val, test):
        assert 0.0 <= split["accuracy"] <= 1.0 and 0.0 <= split["macro_f1"] <= 1.0
        assert set(split["per_class"]) == set(card.classes)
        scores = split["per_class"]["basophil"]
        assert {"precision", "recall", "f1", "support", "auroc"} <= set(scores)


def test_the_trained_weights_load_and_classify_real_cell_crops(trained: Path) -> None:
    card = load_card(trained)
    classifier = CellClassifier(load_model(card, CPU), card, CPU, box_offset=0.15)
    sample = load_bccd(BCCD_DIR)[0]
    image = sample.image()
    crops = np.stack([classifier.crop(image, box) for box in sample.boxes["WBC"]])
    probs = classifier.predict(crops)
    assert crops.shape[1:] == (32, 32, 3)
    assert probs.shape == (len(crops), 11) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_the_pipeline_accepts_the_card_with_the_default_class_set(trained: Path) -> None:
    card = load_card(trained)
    config = PipelineConfig(crop_batch=4).for_device(CPU)
    stages = build_stages({"cell_classification": card}, CPU, config)
    assert stages.classify.classes == card.classes


def test_a_count_by_the_pbc_classifier_names_the_classes_it_cannot_recognise(
    trained: Path, tmp_path: Path
) -> None:
    photos = sorted((BCCD_DIR / "JPEGImages").glob("*.jpg"))[:4]
    slide = build_mosaic_slide(photos, tmp_path / "smear.tiff", width=1200, height=800, mpp=0.075)
    models = tmp_path / "models"
    models.mkdir()
    for path in (trained, trained.with_suffix(".pt")):
        (models / path.name).symlink_to(path)
    config = PipelineConfig(tile_size=600, max_tiles=1)
    result = analyse(slide, models_dir=models, device="cpu", config=config)
    assert result.stages["classification"].kind == "model" and result.cells
    coverage = next(a for a in result.alerts if a.kind == "classifier_coverage")
    assert "myeloblast" in coverage.classes and "plasma_cell" in coverage.classes
    labels = [c.label for c in result.cells]
    counted = sum(label in COUNTED_KEYS or label == ERYTHROBLAST_UNSTAGED for label in labels)
    assert result.dcc.total_counted == counted  # "others" never enters the count
    assert result.dcc.non_counted["others"] == labels.count("others")


def test_a_backbone_alone_trains_that_timm_model_from_random_weights(tmp_path: Path) -> None:
    assert _train(tmp_path, "--backbone", "resnet18") == 0
    card = load_card(tmp_path / "starter-pbc-resnet18-NOT-MARROW-VALIDATED.json")
    assert card.architecture == "timm_classifier"
    assert card.config == {"backbone": "resnet18", "num_classes": 11, "img_size": 32}
    assert card.provenance["pretrained"] is False
    assert "resnet18 trained from random weights" in card.provenance["source"]


def test_without_a_weight_average_the_card_keeps_the_epoch_itself(tmp_path: Path) -> None:
    assert _train(tmp_path, "--ema-decay", "0") == 0
    (card,) = tmp_path.glob("*.json")
    assert load_card(card).provenance["weight_average"] is None


def test_a_weight_average_decay_outside_zero_to_one_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path / "o", "--ema-decay", "1.5") == 1
    assert "decay lies strictly between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_paused_and_resumed_training_ends_on_the_same_averaged_weights(tmp_path: Path) -> None:
    two = ["--epochs", "2", "--time-budget-min", "0"]
    assert _train(tmp_path / "whole", *two) == 0
    assert _train(tmp_path / "paused", *two, "--stop-after-epoch", "1") == 0
    assert not list((tmp_path / "paused").glob("*.json"))
    assert _train(tmp_path / "paused", *two, "--resume") == 0
    whole, resumed = (
        load_model(load_card(next((tmp_path / run).glob("*.json"))), CPU).state_dict()
        for run in ("whole", "paused")
    )
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_with_neither_init_nor_backbone_training_starts_from_imagenet() -> None:
    args = get_args_parser().parse_args(["--data", "d", "--out", "o"])
    assert resolve_init(args.init, args.backbone) == ("imagenet", "resnet18")
    assert resolve_init("none", None) == (None, "resnet18")
    assert resolve_init(None, "convnext_atto") == (None, "convnext_atto")
    assert ENCODER_IMG_SIZE == 112


def test_an_encoder_and_a_backbone_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path / "o", "--init", "imagenet", "--backbone", "resnet18") == 1
    assert "--backbone trains from random weights" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_non_finite_loss_stops_training_with_a_clear_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path / "out", "--lr", "1e30") == 1
    err = capsys.readouterr().err
    assert "error: loss is nan" in err and "training stopped" in err
    assert not (tmp_path / "out").exists()


def test_a_folder_without_labelled_images_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty_class").mkdir()
    rc = main(["train", "cell-classifier", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 1 and "no labelled cell images found" in capsys.readouterr().err


def test_training_autocasts_to_bf16_only_where_the_hardware_has_it() -> None:
    cpu = torch.device("cpu")
    assert training_dtype(cpu, "fp32") is None
    native = torch.cpu._is_avx512_bf16_supported()
    assert training_dtype(cpu) == (torch.bfloat16 if native else None)
    with pytest.raises(ValueError, match="precision"):
        training_dtype(cpu, "fp16")


def test_the_default_input_is_what_the_budget_affords_in_each_precision() -> None:
    from ml.train.cell_classifier import default_img_size, get_args_parser

    assert default_img_size(torch.bfloat16) == 128 and default_img_size(None) == 96
    args = get_args_parser().parse_args(["--data", "d", "--out", "o"])
    assert args.img_size is None and args.time_budget_min == 15.0
