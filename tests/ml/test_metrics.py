from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy import stats
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from ml import metrics as m


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------- masks


def test_iou_and_dice_of_two_overlapping_squares() -> None:
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0:4, 0:4] = True  # 16 px
    b[2:6, 2:6] = True  # 16 px, overlap 4
    assert m.iou(a, b) == pytest.approx(4 / 28)
    assert m.dice(a, b) == pytest.approx(8 / 32)


def test_iou_and_dice_agree_with_sklearn_jaccard_and_f1(rng: np.random.Generator) -> None:
    a = rng.random((64, 64)) > 0.5
    b = rng.random((64, 64)) > 0.4
    assert m.iou(a, b) == pytest.approx(skm.jaccard_score(a.ravel(), b.ravel()))
    assert m.dice(a, b) == pytest.approx(skm.f1_score(a.ravel(), b.ravel()))


def test_two_empty_masks_agree_perfectly() -> None:
    empty = np.zeros((5, 5), bool)
    assert m.iou(empty, empty) == 1.0
    assert m.dice(empty, empty) == 1.0


def test_one_empty_mask_against_a_full_one_scores_zero() -> None:
    assert m.iou(np.zeros((3, 3)), np.ones((3, 3))) == 0.0
    assert m.dice(np.zeros((3, 3)), np.ones((3, 3))) == 0.0


def test_pixel_accuracy_matches_sklearn_and_rejects_empty(rng: np.random.Generator) -> None:
    pred, target = rng.integers(0, 3, (32, 32)), rng.integers(0, 3, (32, 32))
    assert m.pixel_accuracy(pred, target) == pytest.approx(
        skm.accuracy_score(target.ravel(), pred.ravel())
    )
    with pytest.raises(ValueError):
        m.pixel_accuracy(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError):
        m.pixel_accuracy(np.zeros((2, 3)), np.zeros((3, 2)))


# ------------------------------------------------------------------- agreement


def test_confusion_matrix_matches_sklearn_including_unlisted_labels(
    rng: np.random.Generator,
) -> None:
    y_true = rng.choice(["a", "b", "c", "z"], 200)
    y_pred = rng.choice(["a", "b", "c", "z"], 200)
    labels = ["c", "a", "b"]
    np.testing.assert_array_equal(
        m.confusion_matrix(y_true, y_pred, labels),
        skm.confusion_matrix(y_true, y_pred, labels=labels),
    )


def test_cohen_kappa_matches_sklearn(rng: np.random.Generator) -> None:
    y_a = rng.integers(0, 4, 300)
    y_b = np.where(rng.random(300) < 0.7, y_a, rng.integers(0, 4, 300))
    assert m.cohen_kappa(y_a, y_b) == pytest.approx(skm.cohen_kappa_score(y_a, y_b))
    assert m.cohen_kappa(y_a, y_b, labels=[0, 1, 2, 3]) == pytest.approx(
        skm.cohen_kappa_score(y_a, y_b, labels=[0, 1, 2, 3])
    )


def test_cohen_kappa_degenerate_cases() -> None:
    assert m.cohen_kappa([], []) is None
    # Both raters used one class for every item: p_e == 1, defined as perfect agreement.
    assert m.cohen_kappa(["toi"] * 5, ["toi"] * 5) == 1.0
    assert m.cohen_kappa([0, 1, 2], [0, 1, 2]) == 1.0
    # Systematic disagreement on two balanced classes is -1.
    assert m.cohen_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


