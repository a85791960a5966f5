"""The architectures at tiny sizes, on real smear photos: shapes, contracts and training signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.cards import ModelCard, Normalisation
from ml.datasets.bccd import load_annotation
from ml.models.build import MODEL_REGISTRY, UnknownArchitectureError, build_model
from ml.models.predictors import CellClassifier, RoiPredictor, TilePredictor, crop_square
from ml.models.sam_everything import SamEverything
from ml.models.tcnet import edge_map, lbp_map, tcnet_loss
from tests.ml.data import BCCD_DIR

CPU = torch.device("cpu")
IMAGENET = Normalisation(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def _photo(stem: str = "BloodImage_00007") -> tuple[np.ndarray, np.ndarray]:
    """A BCCD photo (RGB uint8) and its white-cell boxes (XYXY px)."""
    sample = load_annotation(BCCD_DIR / "Annotations" / f"{stem}.xml")
    return sample.image(), sample.boxes["WBC"]


def _card(task: str, architecture: str, classes: tuple[str, ...], input_size: int) -> ModelCard:
    """An in-memory card for predictors (weights are never read from it)."""
    return ModelCard(
        path=BCCD_DIR / "unused.json",
        name=f"test-{architecture}",
        task=task,
        architecture=architecture,
        config={},
        weights=BCCD_DIR / "unused.pt",
        classes=classes,
        input_size=input_size,
        normalisation=IMAGENET,
        provenance={"source": "test"},
        metrics={},
    )


def test_every_registry_name_has_a_builder_and_unknown_names_are_refused() -> None:
    assert {"texture_unet", "tcnet", "sam_vit_h", "sam_vit_l", "sam_vit_b", "mae_vit_b"} <= set(
        MODEL_REGISTRY
    )
    with pytest.raises(UnknownArchitectureError):
        build_model("unet9000")


def test_texture_unet_maps_a_padded_thumbnail_to_per_pixel_logits() -> None:
    model = build_model("texture_unet_tiny")
    logits = model(torch.randn(1, 3, 128, 128))
    assert logits.shape == (1, 2, 128, 128)
    logits.sum().backward()
    # The texture branch is trained with the rest: its Gabor parameters receive gradients.
    assert (
        model.texture.bank.theta.grad is not None and model.texture.bank.theta.grad.abs().sum() > 0
    )


def test_texture_statistics_ignore_a_uniformly_stronger_stain() -> None:
    image, _ = _photo()
    x = torch.as_tensor(image[:128, :128]).permute(2, 0, 1)[None].float() / 255.0 - 0.5
    branch = build_model("texture_unet_tiny").texture
    plain, stronger = branch.statistics(x), branch.statistics(1.7 * x)
    assert torch.allclose(plain, stronger, rtol=1e-2, atol=1e-2)
    # ...while a different texture (the same pixels shuffled) gives a different descriptor.
    shuffled = x.flatten(2)[..., torch.randperm(128 * 128)].view_as(x)
    assert (branch.statistics(shuffled) - plain).abs().mean() > 10 * (stronger - plain).abs().mean()


def test_roi_predictor_returns_a_probability_map_in_thumbnail_px() -> None:
    image, _ = _photo()
    thumbnail = image[::20, ::16]  # a 24 x 40 non-square "thumbnail"
    predictor = RoiPredictor(
        build_model("texture_unet_tiny"),
        _card("roi", "texture_unet_tiny", ("background", "roi"), 256),
        CPU,
    )
    probability = predictor.predict(thumbnail)
    assert probability.shape == thumbnail.shape[:2] and probability.dtype == np.float32
    assert probability.min() >= 0.0 and probability.max() <= 1.0


def test_tcnet_heads_predict_texture_and_contour_maps_for_the_loss() -> None:
    image, _ = _photo()
    x = torch.as_tensor(image[:224, :224]).permute(2, 0, 1)[None].float().repeat(2, 1, 1, 1) / 255.0
    model = build_model("tcnet_tiny").train()
    out = model.forward_all(x)
    assert out.logits.shape == (2, 2)
    assert out.texture.shape == (2, 1, 28, 28) and out.contour.shape == (2, 1, 56, 56)
    loss = tcnet_loss(out, x, torch.tensor([0, 1]))
    loss.backward()
    assert model.texture_head.out.weight.grad.abs().sum() > 0
    assert model.contour_head.out.weight.grad.abs().sum() > 0


def test_lbp_and_edge_targets_behave_on_flat_and_step_images() -> None:
    flat = torch.full((1, 3, 16, 16), 0.5)
    assert torch.allclose(lbp_map(flat), torch.ones(1, 1, 16, 16))  # every neighbour >= centre
    step = torch.zeros(1, 3, 16, 16)
    step[..., 8:] = 1.0
    edges = edge_map(step)[0, 0]
    assert edges[:, 7:9].min() == pytest.approx(1.0) and edges[:, :6].max() < 1e-5


def test_tile_predictor_scores_tiles_of_any_size() -> None:
    image, _ = _photo()
    predictor = TilePredictor(
        build_model("tcnet_tiny"), _card("toi", "tcnet_tiny", ("non_toi", "toi"), 224), CPU
    )
    probs = predictor.predict([image, image[:300, :400]])
    assert probs.shape == (2,) and ((probs >= 0) & (probs <= 1)).all()


def test_tiny_sam_everything_mode_embeds_each_tile_once_and_returns_box_cropped_masks() -> None:
    torch.manual_seed(0)
    images = [_photo("BloodImage_00007")[0], _photo("BloodImage_00011")[0][:400]]
    sam = build_model("sam_tiny")
    calls: list[int] = []
    sam.image_encoder.register_forward_hook(
        lambda module, args, out: calls.append(args[0].shape[0])
    )
    # Random weights predict low IoU: open the filters so the mask path is exercised.
    generator = SamEverything(
        sam, CPU, points_per_side=8, pred_iou_thresh=-1e9, stability_score_thresh=0.0
    )
    results = generator.generate(images)
    assert calls == [2], "both tiles embedded in one batch, once"
    for image, found in zip(images, results, strict=True):
        assert len(found) >= 1
        h, w = image.shape[:2]
        assert (
            (found.boxes[:, :2] >= 0).all()
            and (found.boxes[:, 2] <= w).all()
            and (found.boxes[:, 3] <= h).all()
        )
        for box, mask in zip(found.boxes, found.masks, strict=True):
            assert mask.shape == (box[3] - box[1], box[2] - box[0])
            assert (
                mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
            )  # tight box


def test_sam_everything_point_grid_respects_the_tile_shape() -> None:
    generator = SamEverything(build_model("sam_tiny"), CPU, points_per_side=4, points_per_batch=5)
    batches = generator._point_batches((400, 640), (160, 256))
    points = torch.cat(batches)
    assert [len(b) for b in batches] == [5, 5, 5, 1]
    assert points[:, 0].max() < 256 and points[:, 1].max() < 160  # no prompt on the zero padding


def test_mae_classifier_returns_softmax_probabilities_for_real_cell_crops() -> None:
    image, boxes = _photo()
    keys = tuple(f"class_{i}" for i in range(22))
    classifier = CellClassifier(
        build_model("mae_vit_tiny"),
        _card("cell_classification", "mae_vit_tiny", keys, 224),
        CPU,
        box_offset=0.15,
    )
    crops = np.stack([classifier.crop(image, box) for box in boxes])
    probs = classifier.predict(crops)
    assert crops.shape == (len(boxes), 224, 224, 3)
    assert probs.shape == (len(boxes), 22) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_crop_past_the_image_edge_keeps_its_size_and_content() -> None:
    image, _ = _photo()
    crop = crop_square(image, [600, 440, 640, 480], offset=0.5, size=64)
    assert crop.shape == (64, 64, 3)
    # The in-image part of the crop is the image's corner, resized 80 -> 64.
    assert abs(float(crop[16:48, 16:48].mean()) - float(image[440:480, 600:640].mean())) < 25


def test_explicit_prompts_replace_the_grid_one_decoder_query_each() -> None:
    image, boxes = _photo()
    sam = build_model("sam_tiny")
    seen: list[int] = []
    sam.prompt_encoder.register_forward_hook(
        lambda module, args, kwargs, out: seen.append(out[0].shape[0]), with_kwargs=True
    )
    generator = SamEverything(sam, CPU, points_per_batch=2)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    points = np.concatenate([centres, [[10.0, 10.0], [600.0, 400.0]]])
    generator.generate([image], [points])
    assert sum(seen) == len(points) and max(seen) <= 2


@pytest.mark.parametrize("backbone", ["convnext_atto", "vit_tiny_patch16_224"])
def test_a_timm_classifier_of_either_family_classifies_real_crops_at_its_card_size(
    backbone: str,
) -> None:
    image, boxes = _photo()
    keys = tuple(f"class_{i}" for i in range(11))
    config = {"backbone": backbone, "num_classes": 11, "img_size": 64}
    card = _card("cell_classification", "timm_classifier", keys, 64)
    classifier = CellClassifier(build_model("timm_classifier", config), card, CPU, box_offset=0.15)
    probs = classifier.predict(np.stack([classifier.crop(image, box) for box in boxes]))
    assert probs.shape == (len(boxes), 11) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_an_unknown_timm_backbone_is_a_config_error() -> None:
    with pytest.raises(TypeError, match="no backbone 'resnet9000'"):
        build_model("timm_classifier", {"backbone": "resnet9000", "num_classes": 3})
