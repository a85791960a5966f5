"""Box-prompted SAM: one image embedding per window, one mask per box, decoded as a batch.

Works with LiteMedSAM (:mod:`ml.models.sam_lite`) and the official ViT-B/L/H checkpoints; only
the pre-processing differs, and it is chosen from the card's architecture
(:func:`preprocessing_for`):

- ``"sam"``: SAM's own, the 0-255 image normalised by the model's ``pixel_mean``/``pixel_std``;
- ``"minmax"``: upstream LiteMedSAM's, the resized image min-max scaled to ``[0, 1]``.

Both resize the longest side to the encoder's ``img_size`` and zero-pad bottom/right.

:class:`ClickAssist` is the workspace's click tool on top: a click becomes the box of the
nucleus under the cursor grown to the cell's extent (:func:`ml.baselines.cells.cell_prompt_boxes`),
and that box becomes a mask.

All boxes are XYXY in the window's pixels, continuous (a mask covering columns ``a..b`` has
``x0 = a``, ``x1 = b + 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.amg import batched_mask_to_box

from ml.baselines.cells import BCCD_MPP, cell_prompt_boxes
from ml.cards import ModelCard, load_model
from ml.device import inference_mode
from ml.geometry import resize_longest_side_shape
from ml.models.sam_everything import blank_padding, resample_in_box

PREPROCESSING = ("sam", "minmax")


def preprocessing_for(card: ModelCard) -> str:
    """``"minmax"`` for LiteMedSAM cards, ``"sam"`` for the official architectures."""
    return "minmax" if card.architecture.startswith("lite_medsam") else "sam"


@dataclass
class BoxMasks:
    """One mask per prompt box (same order), in window px.

    ``boxes``: ``(N, 4)`` int64 XYXY of each mask (an empty mask has a zero box);
    ``masks[k]``: bool crop covering ``boxes[k]`` exactly, or ``None`` when SAM gave nothing;
    ``scores``: SAM's predicted IoU.
    """

    boxes: np.ndarray
    masks: list[np.ndarray | None]
    scores: np.ndarray


@dataclass(frozen=True)
class Embedded:
    """One window's image embedding and the sizes needed to map boxes in and masks out."""

    embedding: torch.Tensor  # (C, e, e)
    image_hw: tuple[int, int]
    input_hw: tuple[int, int]


