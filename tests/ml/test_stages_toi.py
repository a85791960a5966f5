"""TOI stage: ROI tiles on a 1,600 px grid, scored by the quality baseline or by TCNet."""

from __future__ import annotations

import numpy as np
import torch

from ml.baselines.toi import tile_quality
from ml.cards import ModelCard, Normalisation
from ml.datasets.bccd import load_annotation
from ml.geometry import thumbnail_frame
from ml.models.build import build_model
from ml.models.predictors import TilePredictor
from ml.slide import open_slide
from ml.stages.common import StageSource
from ml.stages.roi import RoiResult
from ml.stages.toi import ToiStage, candidate_tiles
from tests.ml.data import BCCD_DIR, SLIDES_DIR

BCCD_MPP = 0.075


def _photo(stem: str) -> np.ndarray:
    return load_annotation(BCCD_DIR / "Annotations" / f"{stem}.xml").image()


def test_blank_glass_scores_zero() -> None:
    glass = np.full((400, 400, 3), 236, dtype=np.uint8)
    quality = tile_quality(glass, glass_level=0.08)
    assert quality.blank_fraction == 1.0 and quality.score == 0.0


def test_a_spread_smear_scores_high_and_its_over_stained_copy_zero() -> None:
    photo = _photo("BloodImage_00031")
    good = tile_quality(photo, glass_level=0.24, mpp=BCCD_MPP)
    dark = tile_quality((photo * 0.25).astype(np.uint8), glass_level=0.24, mpp=BCCD_MPP)
    assert good.score > 0.5 and good.clump_fraction < 0.1
    assert dark.overstain_fraction > 0.9 and dark.score == 0.0


def test_a_clump_bigger_than_any_cell_raises_the_clump_fraction() -> None:
    photo = _photo("BloodImage_00031").copy()
    before = tile_quality(photo, glass_level=0.24, mpp=BCCD_MPP)
    # Paste red-cell stain over a 30 x 30 µm square: a clump no single cell could make.
    side = int(30 / BCCD_MPP)
    photo[40 : 40 + side, 100 : 100 + side] = np.array([190, 140, 150], dtype=np.uint8)
    after = tile_quality(photo, glass_level=0.24, mpp=BCCD_MPP)
    assert after.clump_fraction > before.clump_fraction + 0.3
    assert after.score < before.score


def _roi_everywhere(slide_wh: tuple[int, int], thumb_hw: tuple[int, int]) -> RoiResult:
    mask = np.ones(thumb_hw, dtype=bool)
    return RoiResult(mask, thumbnail_frame(thumb_hw, slide_wh), [], StageSource.baseline("test"))


def test_candidates_are_the_grid_tiles_mostly_inside_the_roi() -> None:
    slide_wh = (3200, 3200)
    mask = np.zeros((32, 32), dtype=bool)
    mask[:, :20] = True  # the left 2000 px
    roi = RoiResult(mask, thumbnail_frame(mask.shape, slide_wh), [], StageSource.baseline("test"))
    fractions = {(t.col, t.row): f for t, f in candidate_tiles(roi, slide_wh, 1600, 0.2)}
    assert fractions == {(0, 0): 1.0, (1, 0): 0.25, (0, 1): 1.0, (1, 1): 0.25}
    assert len(candidate_tiles(roi, slide_wh, 1600, 0.5)) == 2


def test_toi_stage_streams_every_candidate_of_a_real_slide() -> None:
    with open_slide(SLIDES_DIR / "cmu-1-small-region.svs") as slide:
        roi = _roi_everywhere(slide.dimensions, (30, 23))
        candidates = candidate_tiles(roi, slide.dimensions, 1000, 0.5)
        seen: list[tuple[int, int]] = []
        decisions = ToiStage(None, batch_size=2).run(
            slide, candidates, lambda d, n: seen.append((d, n)), mpp=0.5
        )
    assert len(decisions) == len(candidates) == 9
    assert [d.tile for d in decisions] == [t for t, _ in candidates]
    assert all(d.keep and d.quality is not None for d in decisions)  # the baseline keeps all
    assert seen[-1] == (9, 9)


def test_toi_stage_with_tcnet_keeps_tiles_above_the_threshold() -> None:
    card = ModelCard(
        path=SLIDES_DIR / "unused.json",
        name="tcnet-test",
        task="toi",
        architecture="tcnet_tiny",
        config={},
        weights=SLIDES_DIR / "unused.pt",
        classes=("non_toi", "toi"),
        input_size=224,
        normalisation=Normalisation((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        provenance={"source": "test"},
        metrics={},
    )
    torch.manual_seed(0)
    predictor = TilePredictor(build_model("tcnet_tiny"), card, torch.device("cpu"))
    with open_slide(SLIDES_DIR / "cmu-1-small-region.svs") as slide:
        candidates = candidate_tiles(
            _roi_everywhere(slide.dimensions, (30, 23)), slide.dimensions, 1000, 0.5
        )
        probe = ToiStage(predictor, threshold=0.0).run(slide, candidates)
        threshold = float(np.median([d.score for d in probe]))
        decisions = ToiStage(predictor, threshold=threshold).run(slide, candidates)
    assert [d.keep for d in decisions] == [d.score >= threshold for d in decisions]
    assert 0 < sum(d.keep for d in decisions) < len(decisions)
