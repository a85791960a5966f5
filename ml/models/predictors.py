"""Predictors: each owns a model, its preprocessing and its device, and runs without grad.

They take and return numpy arrays in image pixel frames, so stages never touch tensors:

- :class:`RoiPredictor` (TextureUnet): thumbnail -> ROI probability map, thumbnail px.
- :class:`TilePredictor` (TCNet): tiles -> probability that each is a tile of interest.
- :class:`CellClassifier` (MAE ViT): cell crops -> class probabilities.

SAM's everything mode is :class:`ml.models.sam_everything.SamEverything`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ml.cards import ModelCard, Normalisation
from ml.crops import crop_square, resize_to
from ml.device import inference_mode
from ml.geometry import LongestSidePad


def normalise(images: np.ndarray, norm: Normalisation, device: torch.device) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 RGB -> ``(N, 3, H, W)`` float32 on ``device``, normalised."""
    x = torch.as_tensor(np.ascontiguousarray(images), device=device).permute(0, 3, 1, 2).float()
    mean = torch.tensor(norm.mean, device=device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(norm.std, device=device).view(1, 3, 1, 1) * 255.0
    return (x - mean) / std


class RoiPredictor:
    """TextureUnet on a slide thumbnail (ResizeLongestSide to ``input_size`` + zero pad)."""

    def __init__(self, model: nn.Module, card: ModelCard, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.card = card
        self.device = device
        self.roi_index = card.classes.index("roi")

    def predict(self, thumbnail: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 thumbnail -> ``(H, W)`` float32 ROI probability in ``[0, 1]``.

        The output is in thumbnail px: the padded model output is cropped and resized back.
        """
        size = self.card.input_size
        transform = LongestSidePad(thumbnail.shape[:2], size)
        x = normalise(transform.resize(thumbnail)[None], self.card.normalisation, self.device)
        nh, nw = transform.resized_hw
        x = F.pad(x, (0, size - nw, 0, size - nh))  # zeros in normalised space, as SAM pads
        with inference_mode(self.device):
            probs = torch.softmax(self.model(x).float(), dim=1)[0, self.roi_index]
        return np.clip(transform.unapply_map(probs.cpu().numpy()), 0.0, 1.0)


class TilePredictor:
    """TCNet on tiles resized to ``input_size``; returns P(tile of interest)."""

    def __init__(self, model: nn.Module, card: ModelCard, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.card = card
        self.device = device
        self.toi_index = card.classes.index("toi")

    def predict(self, tiles: Sequence[np.ndarray]) -> np.ndarray:
        """``N`` RGB uint8 tiles of any size -> ``(N,)`` float32 probabilities in ``[0, 1]``."""
        if not tiles:
            return np.zeros(0, dtype=np.float32)
        batch = np.stack([resize_to(t, self.card.input_size) for t in tiles])
        x = normalise(batch, self.card.normalisation, self.device)
        with inference_mode(self.device):
            probs = torch.softmax(self.model(x).float(), dim=1)[:, self.toi_index]
        return probs.cpu().numpy()


class CellClassifier:
    """MAE ViT classifier on square cell crops; returns softmax probabilities."""

    def __init__(
        self, model: nn.Module, card: ModelCard, device: torch.device, box_offset: float
    ) -> None:
        self.model = model.to(device).eval()
        self.card = card
        self.device = device
        self.box_offset = box_offset

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    def crop(self, image: np.ndarray, box: Sequence[float] | np.ndarray) -> np.ndarray:
        """The ``(S, S, 3)`` uint8 input crop for a cell whose XYXY ``box`` is in ``image`` px."""
        return crop_square(image, box, self.box_offset, self.card.input_size)

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 crops -> ``(N, C)`` float32 probabilities (rows sum to 1)."""
        if len(crops) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        x = normalise(crops, self.card.normalisation, self.device)
        with inference_mode(self.device):
            probs = torch.softmax(self.model(x).float(), dim=1)
        return probs.cpu().numpy()
