"""SAM "everything" mode, batched: one image embedding per tile, a grid of point prompts.

This follows ``segment_anything.SamAutomaticMaskGenerator`` (grid of single foreground points,
three masks per point, predicted-IoU and stability filters, box NMS) with three changes for
whole-slide throughput:

- the image encoder runs on a *batch* of tiles, so each tile is embedded exactly once and the
  GPU sees a full batch;
- filtering and NMS happen on the decoder's low-resolution logits (``img_size / 4`` square),
  and NMS runs after every prompt batch, so memory stays bounded by the number of distinct
  objects rather than the number of prompts (a greedy NMS done in steps can keep slightly
  different survivors from a single pass; it never keeps two boxes above the threshold);
- only the surviving masks are upsampled, each inside its own box, straight to tile pixels.

All boxes are XYXY in the input image's pixels, continuous (a mask covering columns
``a..b`` has ``x0 = a``, ``x1 = b + 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.amg import batched_mask_to_box, calculate_stability_score
from torch.nn import functional as F

from ml.device import inference_mode
from ml.geometry import resize_longest_side_shape
from ml.nms import box_nms


@dataclass
class SamMasks:
    """The masks SAM found in one image.

    ``boxes``: ``(K, 4)`` float64 XYXY image px; ``masks[k]``: bool crop of the image covering
    ``boxes[k]`` exactly; ``scores``: predicted IoU; ``stability``: stability score.
    """

    boxes: np.ndarray
    masks: list[np.ndarray]
    scores: np.ndarray
    stability: np.ndarray

    def __len__(self) -> int:
        return len(self.masks)


@dataclass
class _LowRes:
    """Survivors so far for one image, at the decoder's resolution."""

    logits: torch.Tensor  # (K, h, w) float16
    boxes: torch.Tensor  # (K, 4) float32, low-res px, continuous
    scores: torch.Tensor  # (K,)
    stability: torch.Tensor  # (K,)