class BoxPromptSam:
    """A SAM on a fixed device that turns boxes into masks; no grad, autocast on CUDA."""

    def __init__(
        self, model: Sam, device: torch.device, *, preprocessing: str, box_batch: int = 32
    ) -> None:
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
        self.model = model.to(device).eval()
        self.device = device
        self.preprocessing = preprocessing
        self.box_batch = box_batch

    @classmethod
    def from_card(cls, card: ModelCard, device: torch.device) -> BoxPromptSam:
        """The card's SAM (built, weights loaded with the sha256 checked) with the
        pre-processing its architecture needs. Raises :class:`ml.cards.ModelCardError`."""
        model = load_model(card, device)
        return cls(model, device, preprocessing=preprocessing_for(card))

    @property
    def img_size(self) -> int:
        return int(self.model.image_encoder.img_size)

    def embed(self, images: Sequence[np.ndarray]) -> list[Embedded]:
        """Embed ``B`` RGB uint8 windows as one encoder batch."""
        if not images:
            return []
        batch, input_hws = [], []
        for image in images:
            h, w = resize_longest_side_shape(image.shape[0], image.shape[1], self.img_size)
            shrink = h < image.shape[0]
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            resized = cv2.resize(image, (w, h), interpolation=interpolation)
            x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).float()
            if self.preprocessing == "minmax":
                x = minmax_unit(x)
            batch.append(self.model.preprocess(x[None])[0])  # normalise (SAM) + zero-pad
            input_hws.append((h, w))
        with inference_mode(self.device):
            embeddings = self.model.image_encoder(torch.stack(batch)).float()
        return [
            Embedded(emb, image.shape[:2], hw)
            for emb, image, hw in zip(embeddings, images, input_hws, strict=True)
        ]

    def masks(self, embedded: Embedded, boxes: np.ndarray, *, multimask: bool = False) -> BoxMasks:
        """One mask per ``(N, 4)`` XYXY window-px prompt box; decoded ``box_batch`` at a time.

        ``multimask``: the decoder proposes three masks per box and the one with the highest
        predicted IoU is kept (SAM's own answer to an ambiguous prompt), instead of its single
        mask output.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        out_boxes = np.zeros((len(boxes), 4), dtype=np.int64)
        masks: list[np.ndarray | None] = []
        scores = np.zeros(len(boxes))
        (h, w), (nh, nw) = embedded.image_hw, embedded.input_hw
        to_input = np.array([nw / w, nh / h, nw / w, nh / h])
        for start in range(0, len(boxes), self.box_batch):
            chunk = boxes[start : start + self.box_batch] * to_input
            logits, iou = self._decode(embedded.embedding, chunk, embedded.input_hw, multimask)
            low_res = batched_mask_to_box(logits > self.model.mask_threshold).float()
            low_res[:, 2:] += 1  # inclusive pixel indices -> continuous XYXY
            lh, lw = logits.shape[-2:]
            # low-res px per window px, per axis: window -> model input -> decoder output.
            scale = np.array([nw / w * lw / self.img_size, nh / h * lh / self.img_size])
            for k in range(len(chunk)):
                mask, box = resample_in_box(logits[k], low_res[k].cpu().numpy(), scale, (h, w))
                masks.append(mask)
                out_boxes[start + k] = box.astype(np.int64)
                scores[start + k] = float(iou[k])
        return BoxMasks(out_boxes, masks, scores)

    def _decode(
        self, embedding: torch.Tensor, boxes: np.ndarray, input_hw: tuple[int, int], multimask: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, h, w)`` float32 low-res logits (padding blanked) and ``(N,)`` predicted IoU:
        the single mask output, or of the three multimask outputs the best-predicted one."""
        prompts = torch.as_tensor(boxes, dtype=torch.float32, device=self.device)
        with inference_mode(self.device):
            sparse, dense = self.model.prompt_encoder(points=None, boxes=prompts, masks=None)
            logits, iou = self.model.mask_decoder(
                image_embeddings=embedding[None],
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
        best = iou.argmax(dim=1)
        rows = torch.arange(len(best), device=best.device)
        logits = blank_padding(logits.float()[rows, best], input_hw, self.img_size)
        return logits, iou.float()[rows, best]


def minmax_unit(x: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` float image scaled to ``[0, 1]`` by its own min and max (LiteMedSAM's
    ``(img - min) / clip(max - min, 1e-8)``; a flat image becomes zeros)."""
    lo, hi = x.min(), x.max()
    return (x - lo) / torch.clamp(hi - lo, min=1e-8)


@dataclass(frozen=True)
class ClickMask:
    """The click tool's answer, in window px: the mask crop, its XYXY box, the prompt box and
    SAM's predicted IoU."""

    mask: np.ndarray
    box: np.ndarray
    prompt: np.ndarray
    score: float


class NothingAtClick(ValueError):
    """No nucleated cell near the click, or SAM's mask for it is empty."""


class ClickAssist:
    """A click in a window -> the outline of the nucleated cell under it.

    The prompt is the box of the nucleated cell holding the click (else the nearest one within
    ``reach_um``): the classical segmenter's nucleus grown to the cell's extent, then grown by
    ``growth`` (:func:`ml.baselines.cells.cell_prompt_boxes`, the same proposals as the
    pipeline's :class:`ml.stages.cells.BoxPromptSegmenter`); with no cell in reach, a square of
    ``fallback_um`` centred on the click.

    Embeddings are the caller's to cache (:meth:`embed`, then :meth:`mask_at`).
    :meth:`window_px` is the side of the window to embed around a click: ``window_um`` at the
    slide's resolution, the segmenter's encode window, so a cell is as well resolved as in an
    analysis. An ``mpp`` of ``None`` assumes BCCD's (:data:`ml.baselines.cells.BCCD_MPP`).
    """

    def __init__(
        self,
        sam: BoxPromptSam,
        *,
        window_um: float = 48.0,
        reach_um: float = 6.0,
        fallback_um: float = 12.0,
        growth: float = 0.2,
    ) -> None:
        self.sam = sam
        self.window_um = window_um
        self.reach_um = reach_um
        self.fallback_um = fallback_um
        self.growth = growth

    def window_px(self, mpp: float | None) -> int:
        """Side (px) of the window to embed around a click at ``mpp`` µm/px."""
        return max(round(self.window_um / (mpp or BCCD_MPP)), 32)

    def embed(self, window: np.ndarray) -> Embedded:
        """Embed one RGB uint8 window."""
        return self.sam.embed([window])[0]

    def prompt_box(
        self, window: np.ndarray, click: tuple[float, float], mpp: float | None
    ) -> np.ndarray:
        """The XYXY window-px prompt box for a click ``(x, y)`` in window px."""
        mpp = mpp or BCCD_MPP
        boxes, cells = cell_prompt_boxes(window, mpp=mpp, growth=self.growth)
        col, row = int(click[0]), int(click[1])
        inside = 0 <= row < cells.shape[0] and 0 <= col < cells.shape[1]
        label = int(cells[row, col]) if inside else 0
        if label == 0 and len(boxes):
            rows, cols = np.nonzero(cells)
            d2 = (rows + 0.5 - click[1]) ** 2 + (cols + 0.5 - click[0]) ** 2
            nearest = int(np.argmin(d2))
            if d2[nearest] <= (self.reach_um / mpp) ** 2:
                label = int(cells[rows[nearest], cols[nearest]])
        if label:
            return boxes[label - 1]
        half = 0.5 * self.fallback_um / mpp
        return np.array([click[0] - half, click[1] - half, click[0] + half, click[1] + half])

    def mask_at(
        self,
        window: np.ndarray,
        embedded: Embedded,
        click: tuple[float, float],
        mpp: float | None,
    ) -> ClickMask:
        """The mask for a click ``(x, y)`` in px of ``window`` (already :meth:`embed`-ded).

        Raises :class:`NothingAtClick` when SAM returns an empty mask.
        """
        prompt = self.prompt_box(window, click, mpp)
        found = self.sam.masks(embedded, prompt[None])
        mask = found.masks[0]
        if mask is None:
            raise NothingAtClick("Segment Anything found no cell at the click")
        return ClickMask(mask, found.boxes[0], prompt, float(found.scores[0]))