def test_percent_agreement_by_hand() -> None:
    assert m.percent_agreement([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert m.percent_agreement([], []) is None


def test_fleiss_kappa_matches_statsmodels(rng: np.random.Generator) -> None:
    truth = rng.integers(0, 3, 80)
    ratings = np.stack(
        [np.where(rng.random(80) < 0.6, truth, rng.integers(0, 3, 80)) for _ in range(4)], axis=1
    )
    table, _ = aggregate_raters(ratings)
    assert m.fleiss_kappa(ratings) == pytest.approx(sm_fleiss_kappa(table, method="fleiss"))


def test_fleiss_kappa_degenerate_cases() -> None:
    assert m.fleiss_kappa(np.zeros((0, 3))) is None
    assert m.fleiss_kappa([["a", "a"], ["a", "a"]]) == 1.0
    assert m.fleiss_kappa([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        m.fleiss_kappa([["a"], ["b"]])


# -------------------------------------------------------------- classification


def test_classification_report_matches_sklearn(rng: np.random.Generator) -> None:
    labels = ["blast", "lympho", "mono", "never_seen"]
    y_true = rng.choice(labels[:3], 150)
    y_pred = np.where(rng.random(150) < 0.6, y_true, rng.choice(labels[:3], 150))
    report = m.classification_report(y_true, y_pred, labels)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        scores = report.per_class[label]
        assert (scores.precision, scores.recall, scores.f1) == pytest.approx((p[i], r[i], f[i]))
        assert scores.support == s[i]
    macro = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    assert (report.macro_precision, report.macro_recall, report.macro_f1) == pytest.approx(
        macro[:3]
    )
    assert report.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert report.to_dict()["per_class"]["never_seen"]["support"] == 0


def test_classification_report_of_no_items_has_no_accuracy() -> None:
    report = m.classification_report([], [], ["a", "b"])
    assert report.accuracy is None
    assert report.macro_f1 == 0.0


def test_auroc_matches_sklearn_with_ties(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 200)
    scores = np.round(y * 0.3 + rng.random(200), 1)  # rounding makes ties
    assert m.auroc(y, scores) == pytest.approx(skm.roc_auc_score(y, scores))


def test_auroc_is_none_with_one_class() -> None:
    assert m.auroc([1, 1, 1], [0.1, 0.5, 0.9]) is None


def test_macro_auroc_matches_sklearn_one_vs_rest(rng: np.random.Generator) -> None:
    labels = [0, 1, 2, 3]
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=labels)
    assert m.macro_auroc(y, probs, labels) == pytest.approx(expected)


def test_macro_auroc_skips_absent_classes() -> None:
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0], [0.8, 0.2, 0], [0.3, 0.7, 0], [0.1, 0.9, 0]])
    assert m.macro_auroc(y, probs, [0, 1, 2]) == 1.0
    assert m.macro_auroc(np.zeros(3), np.ones((3, 1)), [0]) is None


# ------------------------------------------------------------------- detection


