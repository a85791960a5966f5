from __future__ import annotations

import json
import math
import warnings
import xml.etree.ElementTree as ET
from itertools import permutations
from typing import Any

import cv2
import numpy as np
import pytest
import shapely
import sklearn.metrics as skm
from scipy.optimize import linear_sum_assignment
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

import ml.agreement as ag
import ml.agreement.cells as ag_cells
from ml import metrics
from tests.ml.data import BCCD_DIR

CLASSES = ("blast", "lympho", "mono", "neutro", "eo")
STEMS = ("BloodImage_00007", "BloodImage_00011", "BloodImage_00015")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    """A GeoJSON rectangle, the shape annotations are stored as."""
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def ellipse(box: tuple[float, ...], n: int = 40) -> np.ndarray:
    """The ellipse inscribed in an XYXY box as an ``(n, 2)`` ring: a cell outline."""
    x0, y0, x1, y1 = box
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return np.c_[cx + rx * np.cos(t), cy + ry * np.sin(t)]


def bccd_boxes(stem: str) -> list[tuple[float, ...]]:
    """Every non-degenerate box of a real BCCD annotation: crowded, touching, duplicated cells."""
    root = ET.parse(BCCD_DIR / "Annotations" / f"{stem}.xml").getroot()
    boxes = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        box = tuple(float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    return boxes


def smear_regions(stem: str, offset: int, shift: tuple[float, float] = (0, 0)) -> list[Any]:
    """Polygons (with holes) of the stained regions of a real BCCD photo, thresholded at
    Otsu + ``offset`` and moved by ``shift`` px: two settings play two annotators drawing one
    ROI differently (real, ragged outlines with holes)."""
    image = cv2.imread(str(BCCD_DIR / "JPEGImages" / f"{stem}.jpg"))
    green = cv2.GaussianBlur(image[..., 1], (5, 5), 0)
    otsu, _ = cv2.threshold(green, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (green < otsu + offset).astype(np.uint8)
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for i, contour in enumerate(contours):
        if hierarchy[0][i][3] >= 0 or len(contour) < 3 or cv2.contourArea(contour) < 200:
            continue
        holes = [c[:, 0] for j, c in enumerate(contours) if hierarchy[0][j][3] == i and len(c) > 2]
        polygon = shapely.Polygon(contour[:, 0], holes)
        polygon = shapely.make_valid(polygon, method="structure", keep_collapsed=False)
        polygons.append(shapely.transform(polygon, lambda xy: xy + np.asarray(shift)))
    return polygons


def raster(polygons: list[shapely.Polygon], shape: tuple[int, int], scale: int) -> np.ndarray:
    """Fill polygons on a grid ``scale`` times finer than their pixel frame (cv2, sub-pixel),
    with a 16 px margin so shapes moved off the photo are not clipped."""
    margin, shift = 16, 4
    mask = np.zeros(((shape[0] + 2 * margin) * scale, (shape[1] + 2 * margin) * scale), np.uint8)
    for poly in shapely.get_parts(polygons):  # MultiPolygons become their Polygons
        if poly.is_empty:
            continue
        rings = [poly.exterior, *poly.interiors]
        pts = [
            np.round((np.asarray(r.coords) + margin) * scale * 2**shift).astype(np.int32)
            for r in rings
        ]
        one = np.zeros_like(mask)
        cv2.fillPoly(one, pts, 1, lineType=cv2.LINE_8, shift=shift)
        mask |= one
    return mask.astype(bool)


def no_nan(value: Any) -> bool:
    """True when no float anywhere in a nested to_dict() result is NaN or infinite."""
    json.dumps(value, allow_nan=False)
    return True


# ------------------------------------------------------------------------------- kappa


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("seed", range(4))
def test_kappa_and_confusion_equal_sklearn_on_random_label_pairs(n_classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = CLASSES[:n_classes]
    y_a = rng.choice(labels, 300).tolist()
    y_b = [a if rng.random() < 0.7 else str(rng.choice(labels)) for a in y_a]
    result = ag.label_agreement(y_a, y_b, labels)
    assert result.kappa.value == pytest.approx(skm.cohen_kappa_score(y_a, y_b, labels=labels))
    assert result.percent_agreement.value == pytest.approx(skm.accuracy_score(y_a, y_b))
    np.testing.assert_array_equal(result.confusion, skm.confusion_matrix(y_a, y_b, labels=labels))


@pytest.mark.parametrize(
    ("y_a", "y_b"),
    [
        (["neutro"] * 5, ["neutro", "neutro", "eo", "blast", "neutro"]),  # one rater: one class
        (["neutro", "eo", "blast", "eo"], ["neutro", "eo", "blast", "eo"]),  # perfect agreement
        (["neutro", "eo", "neutro", "eo"], ["eo", "neutro", "eo", "neutro"]),  # never agree
        (["neutro", "neutro"], ["eo", "eo"]),  # one class each, different
    ],
)
def test_degenerate_label_pairs_still_equal_sklearn(y_a: list[str], y_b: list[str]) -> None:
    result = ag.label_agreement(y_a, y_b, CLASSES)
    assert result.kappa.value == pytest.approx(skm.cohen_kappa_score(y_a, y_b, labels=CLASSES))
    np.testing.assert_array_equal(result.confusion, skm.confusion_matrix(y_a, y_b, labels=CLASSES))
    assert no_nan(result.to_dict())


def test_one_shared_class_only_is_perfect_agreement_where_sklearn_gives_nan() -> None:
    y = ["neutro"] * 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the 0/0 it then returns
        assert math.isnan(skm.cohen_kappa_score(y, y))
    result = ag.label_agreement(y, y, CLASSES)
    assert result.kappa.value == 1.0
    assert result.percent_agreement.value == 1.0
    assert result.per_class["neutro"].agreement == 1.0
    assert result.per_class["eo"].agreement is None


def test_no_item_labelled_by_both_gives_none_not_nan() -> None:
    result = ag.label_agreement(["neutro", None, ""], [None, "eo", "eo"], CLASSES)
    assert result.n == 0
    assert result.kappa.value is None and result.kappa.low is None
    assert result.percent_agreement.value is None
    assert result.confusion.shape == (len(CLASSES), len(CLASSES)) and not result.confusion.any()
    assert all(row.agreement is None for row in result.per_class.values())
    assert no_nan(result.to_dict())


def test_unlabelled_items_are_left_out_and_unknown_labels_are_shown() -> None:
    result = ag.label_agreement(["neutro", None, "retired"], ["neutro", "eo", "eo"], CLASSES)
    assert result.labels == (*CLASSES, "retired")
    assert result.n == 2
    assert result.confusion[CLASSES.index("neutro"), CLASSES.index("neutro")] == 1
    assert result.confusion[len(CLASSES), CLASSES.index("eo")] == 1


def test_per_class_agreement_is_specific_positive_agreement() -> None:
    y_a = ["neutro", "neutro", "neutro", "eo", "blast"]
    y_b = ["neutro", "neutro", "eo", "eo", "eo"]
    rows = ag.label_agreement(y_a, y_b, CLASSES).per_class
    assert rows["neutro"].agreement == pytest.approx(2 * 2 / (3 + 2))
    assert rows["eo"].agreement == pytest.approx(2 * 1 / (1 + 3))
    assert rows["blast"].agreement == 0.0
    assert (rows["neutro"].n_a, rows["neutro"].n_b, rows["neutro"].n_both) == (3, 2, 2)


def test_vectorised_kappa_equals_metrics_kappa_on_every_matrix(rng: np.random.Generator) -> None:
    stack = rng.integers(0, 6, size=(50, 4, 4))
    stack[0] = 0
    stack[1] = np.diag([0, 5, 0, 0])  # one shared class only
    got = ag.kappa_from_confusions(stack)
    for matrix, value in zip(stack, got, strict=True):
        a, b = np.nonzero(matrix)
        y_a = np.repeat(a, matrix[a, b])
        y_b = np.repeat(b, matrix[a, b])
        expected = metrics.cohen_kappa(y_a, y_b, labels=range(4))
        assert (math.isnan(value) and expected is None) or value == pytest.approx(expected)


def test_kappa_ci_matches_a_plain_item_bootstrap(rng: np.random.Generator) -> None:
    y_a = rng.choice(CLASSES, 400).tolist()
    y_b = [a if rng.random() < 0.75 else str(rng.choice(CLASSES)) for a in y_a]
    fast = ag.label_agreement(y_a, y_b, CLASSES).kappa
    slow = metrics.bootstrap_ci(
        (np.array(y_a), np.array(y_b)), lambda a, b: metrics.cohen_kappa(a, b, CLASSES), seed=3
    )
    assert slow is not None and fast.low is not None and fast.high is not None
    assert fast.low < fast.value < fast.high
    assert fast.low == pytest.approx(slow[0], abs=0.02)
    assert fast.high == pytest.approx(slow[1], abs=0.02)


# --------------------------------------------------------------------------------- TOI


def test_toi_counts_tiles_only_one_annotator_labelled() -> None:
    tiles_a = {(0, 0): "toi", (1, 0): "non_toi", (2, 0): "toi", (3, 0): None, (5, 5): "toi"}
    tiles_b = {(0, 0): "toi", (1, 0): "toi", (2, 0): "toi", (3, 0): "non_toi", (4, 0): ""}
    result = ag.toi_agreement(tiles_a, tiles_b)
    assert (result.only_a, result.only_b, result.labels.n) == (1, 1, 3)
    y_a, y_b = ["toi", "non_toi", "toi"], ["toi", "toi", "toi"]
    assert result.labels.kappa.value == pytest.approx(skm.cohen_kappa_score(y_a, y_b))
    expected = skm.confusion_matrix(y_a, y_b, labels=list(ag.TOI_LABELS))
    np.testing.assert_array_equal(result.labels.confusion, expected)
    assert no_nan(result.to_dict())


def test_toi_with_no_common_tile_has_no_kappa() -> None:
    result = ag.toi_agreement({(0, 0): "toi"}, {(1, 1): "non_toi"})
    assert (result.only_a, result.only_b) == (1, 1)
    assert result.labels.kappa.value is None
    assert ag.toi_agreement({}, {}).labels.percent_agreement.value is None


# --------------------------------------------------------------------------------- ROI


@pytest.mark.parametrize("stem", STEMS)
def test_exact_roi_iou_agrees_with_a_fine_raster_within_one_percent(stem: str) -> None:
    rois_a, rois_b = smear_regions(stem, 0), smear_regions(stem, -10, (6.37, -3.81))
    result = ag.roi_agreement(rois_a, rois_b)
    mask_a, mask_b = raster(rois_a, (480, 640), 4), raster(rois_b, (480, 640), 4)
    assert 0.3 < result.iou < 0.99  # a real, partial overlap
    assert result.iou == pytest.approx(metrics.iou(mask_a, mask_b), rel=0.01)
    assert result.dice == pytest.approx(metrics.dice(mask_a, mask_b), rel=0.01)


def test_roi_degenerate_cases() -> None:
    square = [rect(0, 0, 10, 10)]
    assert ag.roi_agreement([], []).iou == 1.0
    assert ag.roi_agreement(square, []).iou == 0.0
    assert ag.roi_agreement(square, [rect(20, 20, 30, 30)]).dice == 0.0
    assert ag.roi_agreement(square, square).iou == 1.0


def test_roi_is_the_union_of_each_annotators_polygons() -> None:
    # A draws the region as two overlapping halves, B as one rectangle: they agree exactly.
    a = [rect(0, 0, 60, 50), rect(40, 0, 100, 50)]
    result = ag.roi_agreement(a, [rect(0, 0, 100, 50)])
    assert result.area_a == pytest.approx(5000.0)
    assert result.iou == pytest.approx(1.0)


# ------------------------------------------------------------------------------- cells


def test_crowded_touching_cells_keep_every_pair_where_greedy_loses_one() -> None:
    # Each annotator's cells touch without overlapping. A1-B1 is the best pair (IoU 0.43), but
    # taking it strands A2 (only candidate B1) and B2 (only candidate A1).
    cells_a = [rect(0, 0, 10, 10), rect(10, 0, 20, 10)]
    cells_b = [rect(4, 0, 14, 10), rect(-6, 0, 4, 10)]
    boxes_a = np.array([[0, 0, 10, 10], [10, 0, 20, 10]])
    boxes_b = np.array([[4, 0, 14, 10], [-6, 0, 4, 10]])
    assert metrics.match_boxes(boxes_a, boxes_b, 0.2) == [(0, 0)]
    match = ag.match_cells(cells_a, cells_b, iou_threshold=0.2)
    assert match.pairs.tolist() == [[0, 1], [1, 0]]
    np.testing.assert_allclose(match.ious, [4 / 16, 4 / 16])


def test_overlapping_cells_at_the_default_threshold_are_matched_as_a_whole() -> None:
    cells_a = [rect(0, 0, 10, 10), rect(3, 0, 13, 10)]  # two cells drawn overlapping
    cells_b = [rect(1, 0, 11, 10), rect(-3, 0, 7, 10)]
    match = ag.match_cells(cells_a, cells_b)
    assert sorted(map(tuple, match.pairs.tolist())) == [(0, 1), (1, 0)]
    assert match.a_only.size == 0 and match.b_only.size == 0


def test_among_equally_many_pairs_the_largest_total_iou_wins() -> None:
    cells_a = [rect(0, 0, 10, 10), rect(2, 0, 12, 10)]
    cells_b = [rect(1, 0, 11, 10), rect(3, 0, 13, 10)]
    match = ag.match_cells(cells_a, cells_b)
    assert match.pairs.tolist() == [[0, 0], [1, 1]]
    np.testing.assert_allclose(match.ious, [9 / 11, 9 / 11])


def test_pairs_below_the_threshold_are_not_matched() -> None:
    match = ag.match_cells([rect(0, 0, 10, 10)], [rect(6, 0, 16, 10)], iou_threshold=0.5)
    assert match.pairs.shape == (0, 2)
    assert match.a_only.tolist() == [0] and match.b_only.tolist() == [0]
    loose = ag.match_cells([rect(0, 0, 10, 10)], [rect(6, 0, 16, 10)], iou_threshold=0.2)
    assert loose.ious.tolist() == pytest.approx([4 / 16])


def brute_force(cells_a: list[Any], cells_b: list[Any], thr: float) -> tuple[int, float]:
    """Most pairs, then largest total IoU, over every one-to-one assignment (dense, test only)."""
    a, b = ag.to_geometries(cells_a), ag.to_geometries(cells_b)
    inter = shapely.area(shapely.intersection(a[:, None], b[None, :]))
    iou = inter / (shapely.area(a)[:, None] + shapely.area(b)[None, :] - inter)
    iou = np.where(iou >= thr, iou, 0.0)
    best = (0, 0.0)
    small, large = (a.size, b.size) if a.size <= b.size else (b.size, a.size)
    table = iou if a.size <= b.size else iou.T
    for cols in permutations(range(large), small):
        vals = table[np.arange(small), list(cols)]
        best = max(best, (int((vals > 0).sum()), float(vals.sum())))
    return best


@pytest.mark.parametrize("seed", range(10))
def test_matching_equals_brute_force_on_random_crowded_clusters(seed: int) -> None:
    # Six cells each in a 38 px square: every cell touches or overlaps several (seed 4 is a
    # case where greedy best-IoU-first loses a pair).
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 24, size=(7, 2))
    cells_a = [ellipse((x, y, x + 14, y + 12), 24) for x, y in centres[:6]]
    cells_b = [
        ellipse((x + dx, y, x + dx + 13, y + 12), 30)
        for (x, y), dx in zip(centres[1:], rng.uniform(-5, 5, 6), strict=True)
    ]
    match = ag.match_cells(cells_a, cells_b, iou_threshold=0.25)
    pairs, total = brute_force(cells_a, cells_b, 0.25)
    assert (len(match.pairs), float(match.ious.sum())) == (pairs, pytest.approx(total))


@pytest.mark.parametrize("stem", STEMS)
def test_matching_on_real_crowded_cells_equals_a_dense_global_assignment(stem: str) -> None:
    rng = np.random.default_rng(0)
    boxes = bccd_boxes(stem)  # real positions: touching, overlapping and duplicated cells
    cells_a = [ellipse(b) for b in boxes]
    jitter = rng.normal(0, 4, size=(len(boxes), 4))
    cells_b = [ellipse(tuple(np.add(b, j)), 33) for b, j in zip(boxes, jitter, strict=True)]
    match = ag.match_cells(cells_a, cells_b)
    # Oracle: one dense Hungarian over the whole image with the same objective.
    a, b = ag.to_geometries(cells_a), ag.to_geometries(cells_b)
    inter = shapely.area(shapely.intersection(a[:, None], b[None, :]))
    iou = inter / (shapely.area(a)[:, None] + shapely.area(b)[None, :] - inter)
    weight = np.where(iou >= 0.5, len(boxes) + 1 + iou, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    keep = weight[rows, cols] > 0
    assert len(match.pairs) == int(keep.sum())
    assert match.ious.sum() == pytest.approx(iou[rows[keep], cols[keep]].sum())
    assert len(match.pairs) > 0.8 * len(boxes)


def test_hungarian_is_solved_per_component_never_on_the_whole_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shapes: list[tuple[int, int]] = []
    real = ag_cells.linear_sum_assignment

    def spy(weight: np.ndarray, maximize: bool = False) -> Any:
        shapes.append(weight.shape)
        return real(weight, maximize=maximize)

    monkeypatch.setattr(ag_cells, "linear_sum_assignment", spy)
    # 40 crowded pairs of overlapping cells spread over a row: 40 components of 2 x 2.
    cells_a = [
        c
        for k in range(40)
        for c in (rect(100 * k, 0, 100 * k + 10, 10), rect(100 * k + 3, 0, 100 * k + 13, 10))
    ]
    cells_b = [
        c
        for k in range(40)
        for c in (rect(100 * k + 1, 0, 100 * k + 11, 10), rect(100 * k - 3, 0, 100 * k + 7, 10))
    ]
    match = ag.match_cells(cells_a, cells_b)
    assert len(match.pairs) == 80
    assert shapes and max(shapes) == (2, 2)


def test_polygon_inputs_in_any_form_give_the_same_match() -> None:
    ring = ellipse((0, 0, 20, 16))
    closed = np.vstack([ring, ring[:1]]).tolist()
    forms: list[list[Any]] = [
        [{"type": "Polygon", "coordinates": [closed]}],
        [{"type": "Polygon", "coordinates": [closed[:-1]]}],  # unclosed ring
        [ring],
        [shapely.Polygon(ring)],
    ]
    other = [ellipse((1, 0, 21, 16))]
    ious = [ag.match_cells(f, other).ious.tolist() for f in forms]
    assert all(x == pytest.approx(ious[0]) for x in ious) and ious[0][0] > 0.8


def test_a_self_intersecting_cell_is_repaired_not_a_crash() -> None:
    # A bow-tie encloses two triangles, half of the square it spans.
    bow_tie = [[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]
    strict = ag.match_cells(
        [{"type": "Polygon", "coordinates": [bow_tie]}], [rect(0, 0, 10, 10)], iou_threshold=0.6
    )
    assert strict.pairs.shape == (0, 2)
    loose = ag.match_cells([bow_tie], [rect(0, 0, 10, 10)], iou_threshold=0.4)
    assert loose.ious.tolist() == pytest.approx([0.5])


def test_cell_figures_from_a_match() -> None:
    cells_a = [rect(0, 0, 10, 10), rect(20, 0, 30, 10), rect(40, 0, 50, 10)]
    cells_b = [rect(1, 0, 11, 10), rect(20, 0, 30, 10), rect(80, 0, 90, 10), rect(99, 0, 109, 9)]
    match, result = ag.compare_cells(
        cells_a, ["neutro", "eo", "blast"], cells_b, ["neutro", "blast", "eo", None], CLASSES
    )
    ious = np.array([9 / 11, 1.0])
    assert (result.matched, result.a_only, result.b_only) == (2, 1, 2)
    assert result.mean_iou.value == pytest.approx(ious.mean())
    assert result.mean_dice.value == pytest.approx((2 * ious / (1 + ious)).mean())
    assert result.detection_f1.value == pytest.approx(2 * 2 / (3 + 4))
    assert result.classes.n == 2
    assert result.classes.percent_agreement.value == pytest.approx(0.5)
    assert no_nan(result.to_dict())


def test_mean_iou_ci_matches_a_plain_pair_bootstrap() -> None:
    rng = np.random.default_rng(5)
    cells_a = [ellipse((30 * i, 0, 30 * i + 20, 18)) for i in range(300)]
    cells_b = [
        ellipse((30 * i + d, 0, 30 * i + 20 + d, 18)) for i, d in enumerate(rng.uniform(-3, 3, 300))
    ]
    match, result = ag.compare_cells(cells_a, [None] * 300, cells_b, [None] * 300)
    slow = metrics.bootstrap_ci(match.ious, seed=11)
    assert slow is not None and result.mean_iou.low is not None and result.mean_iou.high
    assert result.mean_iou.low == pytest.approx(slow[0], abs=0.003)
    assert result.mean_iou.high == pytest.approx(slow[1], abs=0.003)
    assert result.mean_iou.low < result.mean_iou.value < result.mean_iou.high


@pytest.mark.parametrize(
    ("cells_a", "cells_b", "f1"),
    [([], [], 1.0), ([rect(0, 0, 5, 5)], [], 0.0), ([rect(0, 0, 5, 5)], [rect(9, 9, 15, 15)], 0.0)],
)
def test_empty_and_disjoint_cell_sets_give_defined_figures(
    cells_a: list[Any], cells_b: list[Any], f1: float
) -> None:
    _, result = ag.compare_cells(cells_a, ["eo"] * len(cells_a), cells_b, ["eo"] * len(cells_b))
    assert result.detection_f1.value == f1
    assert result.mean_iou.value is None and result.mean_dice.value is None
    assert result.classes.kappa.value is None
    assert no_nan(result.to_dict())


def test_cell_agreement_round_trips_through_its_dict() -> None:
    _, result = ag.compare_cells(
        [rect(0, 0, 10, 10), rect(20, 0, 30, 10)],
        ["eo", "eo"],
        [rect(1, 0, 11, 10), rect(20, 1, 30, 10)],
        ["eo", "neutro"],
        CLASSES,
    )
    again = ag.CellAgreement.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()


# ----------------------------------------------------------------- more than two raters


def test_fleiss_kappa_over_cells_uses_cells_every_pair_matched() -> None:
    # Cell 0: matched by all three. Cell 1: A-B and A-C match, but B and C do not match each
    # other, so it is not a shared item. Cell 2: all three again.
    cells = [
        [rect(0, 0, 10, 10), rect(100, 0, 110, 10), rect(200, 0, 210, 10)],
        [rect(1, 0, 11, 10), rect(97, 0, 107, 10), rect(200, 1, 210, 11)],
        [rect(0, 1, 10, 11), rect(103, 0, 113, 10), rect(201, 0, 211, 10)],
    ]
    labels = [["eo", "eo", "neutro"], ["eo", "neutro", "neutro"], ["eo", "blast", "eo"]]
    matches = ag.match_all(cells)
    assert len(matches[0, 1].pairs) == 3 and len(matches[1, 2].pairs) == 2
    assert ag.cell_cliques(matches, [3, 3, 3]).tolist() == [[0, 0, 0], [2, 2, 2]]
    result = ag.fleiss_cells(matches, labels, CLASSES)
    table, _ = aggregate_raters(np.array([["eo", "eo", "eo"], ["neutro", "neutro", "eo"]]))
    assert result.n_items == 2
    assert result.fleiss_kappa == pytest.approx(sm_fleiss_kappa(table))


def test_fleiss_kappa_over_tiles_every_annotator_labelled() -> None:
    tiles = [
        {(0, 0): "toi", (1, 0): "toi", (2, 0): "non_toi", (3, 0): "toi"},
        {(0, 0): "toi", (1, 0): "non_toi", (2, 0): "non_toi"},
        {(0, 0): "toi", (1, 0): "toi", (2, 0): "non_toi", (3, 0): None},
    ]
    result = ag.fleiss_tiles(tiles)
    rows = np.array([["toi"] * 3, ["toi", "non_toi", "toi"], ["non_toi"] * 3])
    assert result.n_items == 3
    assert result.fleiss_kappa == pytest.approx(sm_fleiss_kappa(aggregate_raters(rows)[0]))
    assert ag.fleiss_tiles([{}, {}, {}]).fleiss_kappa is None


# ----------------------------------------------------------------------- disagreements


def test_disagreements_list_one_sided_cells_and_class_differences_in_reading_order() -> None:
    cells_a = [rect(0, 3000, 10, 3010), rect(0, 0, 10, 10), rect(500, 0, 510, 10)]
    cells_b = [rect(0, 3000, 10, 3010), rect(1, 0, 11, 10), rect(900, 0, 910, 10)]
    match = ag.match_cells(cells_a, cells_b)
    items = ag.cell_disagreements(match, ["eo", "eo", "blast"], ["neutro", "eo", "mono"])
    assert [(d.kind, d.a, d.b) for d in items] == [
        ("cell_only_a", 2, None),
        ("cell_only_b", None, 2),
        ("cell_class", 0, 0),
    ]
    unlabelled = ag.cell_disagreements(match, ["eo", "", "blast"], ["eo", None, None])
    assert [(d.kind, d.a) for d in unlabelled if d.kind == "cell_class"] == []
    one_sided = ag.cell_disagreements(match, ["eo", "", "blast"], ["eo", "neutro", None])
    assert [(d.kind, d.a, d.label_a) for d in one_sided if d.kind == "cell_class"] == [
        ("cell_class", 1, "")
    ]
    assert items[0].bbox == (500.0, 0.0, 510.0, 10.0)
    assert items[2].label_a == "eo" and items[2].label_b == "neutro"
    assert no_nan([d.to_dict() for d in items])


def test_toi_and_roi_disagreements() -> None:
    items = ag.toi_disagreements(
        {(0, 0): "toi", (1, 0): "toi", (0, 1): "toi"},
        {(0, 0): "toi", (1, 0): "non_toi", (2, 0): "toi"},
        tile_size=1600,
    )
    assert [(d.kind, d.a or d.b) for d in items] == [
        ("toi_label", (1, 0)),
        ("toi_only_b", (2, 0)),
        ("toi_only_a", (0, 1)),
    ]
    assert items[0].bbox == (1600.0, 0.0, 3200.0, 1600.0)
    assert ag.roi_disagreement([rect(0, 0, 9, 9)], [rect(0, 0, 9, 9)]) is None
    roi = ag.roi_disagreement([rect(0, 0, 9, 9)], [rect(5, 5, 20, 20)])
    assert roi is not None and roi.bbox == (0.0, 0.0, 20.0, 20.0)


# ----------------------------------------------------------------------- project level


def test_project_roi_pools_areas_and_averages_slides() -> None:
    slides = [
        ag.roi_agreement([rect(0, 0, 10, 10)], [rect(0, 0, 10, 5)]),
        ag.roi_agreement([rect(0, 0, 100, 100)], [rect(0, 0, 100, 100)]),
        ag.roi_agreement([rect(0, 0, 10, 10)], [rect(5, 0, 15, 10)]),
    ]
    project = ag.aggregate_roi(slides)
    assert project.iou.mean.value == pytest.approx((0.5 + 1.0 + 1 / 3) / 3)
    assert project.iou.pooled.value == pytest.approx((50 + 10_000 + 50) / (100 + 10_000 + 150))
    assert project.iou.mean.low is not None and project.iou.mean.high is not None
    assert project.iou.mean.low <= project.iou.mean.value <= project.iou.mean.high
    assert no_nan(project.to_dict())


def test_project_cells_pool_pairs_and_class_confusions(rng: np.random.Generator) -> None:
    slides, all_a, all_b = [], [], []
    for k in range(4):
        n = 30 + 10 * k
        cells_a = [rect(20 * i, 0, 20 * i + 10, 10) for i in range(n)]
        cells_b = [rect(20 * i + rng.uniform(0, 3), 0, 20 * i + 10, 10) for i in range(n - k)]
        y_a = rng.choice(CLASSES, n).tolist()
        y_b = [a if rng.random() < 0.8 else str(rng.choice(CLASSES)) for a in y_a[: n - k]]
        _, result = ag.compare_cells(cells_a, y_a, cells_b, y_b, CLASSES)
        slides.append(ag.CellAgreement.from_dict(json.loads(json.dumps(result.to_dict()))))
        all_a += y_a[: n - k]
        all_b += y_b
    project = ag.aggregate_cells(slides)
    assert project.matched == sum(s.matched for s in slides)
    expected_f1 = 2 * project.matched / (project.n_a + project.n_b)
    assert project.detection_f1.pooled.value == pytest.approx(expected_f1)
    expected_kappa = skm.cohen_kappa_score(all_a, all_b, labels=CLASSES)
    assert project.classes.kappa.pooled.value == pytest.approx(expected_kappa)
    assert project.classes.confusion.sum() == len(all_a)
    assert project.mean_iou.mean.value == pytest.approx(np.mean([s.mean_iou.value for s in slides]))
    assert no_nan(project.to_dict())


def test_project_of_one_slide_has_no_ci_and_of_none_has_no_value() -> None:
    one = ag.aggregate_roi([ag.roi_agreement([rect(0, 0, 4, 4)], [rect(0, 0, 4, 2)])])
    assert one.iou.mean.value == pytest.approx(0.5) and one.iou.mean.low is None
    empty = ag.aggregate_cells([])
    assert empty.mean_iou.mean.value is None and empty.classes.kappa.pooled.value is None
    assert no_nan(empty.to_dict())


def test_slides_without_a_defined_figure_are_left_out_of_the_mean() -> None:
    toi = [
        ag.toi_agreement({(0, 0): "toi", (1, 0): "non_toi"}, {(0, 0): "toi", (1, 0): "non_toi"}),
        ag.toi_agreement({(0, 0): "toi"}, {(5, 5): "toi"}),
    ]
    project = ag.aggregate_toi(toi)
    assert project.labels.kappa.mean.value == 1.0 and project.labels.kappa.mean.n == 1
    assert (project.only_a, project.only_b) == (1, 1)
