"""ROI stage: the smear baseline finds stained glass; a model's mask lands in level-0 px."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ml.baselines.roi import detect_smear, glass_od, optical_density
from ml.cards import ModelCard, Normalisation
from ml.datasets.bccd import load_bccd
from ml.geometry import Frame, polygons_to_mask
from ml.models.build import build_model
from ml.models.predictors import RoiPredictor
from ml.slide import open_slide
from ml.stages.roi import RoiStage
from tests.ml.data import BCCD_DIR, SLIDES_DIR


def _mosaic(n: int = 20) -> np.ndarray:
    """Real smear photos side by side, 4 rows of 5 (1920 x 3200 px)."""
    images = [s.image() for s in load_bccd(BCCD_DIR)[:n]]
    return np.concatenate(
        [np.concatenate(images[i * 5 : (i + 1) * 5], axis=1) for i in range(n // 5)]
    )


def _thumb(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)


def test_smear_baseline_finds_a_smear_on_empty_glass() -> None:
    canvas = np.full((60, 80, 3), 246, dtype=np.uint8)  # bright glass
    canvas[10:34, 20:60] = _thumb(_mosaic(), 80)  # 24 x 40
    expected = np.zeros((60, 80), dtype=bool)
    expected[10:34, 20:60] = True
    mask = detect_smear(canvas)
    assert (mask & expected).sum() / (mask | expected).sum() > 0.95


def test_smear_baseline_keeps_a_wall_to_wall_smear_whole() -> None:
    thumbnail = _thumb(_mosaic(), 100)
    assert detect_smear(thumbnail).all()


def test_smear_baseline_finds_nothing_on_blank_glass() -> None:
    rng = np.random.default_rng(0)
    blank = (238 + rng.integers(0, 8, size=(60, 80, 3))).astype(np.uint8)
    assert not detect_smear(blank).any()


def test_smear_baseline_covers_the_stained_part_of_a_real_slide() -> None:
    with open_slide(SLIDES_DIR / "cmu-1-small-region.svs") as slide:
        thumbnail = slide.thumbnail_by_factor(20)
    mask = detect_smear(thumbnail)
    od = optical_density(thumbnail).sum(axis=2)
    assert mask[od > 0.3].mean() > 0.9  # clearly stained pixels are in
    assert mask[thumbnail.min(axis=2) > 230].mean() < 0.05  # bright glass is out
    assert glass_od(thumbnail) < 0.1


def test_roi_stage_maps_a_model_mask_to_level0_polygons() -> None:
    card = ModelCard(
        path=SLIDES_DIR / "unused.json",
        name="texture-unet-test",
        task="roi",
        architecture="texture_unet_tiny",
        config={},
        weights=SLIDES_DIR / "unused.pt",
        classes=("background", "roi"),
        input_size=256,
        normalisation=Normalisation((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        provenance={"source": "test"},
        metrics={},
    )
    torch.manual_seed(0)
    predictor = RoiPredictor(build_model("texture_unet_tiny"), card, torch.device("cpu"))
    with open_slide(SLIDES_DIR / "cmu-1-small-region.svs") as slide:
        thumbnail = slide.thumbnail_by_factor(100)
        slide_wh = slide.dimensions
    stage = RoiStage(predictor, threshold=float(np.median(predictor.predict(thumbnail))))
    result = stage.run(thumbnail, slide_wh)
    assert result.source.kind == "model" and result.source.name == "texture-unet-test"
    assert result.probability is not None and result.probability.shape == thumbnail.shape[:2]
    assert 0 < result.mask.mean() < 1
    # The level-0 polygons, rasterised back at thumbnail scale, reproduce the mask.
    again = polygons_to_mask(result.polygons, result.frame, result.mask.shape)
    assert (again != result.mask).mean() < 0.05  # simplification moves only boundary pixels
    xs = np.concatenate([ring[:, 0] for p in result.polygons for ring in p])
    assert xs.min() >= 0 and xs.max() <= slide_wh[0]


def test_roi_stage_without_a_model_says_it_used_the_baseline() -> None:
    stage = RoiStage(None)
    result = stage.run(np.full((30, 40, 3), 250, dtype=np.uint8), (4000, 3000))
    assert result.source.kind == "baseline" and not result.polygons
    assert result.frame == Frame(sx=100.0, sy=100.0)
