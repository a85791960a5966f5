"""Stage 1, ROI: which part of the smear is fit for counting.

Input: the factor-100 thumbnail. With a TextureUnet card the model's probability map
(ResizeLongestSide 256 + zero pad, mapped back to thumbnail shape) is thresholded; without one
the classical smear detector is used. The mask stays in thumbnail px for the tile grid, and is
traced into level-0 polygons for the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ml.baselines.roi import RoiBaselineParams, detect_smear
from ml.cards import ModelCard, load_model
from ml.geometry import Frame, Polygon, mask_to_polygons, polygon_to_json, thumbnail_frame
from ml.models.predictors import RoiPredictor
from ml.stages.common import StageSource


@dataclass
class RoiResult:
    """``mask``: ``(h, w)`` bool in thumbnail px; ``frame``: thumbnail px -> level-0 px;
    ``polygons``: the mask traced in level-0 px; ``probability``: the model's map, if any."""

    mask: np.ndarray
    frame: Frame
    polygons: list[Polygon]
    source: StageSource
    probability: np.ndarray | None = None

    @property
    def area_fraction(self) -> float:
        """Share of the slide inside the ROI."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    def to_dict(self) -> dict[str, object]:
        h, w = self.mask.shape
        return {
            "polygons": [polygon_to_json(p) for p in self.polygons],
            "area_fraction": round(self.area_fraction, 4),
            "thumbnail_size": [w, h],
        }


class RoiStage:
    """ROI segmentation with a :class:`RoiPredictor`, or the smear baseline when ``None``."""

    def __init__(
        self,
        predictor: RoiPredictor | None,
        *,
        threshold: float = 0.5,
        baseline: RoiBaselineParams | None = None,
    ) -> None:
        self.predictor = predictor
        self.threshold = threshold
        self.baseline = baseline or RoiBaselineParams()

    @classmethod
    def from_card(
        cls, card: ModelCard | None, device: torch.device, *, threshold: float = 0.5
    ) -> RoiStage:
        if card is None:
            return cls(None, threshold=threshold)
        return cls(RoiPredictor(load_model(card, device), card, device), threshold=threshold)

    @property
    def source(self) -> StageSource:
        if self.predictor is not None:
            return StageSource.model(self.predictor.card)
        return StageSource.baseline("smear-detection", **vars(self.baseline))

    def run(self, thumbnail: np.ndarray, slide_wh: tuple[int, int]) -> RoiResult:
        """``(h, w, 3)`` uint8 thumbnail of a ``slide_wh`` level-0 slide -> :class:`RoiResult`."""
        probability = None
        if self.predictor is None:
            mask = detect_smear(thumbnail, self.baseline)
        else:
            probability = self.predictor.predict(thumbnail)
            mask = probability >= self.threshold
        frame = thumbnail_frame(thumbnail.shape[:2], slide_wh)
        # Simplify by half a thumbnail pixel: level-0 vertices every ~50 px are plenty.
        polygons = mask_to_polygons(mask, frame, simplify_px=0.5)
        return RoiResult(mask, frame, polygons, self.source, probability)
