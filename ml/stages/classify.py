"""Stage 4, classification: one class per cell from a square crop around its mask box.

Crops are cut while their tile is still in memory (so no pixel is read twice), queued, and
classified in batches of ``batch_size``. Without a classifier card every cell is labelled
``"unclassified"`` and the count says that no classifier is installed; no class is invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ml.cards import ModelCard, load_model
from ml.count import REVIEW_THRESHOLD, UNCLASSIFIED, review_flags
from ml.models.predictors import CellClassifier
from ml.stages.cells import Cell, MaskCrop
from ml.stages.common import StageSource


class ClassifyStage:
    """Batches crops through a :class:`CellClassifier`, or labels cells unclassified."""

    def __init__(
        self,
        classifier: CellClassifier | None,
        *,
        batch_size: int = 64,
        review_threshold: float = REVIEW_THRESHOLD,
    ) -> None:
        self.classifier = classifier
        self.batch_size = batch_size
        self.review_threshold = review_threshold
        self._cells: list[Cell] = []
        self._crops: list[np.ndarray] = []

    @classmethod
    def from_card(
        cls, card: ModelCard | None, device: torch.device, *, box_offset: float, **kwargs: Any
    ) -> ClassifyStage:
        if card is None:
            return cls(None, **kwargs)
        return cls(CellClassifier(load_model(card, device), card, device, box_offset), **kwargs)

    @property
    def source(self) -> StageSource:
        if self.classifier is not None:
            return StageSource.model(self.classifier.card)
        return StageSource.baseline(UNCLASSIFIED, note="no cell classifier is installed")

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The classifier's output classes (the order of each cell's probabilities)."""
        return None if self.classifier is None else self.classifier.classes

    def add(self, image: np.ndarray, found: Sequence[tuple[Cell, MaskCrop]]) -> None:
        """Queue a window's cells; ``image`` is the window (RGB uint8) their crops' boxes index."""
        if self.classifier is None:
            for cell, _ in found:
                cell.label, cell.probabilities, cell.review = UNCLASSIFIED, None, False
            return
        for cell, crop in found:
            self._cells.append(cell)
            self._crops.append(self.classifier.crop(image, crop.box))
        if len(self._cells) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Classify everything queued; sets each cell's label, probabilities and review flag."""
        if self.classifier is None or not self._cells:
            return
        probs = self.classifier.predict(np.stack(self._crops))
        flags = review_flags(probs, self.review_threshold)
        classes = self.classifier.classes
        for cell, p, flag in zip(self._cells, probs, flags, strict=True):
            cell.label = classes[int(np.argmax(p))]
            cell.probabilities = p
            cell.review = bool(flag)
        self._cells, self._crops = [], []
