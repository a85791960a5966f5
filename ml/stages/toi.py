"""Stage 2, TOI: which tiles of the ROI are fit for counting.

The slide is cut into a non-overlapping ``tile_size`` grid (level-0 px); a tile is a candidate
when at least ``min_roi_fraction`` of it lies inside the ROI mask. Candidates are read at low
resolution (from the pyramid level nearest the classifier's input size, never level 0 unless
the slide has no other) and streamed in batches. With a TCNet card a tile is kept when
P(TOI) >= ``threshold``; without one every candidate is kept and carries the classical quality
score (:mod:`ml.baselines.toi`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ml.baselines.toi import TileQuality, ToiBaselineParams, tile_quality
from ml.cards import ModelCard, load_model
from ml.geometry import Tile, coverage_fractions, tile_grid
from ml.models.predictors import TilePredictor
from ml.stages.common import StageSource
from ml.stages.reader import RegionSource, Window, stream_windows
from ml.stages.roi import RoiResult

# Side the baseline's quality measures are computed at (px); fine enough to see single cells.
BASELINE_READ_PX = 400

Progress = Callable[[int, int], None]


@dataclass
class TileDecision:
    """One candidate tile: its ROI coverage, score in ``[0, 1]`` and whether it was kept."""

    tile: Tile
    roi_fraction: float
    score: float
    keep: bool
    quality: TileQuality | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "col": self.tile.col,
            "row": self.tile.row,
            "box": list(self.tile.box),
            "roi_fraction": round(self.roi_fraction, 4),
            "score": round(self.score, 4),
            "toi": self.keep,
        }
        if self.quality is not None:
            out["quality"] = self.quality.to_dict()
        return out


def candidate_tiles(
    roi: RoiResult, slide_wh: tuple[int, int], tile_size: int, min_roi_fraction: float
) -> list[tuple[Tile, float]]:
    """Grid tiles with at least ``min_roi_fraction`` of their area inside the ROI, row-major."""
    tiles = tile_grid(slide_wh, tile_size)
    if not tiles:
        return []
    fractions = coverage_fractions(roi.mask, roi.frame, np.array([t.box for t in tiles]))
    return [
        (t, float(f))
        for t, f in zip(tiles, fractions, strict=True)
        if f >= min_roi_fraction and f > 0
    ]


class ToiStage:
    """Tile selection with a :class:`TilePredictor`, or the quality-score baseline when ``None``."""

    def __init__(
        self,
        predictor: TilePredictor | None,
        *,
        threshold: float = 0.5,
        batch_size: int = 32,
        workers: int = 2,
        prefetch: int = 8,
        baseline: ToiBaselineParams | None = None,
    ) -> None:
        self.predictor = predictor
        self.threshold = threshold
        self.batch_size = batch_size
        self.workers = workers
        self.prefetch = prefetch
        self.baseline = baseline or ToiBaselineParams()

    @classmethod
    def from_card(cls, card: ModelCard | None, device: torch.device, **kwargs: Any) -> ToiStage:
        if card is None:
            return cls(None, **kwargs)
        return cls(TilePredictor(load_model(card, device), card, device), **kwargs)

    @property
    def source(self) -> StageSource:
        if self.predictor is not None:
            return StageSource.model(self.predictor.card)
        return StageSource.baseline("tile-quality", keeps="every ROI tile", **vars(self.baseline))

    @property
    def read_px(self) -> int:
        """The side, in px, each tile is read at."""
        return self.predictor.card.input_size if self.predictor is not None else BASELINE_READ_PX

    def run(
        self,
        slide: RegionSource,
        candidates: Sequence[tuple[Tile, float]],
        progress: Progress | None = None,
        *,
        glass_level: float = 0.0,
        mpp: float | None = None,
    ) -> list[TileDecision]:
        """Score every candidate; returns one decision per candidate, in input order.

        ``glass_level`` (the slide's glass OD) and ``mpp`` (level-0 µm/px) tune the baseline.
        """
        decisions: list[TileDecision] = []
        batch: list[tuple[Tile, float, np.ndarray]] = []
        windows = [self._window(tile, fraction) for tile, fraction in candidates]
        for window, image in stream_windows(
            slide, windows, workers=self.workers, prefetch=self.prefetch
        ):
            batch.append((*window.key, image))
            if len(batch) >= self.batch_size:
                decisions += self._decide(batch, glass_level, mpp)
                batch = []
                if progress:
                    progress(len(decisions), len(candidates))
        decisions += self._decide(batch, glass_level, mpp)
        if progress:
            progress(len(decisions), len(candidates))
        return decisions

    def _window(self, tile: Tile, fraction: float) -> Window:
        downsample = max(tile.w, tile.h) / self.read_px
        return Window((tile, fraction), tile.x, tile.y, tile.w, tile.h, max(downsample, 1.0))

    def _decide(
        self, batch: list[tuple[Tile, float, np.ndarray]], glass_level: float, mpp: float | None
    ) -> list[TileDecision]:
        if not batch:
            return []
        if self.predictor is not None:
            probs = self.predictor.predict([image for _, _, image in batch])
            return [
                TileDecision(tile, fraction, float(p), bool(p >= self.threshold))
                for (tile, fraction, _), p in zip(batch, probs, strict=True)
            ]
        decisions = []
        for tile, fraction, image in batch:
            read_mpp = mpp * max(tile.w, tile.h) / max(image.shape[:2]) if mpp else None
            quality = tile_quality(image, self.baseline, glass_level=glass_level, mpp=read_mpp)
            decisions.append(TileDecision(tile, fraction, quality.score, True, quality))
        return decisions