def test_box_iou_matrix_by_hand_and_degenerate_boxes() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30]])
    expected = np.array([[25 / 175, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(m.box_iou_matrix(a, b), expected)
    assert m.box_iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_boxes_from_masks_are_pixel_edge_xyxy() -> None:
    masks = np.zeros((2, 8, 10), bool)
    masks[0, 2:5, 3:9] = True  # rows 2..4, cols 3..8
    np.testing.assert_array_equal(m.boxes_from_masks(masks), [[3, 2, 9, 5], [0, 0, 0, 0]])


def test_boxes_from_label_image_lists_present_ids() -> None:
    labels = np.zeros((6, 6), np.int32)
    labels[1:3, 1:4] = 1
    labels[4:6, 0:2] = 3
    ids, boxes = m.boxes_from_label_image(labels)
    np.testing.assert_array_equal(ids, [1, 3])
    np.testing.assert_array_equal(boxes, [[1, 1, 4, 3], [0, 4, 2, 6]])


def test_recall_counts_a_duplicate_prediction_once() -> None:
    gt = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [100, 100, 110, 110]], float)
    assert m.recall_at_iou(gt, pred, 0.5) == 0.5
    assert m.detection_counts(gt, pred, 0.5) == (1, 2, 1)


def test_greedy_matching_prefers_the_higher_iou_pair() -> None:
    gt = np.array([[0, 0, 10, 10], [4, 0, 14, 10]], float)
    pred = np.array([[3, 0, 13, 10]], float)  # IoU 7/13 with gt0, 9/11 with gt1
    assert m.match_boxes(gt, pred, 0.5) == [(1, 0)]


def test_recall50_and_recall75_differ_on_a_loose_box() -> None:
    gt = np.array([[0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 15]], float)  # IoU 100/150
    assert m.recall_at_iou(gt, pred, 0.5) == 1.0
    assert m.recall_at_iou(gt, pred, 0.75) == 0.0
    assert m.recall_at_iou(np.zeros((0, 4)), pred, 0.5) is None


# ----------------------------------------------------------------- correlation


def test_pearson_r_matches_scipy(rng: np.random.Generator) -> None:
    a = rng.normal(size=50)
    b = a + rng.normal(size=50)
    assert m.pearson_r(a, b) == pytest.approx(stats.pearsonr(a, b)[0])


def test_pearson_r_is_none_for_constant_or_tiny_input() -> None:
    assert m.pearson_r([1, 1, 1], [1, 2, 3]) is None
    assert m.pearson_r([1], [2]) is None


def test_lins_ccc_by_formula_and_degenerate_cases(rng: np.random.Generator) -> None:
    a = rng.normal(size=40)
    b = 0.8 * a + 0.3 + rng.normal(scale=0.2, size=40)
    cov = np.cov(a, b, ddof=0)[0, 1]
    expected = 2 * cov / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
    assert m.lins_ccc(a, b) == pytest.approx(expected)
    assert m.lins_ccc(a, a) == pytest.approx(1.0)
    assert m.lins_ccc(a, a + 1.0) < 1.0  # a bias lowers CCC but not Pearson r
    assert m.lins_ccc([2, 2], [2, 2]) == 1.0
    assert m.lins_ccc([], []) is None


def test_bland_altman_limits(rng: np.random.Generator) -> None:
    a = rng.normal(size=30)
    b = a - 0.5 + rng.normal(scale=0.1, size=30)
    ba = m.bland_altman(a, b)
    assert ba is not None
    d = a - b
    assert ba.mean_diff == pytest.approx(d.mean())
    assert ba.sd == pytest.approx(stats.tstd(d))
    assert (ba.lower, ba.upper) == pytest.approx(
        (d.mean() - 1.96 * d.std(ddof=1), d.mean() + 1.96 * d.std(ddof=1))
    )
    assert ba.to_dict()["n"] == 30
    assert m.bland_altman([1.0], [2.0]) is None


# ------------------------------------------------------- confidence intervals


@pytest.mark.parametrize(("k", "n"), [(3, 10), (0, 10), (10, 10), (1, 300), (150, 300)])
def test_wilson_interval_matches_statsmodels(k: int, n: int) -> None:
    z = stats.norm.ppf(0.975)
    assert m.wilson_interval(k, n, z) == pytest.approx(
        proportion_confint(k, n, alpha=0.05, method="wilson")
    )


def test_wilson_interval_of_no_trials_is_uninformative() -> None:
    assert m.wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        m.wilson_interval(4, 3)


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap(rng: np.random.Generator) -> None:
    x = rng.normal(loc=5.0, size=200)
    ours = m.bootstrap_ci(x, np.mean, n_resamples=4000, seed=1)
    theirs = stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile", random_state=1)
    assert ours is not None
    ci = theirs.confidence_interval
    assert ours == pytest.approx((ci.low, ci.high), abs=0.03)
    assert ours[0] < 5.0 < ours[1]


def test_bootstrap_ci_resamples_paired_arrays_together(rng: np.random.Generator) -> None:
    a = rng.normal(size=60)
    b = a + rng.normal(scale=0.1, size=60)
    low, high = m.bootstrap_ci((a, b), m.lins_ccc, n_resamples=500, seed=3)
    assert 0.9 < low <= m.lins_ccc(a, b) <= high <= 1.0
    assert m.bootstrap_ci((a, b), m.lins_ccc, n_resamples=500, seed=3) == (low, high)


def test_bootstrap_ci_drops_undefined_resamples() -> None:
    assert m.bootstrap_ci(np.array([]), np.mean) is None
    # Pearson r on a constant vector is undefined in every resample.
    assert m.bootstrap_ci((np.ones(5), np.arange(5.0)), m.pearson_r, n_resamples=50) is None


def test_safe_ratio_gives_the_stated_value_where_the_denominator_is_not_positive() -> None:
    got = m.safe_ratio(np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.0, -1.0]))
    assert got.tolist() == [0.5, 0.0, 0.0]
    assert m.safe_ratio(np.array([1.0]), np.array([0.0]), np.nan)[0] != 0.0


def test_agreement_and_kappa_of_a_confusion_equal_their_item_forms() -> None:
    y_a = [0, 1, 2, 2, 1, 0, 0]
    y_b = [0, 1, 1, 2, 1, 2, 0]
    confusion = m.confusion_matrix(y_a, y_b, [0, 1, 2])
    assert float(m.agreement_from_confusions(confusion)) == m.percent_agreement(y_a, y_b)
    assert float(m.kappa_from_confusions(confusion)) == pytest.approx(m.cohen_kappa(y_a, y_b))
    assert np.isnan(m.agreement_from_confusions(np.zeros((3, 3))))


def test_percentile_ci_ignores_non_finite_replicates() -> None:
    replicates = np.concatenate([np.linspace(0.0, 1.0, 101), [np.nan, np.inf]])
    low, high = m.percentile_ci(replicates)
    assert low == pytest.approx(0.025) and high == pytest.approx(0.975)
    assert m.percentile_ci(np.array([np.nan])) is None
