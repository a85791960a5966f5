"""NMS: planted duplicates of real cell boxes and masks are removed, distinct cells are kept."""

from __future__ import annotations

import numpy as np
import pytest

from ml.datasets.bccd import load_bccd
from ml.nms import box_nms, dedup_boxes_bucketed, mask_iou_matrix, mask_nms, suppress_contained
from tests.ml.data import BCCD_DIR


def _real_boxes(n_images: int = 6) -> list[np.ndarray]:
    """White- and red-cell boxes of real BCCD photos, de-duplicated by the annotators' own slips."""
    out = []
    for sample in load_bccd(BCCD_DIR)[:n_images]:
        boxes = np.concatenate([sample.boxes["WBC"], sample.boxes["RBC"]])
        keep = box_nms(boxes, np.ones(len(boxes)), 0.5)  # BCCD has some doubled RBC boxes
        out.append(boxes[np.sort(keep)])
    return out


def _planted(boxes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Originals scored 1, plus one jittered copy of each scored lower (IoU well above 0.7)."""
    side = (boxes[:, 2:] - boxes[:, :2]).mean(axis=1, keepdims=True)
    jitter = rng.uniform(-0.03, 0.03, size=boxes.shape) * np.repeat(side, 4, axis=1)
    dupes = boxes + jitter
    scores = np.concatenate([np.ones(len(boxes)), rng.uniform(0.3, 0.9, len(boxes))])
    return np.concatenate([boxes, dupes]), scores, len(boxes)


def test_box_nms_removes_planted_duplicates_of_real_cell_boxes() -> None:
    rng = np.random.default_rng(1)
    for boxes in _real_boxes():
        planted, scores, n = _planted(boxes, rng)
        keep = box_nms(planted, scores, 0.7)
        assert sorted(keep.tolist()) == list(range(n))


def _ellipse_masks(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    ys, xs = np.mgrid[: shape[0], : shape[1]] + 0.5
    masks = []
    for x0, y0, x1, y1 in boxes:
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        masks.append(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1)
    return np.stack(masks)


def test_mask_nms_removes_planted_duplicate_masks_and_keeps_touching_cells() -> None:
    rng = np.random.default_rng(2)
    boxes = _real_boxes(1)[0]
    planted, scores, n = _planted(boxes, rng)
    masks = _ellipse_masks(planted, (480, 640))
    keep = mask_nms(masks, scores, 0.7)
    assert sorted(keep.tolist()) == list(range(n))


def test_mask_iou_matrix_matches_a_direct_count() -> None:
    masks = _ellipse_masks(_real_boxes(1)[0][:5], (480, 640))
    iou = mask_iou_matrix(masks, masks)
    for i in range(5):
        for j in range(5):
            inter = np.logical_and(masks[i], masks[j]).sum()
            union = np.logical_or(masks[i], masks[j]).sum()
            assert iou[i, j] == pytest.approx(inter / union)


def test_a_nucleus_inside_its_cell_is_suppressed_but_a_neighbour_is_not() -> None:
    cell = np.zeros((60, 60), dtype=bool)
    cell[10:50, 10:50] = True
    nucleus = np.zeros((20, 20), dtype=bool)
    nucleus[2:18, 2:18] = True
    neighbour = np.ones((30, 30), dtype=bool)
    boxes = np.array([[0, 0, 60, 60], [20, 20, 40, 40], [55, 55, 85, 85]])
    keep = suppress_contained(boxes, [cell, nucleus, neighbour], containment=0.85)
    assert sorted(keep.tolist()) == [0, 2]


def test_bucketed_dedup_equals_plain_nms_on_random_boxes() -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 5000, size=(800, 2))
    wh = rng.uniform(20, 200, size=(800, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(size=800)
    expected = box_nms(boxes, scores, 0.4)
    assert dedup_boxes_bucketed(boxes, scores, 0.4, bucket_size=250).tolist() == expected.tolist()


def test_bucketed_dedup_with_groups_only_removes_duplicates_across_groups() -> None:
    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [2, 2, 102, 102], [300, 300, 400, 400]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    groups = np.array([0, 0, 1, 1])
    keep = dedup_boxes_bucketed(boxes, scores, 0.5, bucket_size=400, groups=groups)
    # Box 1 overlaps box 0 but comes from the same tile: kept. Box 2 duplicates box 0 across tiles.
    assert keep.tolist() == [0, 1, 3]