class SamEverything:
    """Everything-mode mask generation with a SAM model on a fixed device."""

    def __init__(
        self,
        model: Sam,
        device: torch.device,
        *,
        points_per_side: int = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
    ) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.points_per_side = points_per_side
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh

    @property
    def img_size(self) -> int:
        return int(self.model.image_encoder.img_size)

    def generate(
        self, images: Sequence[np.ndarray], points: Sequence[np.ndarray] | None = None
    ) -> list[SamMasks]:
        """Masks for each ``(H, W, 3)`` uint8 RGB image; the images are embedded as one batch.

        ``points``, when given, holds each image's own ``(N, 2)`` prompts (x, y image px)
        instead of the regular grid.
        """
        if not images:
            return []
        return self.decode(self.embed(images), [image.shape[:2] for image in images], points)

    def decode(
        self,
        embeddings: torch.Tensor,
        image_hws: Sequence[tuple[int, int]],
        points: Sequence[np.ndarray] | None = None,
    ) -> list[SamMasks]:
        """Masks from :meth:`embed`'s output; ``image_hws`` are the original images' ``(H, W)``."""
        none: list[np.ndarray | None] = [None] * len(image_hws)
        prompts: Sequence[np.ndarray | None] = points if points is not None else none
        return [
            self._masks_for(emb, hw, pts)
            for emb, hw, pts in zip(embeddings, image_hws, prompts, strict=True)
        ]

    def embed(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``B`` RGB uint8 images -> ``(B, C, e, e)`` float32 image embeddings (one per image)."""
        batch = []
        for image in images:
            h0, w0 = image.shape[:2]
            h, w = resize_longest_side_shape(h0, w0, self.img_size)
            resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).float()
            batch.append(self.model.preprocess(x[None])[0])  # normalise + zero-pad
        with inference_mode(self.device):
            return self.model.image_encoder(torch.stack(batch)).float()

    def _masks_for(
        self, embedding: torch.Tensor, image_hw: tuple[int, int], points: np.ndarray | None
    ) -> SamMasks:
        input_hw = resize_longest_side_shape(*image_hw, self.img_size)
        kept: _LowRes | None = None
        for batch in self._point_batches(image_hw, input_hw, points):
            found = self._decode(embedding, batch, input_hw)
            kept = found if kept is None else self._merge(kept, found)
        if kept is None or len(kept.scores) == 0:
            return SamMasks(np.zeros((0, 4)), [], np.zeros(0), np.zeros(0))
        return self._upsample(kept, image_hw, input_hw)

    def _point_batches(
        self,
        image_hw: tuple[int, int],
        input_hw: tuple[int, int],
        points: np.ndarray | None = None,
    ) -> list[torch.Tensor]:
        """Prompts in model-input px, in batches: ``points`` (image px) or, when ``None``, the
        centres of an ``n x n`` grid over the image."""
        if points is None:
            n = self.points_per_side
            centres = (np.arange(n) + 0.5) / n
            xs, ys = np.meshgrid(centres * input_hw[1], centres * input_hw[0])
            grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        else:
            scale = np.array([input_hw[1] / image_hw[1], input_hw[0] / image_hw[0]])
            grid = np.asarray(points, dtype=np.float64).reshape(-1, 2) * scale
        prompts = torch.as_tensor(grid, dtype=torch.float32, device=self.device)
        return list(prompts.split(self.points_per_batch))

    def _decode(
        self, embedding: torch.Tensor, points: torch.Tensor, input_hw: tuple[int, int]
    ) -> _LowRes:
        """Decode one prompt batch; keep masks passing the IoU and stability filters."""
        labels = torch.ones(len(points), 1, dtype=torch.int, device=self.device)
        with inference_mode(self.device):
            sparse, dense = self.model.prompt_encoder(
                points=(points[:, None], labels), boxes=None, masks=None
            )
            logits, iou = self.model.mask_decoder(
                image_embeddings=embedding[None],
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
            )
        logits = logits.float().flatten(0, 1)
        iou = iou.float().flatten()
        logits = blank_padding(logits, input_hw, self.img_size)
        keep = iou > self.pred_iou_thresh
        logits, iou = logits[keep], iou[keep]
        stability = calculate_stability_score(
            logits, self.model.mask_threshold, self.stability_score_offset
        )
        keep = stability >= self.stability_score_thresh
        logits, iou, stability = logits[keep], iou[keep], stability[keep]
        binary = logits > self.model.mask_threshold
        nonempty = binary.flatten(1).any(1)
        logits, iou, stability, binary = (
            logits[nonempty],
            iou[nonempty],
            stability[nonempty],
            binary[nonempty],
        )
        boxes = batched_mask_to_box(binary).float()
        boxes[:, 2:] += 1  # inclusive pixel indices -> continuous XYXY
        return _LowRes(logits.half(), boxes, iou, stability)

    def _merge(self, a: _LowRes, b: _LowRes) -> _LowRes:
        boxes = torch.cat([a.boxes, b.boxes])
        scores = torch.cat([a.scores, b.scores])
        keep = torch.as_tensor(
            box_nms(boxes.cpu().numpy(), scores.cpu().numpy(), self.box_nms_thresh)
        )
        keep = keep.to(boxes.device)
        return _LowRes(
            torch.cat([a.logits, b.logits])[keep],
            boxes[keep],
            scores[keep],
            torch.cat([a.stability, b.stability])[keep],
        )

    def _upsample(
        self, kept: _LowRes, image_hw: tuple[int, int], input_hw: tuple[int, int]
    ) -> SamMasks:
        """Each survivor's logits, resampled inside its box to image px and thresholded."""
        keep = box_nms(kept.boxes.cpu().numpy(), kept.scores.cpu().numpy(), self.box_nms_thresh)
        lh, lw = kept.logits.shape[-2:]
        # low-res px per image px, per axis: image -> model input -> decoder output.
        scale = np.array(
            [
                input_hw[1] / image_hw[1] * lw / self.img_size,
                input_hw[0] / image_hw[0] * lh / self.img_size,
            ]
        )
        boxes, masks, scores, stability = [], [], [], []
        for k in keep:
            mask, box = resample_in_box(
                kept.logits[k].float(), kept.boxes[k].cpu().numpy(), scale, image_hw
            )
            if mask is None:
                continue
            boxes.append(box)
            masks.append(mask)
            scores.append(float(kept.scores[k]))
            stability.append(float(kept.stability[k]))
        return SamMasks(
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            masks,
            np.asarray(scores),
            np.asarray(stability),
        )


def blank_padding(logits: torch.Tensor, input_hw: tuple[int, int], img_size: int) -> torch.Tensor:
    """Mask out (in place) the ``(N, h, w)`` low-res pixels that show the zero padding of an
    ``img_size`` model input whose image part is ``input_hw``."""
    lh, lw = logits.shape[-2:]
    vh = int(np.ceil(input_hw[0] * lh / img_size))
    vw = int(np.ceil(input_hw[1] * lw / img_size))
    logits[:, vh:, :] = -1e4
    logits[:, :, vw:] = -1e4
    return logits


def resample_in_box(
    logits: torch.Tensor, box_lr: np.ndarray, scale: np.ndarray, image_hw: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray]:
    """Bilinear-sample ``(h, w)`` low-res logits at the image-px centres inside a box.

    Image pixel ``u`` has centre ``u + 0.5``, which is low-res coordinate ``(u + 0.5) * scale``.
    Returns the thresholded mask tightened to its own box (image px, XYXY), or ``None`` if empty.
    """
    h, w = image_hw
    x0 = max(int(np.floor(box_lr[0] / scale[0])) - 1, 0)
    y0 = max(int(np.floor(box_lr[1] / scale[1])) - 1, 0)
    x1 = min(int(np.ceil(box_lr[2] / scale[0])) + 1, w)
    y1 = min(int(np.ceil(box_lr[3] / scale[1])) + 1, h)
    lh, lw = logits.shape
    gx = (torch.arange(x0, x1, device=logits.device) + 0.5) * scale[0] / lw * 2 - 1
    gy = (torch.arange(y0, y1, device=logits.device) + 0.5) * scale[1] / lh * 2 - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).float()
    sampled = F.grid_sample(logits[None, None], grid[None], mode="bilinear", align_corners=False)
    mask = (sampled[0, 0] > 0).cpu().numpy()
    if not mask.any():
        return None, np.zeros(4)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    tight = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box = np.array(
        [x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], dtype=np.float64
    )
    return np.ascontiguousarray(tight), box
