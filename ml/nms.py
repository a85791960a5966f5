"""Non-maximum suppression for boxes and masks, and de-duplication across tiles.

Every function returns the indices it keeps, highest score first, so callers can filter any
parallel arrays (masks, polygons, scores) the same way. Boxes are XYXY in any one pixel frame.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import nms as _tv_nms

# Masks are compared in chunks so an (N, H*W) float matrix never has to exist at once.
_MASK_CHUNK = 64


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy box NMS: drop a box whose IoU with a higher-scoring kept box exceeds the threshold.

    ``boxes``: ``(N, 4)`` XYXY; ``scores``: ``(N,)``. Returns ``(K,)`` int64 indices into the
    inputs, by descending score.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    keep = _tv_nms(
        torch.as_tensor(np.asarray(boxes, dtype=np.float32)),
        torch.as_tensor(np.asarray(scores, dtype=np.float32)),
        float(iou_threshold),
    )
    return keep.numpy().astype(np.int64)


def mask_iou_matrix(masks_a: np.ndarray, masks_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, H, W)`` and ``(M, H, W)`` binary masks -> ``(N, M)`` float64."""
    a = torch.as_tensor(np.asarray(masks_a, dtype=bool).reshape(len(masks_a), -1))
    b = torch.as_tensor(np.asarray(masks_b, dtype=bool).reshape(len(masks_b), -1))
    area_a = a.sum(1, dtype=torch.float64)
    area_b = b.sum(1, dtype=torch.float64)
    bf = b.to(torch.float32)
    out = torch.empty((len(a), len(b)), dtype=torch.float64)
    for start in range(0, len(a), _MASK_CHUNK):
        chunk = a[start : start + _MASK_CHUNK].to(torch.float32)
        inter = (chunk @ bf.T).to(torch.float64)
        union = area_a[start : start + _MASK_CHUNK, None] + area_b[None, :] - inter
        out[start : start + _MASK_CHUNK] = inter / union.clamp(min=1.0)
    return out.numpy()


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on ``(N, H, W)`` binary masks by mask IoU; returns kept indices, best first."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    if len(order) == 0:
        return order.astype(np.int64)
    iou = mask_iou_matrix(masks[order], masks[order])
    return order[_greedy(iou > iou_threshold)]


def suppress_contained(
    boxes: np.ndarray, masks: Sequence[np.ndarray], containment: float
) -> np.ndarray:
    """Drop masks lying mostly inside a larger kept mask (a nucleus inside its cell).

    Mask ``k`` is the bool crop covering integer XYXY ``boxes[k]`` of one image (as SAM's
    everything mode returns them). A mask is dropped when at least ``containment`` of its area
    lies inside a larger kept mask. Returns kept indices, largest first.
    """
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    areas = np.array([int(m.sum()) for m in masks], dtype=np.int64)
    order = np.argsort(-areas, kind="stable")
    kept: list[int] = []
    for i in order:
        inside = any(
            _overlap(boxes[i], masks[i], boxes[j], masks[j]) >= containment * max(areas[i], 1)
            for j in kept
        )
        if not inside:
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


def _overlap(box_a: np.ndarray, mask_a: np.ndarray, box_b: np.ndarray, mask_b: np.ndarray) -> int:
    """Pixels shared by two box-cropped masks of the same image."""
    x0, y0 = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    x1, y1 = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    if x1 <= x0 or y1 <= y0:
        return 0
    a = mask_a[y0 - box_a[1] : y1 - box_a[1], x0 - box_a[0] : x1 - box_a[0]]
    b = mask_b[y0 - box_b[1] : y1 - box_b[1], x0 - box_b[0] : x1 - box_b[0]]
    return int(np.count_nonzero(a & b))


def _greedy(conflicts: np.ndarray) -> np.ndarray:
    """Walk rows in order; keep row i unless it conflicts with an earlier kept row.

    ``conflicts[j, i]`` true means kept row ``j`` suppresses later row ``i``.
    """
    n = len(conflicts)
    suppressed = np.zeros(n, dtype=bool)
    kept = []
    for i in range(n):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed |= conflicts[i]
    return np.asarray(kept, dtype=np.int64)


def dedup_boxes_bucketed(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    bucket_size: float,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy box NMS over a whole slide, in time linear in the number of boxes.

    Boxes are hashed into square buckets of ``bucket_size``, so each box is only compared with
    kept boxes in the buckets it touches. With ``groups`` (one id per box, e.g. the tile that
    found it), boxes of the same group never suppress each other: only duplicates *across*
    groups are removed. Without groups the result equals :func:`box_nms`'s. Returns kept
    indices by descending score.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    group_of = np.zeros(len(boxes), dtype=np.int64) if groups is None else np.asarray(groups)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    kept: list[int] = []
    for i in order:
        keys = _bucket_keys(boxes[i], bucket_size)
        near = [
            j
            for j in {j for key in keys for j in buckets[key]}
            if groups is None or group_of[j] != group_of[i]
        ]
        if near and _box_iou_one(boxes[i], boxes[near]).max() > iou_threshold:
            continue
        kept.append(int(i))
        for key in keys:
            buckets[key].append(int(i))
    return np.asarray(kept, dtype=np.int64)


def _bucket_keys(box: np.ndarray, size: float) -> list[tuple[int, int]]:
    c0, r0 = int(box[0] // size), int(box[1] // size)
    c1, r1 = int(box[2] // size), int(box[3] // size)
    return [(c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def _box_iou_one(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    ix0 = np.maximum(box[0], others[:, 0])
    iy0 = np.maximum(box[1], others[:, 1])
    ix1 = np.minimum(box[2], others[:, 2])
    iy1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)
