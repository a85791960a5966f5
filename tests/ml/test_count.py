from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from ml.classes import COUNTED_KEYS, DEFAULT_CLASSES, ERYTHROBLAST_UNSTAGED, CellClass
from ml.count import (
    POOLED_ERYTHROBLASTS,
    UNCLASSIFIED,
    compare_with_manual,
    coverage_alert,
    differential_count,
    misclassification_rates,
    rescreening_alert,
    review_flags,
)
from ml.metrics import confusion_matrix


def _labels(**counts: int) -> list[str]:
    return [key for key, n in counts.items() for _ in range(n)]


def test_three_blasts_of_ten_counted_cells_are_thirty_percent() -> None:
    labels = _labels(myeloblast=3, lymphocyte=5, late_erythroblast=2, others=4, smudge_cell=1)
    dcc = differential_count(labels)
    assert dcc.total_counted == 10
    row = next(r for r in dcc.rows if r.key == "myeloblast")
    assert row.count == 3
    assert row.proportion == pytest.approx(0.3)
    z = stats.norm.ppf(0.975)
    dcc_exact_z = differential_count(labels, z=z)
    row_exact = next(r for r in dcc_exact_z.rows if r.key == "myeloblast")
    assert (row_exact.ci_low, row_exact.ci_high) == pytest.approx(
        proportion_confint(3, 10, alpha=0.05, method="wilson")
    )
    assert dcc.blast_percentage == pytest.approx(30.0)
    assert dcc.non_counted["others"] == 4
    assert dcc.non_counted["smudge_cell"] == 1


def test_rows_cover_all_16_counted_classes_in_order_and_sum_to_one() -> None:
    dcc = differential_count(_labels(monocyte=2, basophil=1, promyelocyte=7))
    assert tuple(r.key for r in dcc.rows) == COUNTED_KEYS
    assert sum(r.proportion for r in dcc.rows) == pytest.approx(1.0)
    assert dcc.counts["basophil"] == 1


def test_me_ratio_counts_granulocytes_against_erythroblasts() -> None:
    labels = _labels(
        segmented_neutrophil=4,
        band_neutrophil=2,
        monocyte=9,
        early_erythroblast=1,
        late_erythroblast=2,
    )
    assert differential_count(labels).me_ratio == pytest.approx(6 / 3)


def test_me_ratio_is_none_without_erythroid_cells() -> None:
    assert differential_count(_labels(myeloblast=1)).me_ratio is None


def test_only_unclassified_cells_mean_no_classifier_and_no_invented_classes() -> None:
    dcc = differential_count([UNCLASSIFIED] * 12)
    assert dcc.classifier_installed is False
    assert dcc.unclassified == 12
    assert dcc.total_counted == 0
    assert all(r.count == 0 and r.proportion == 0.0 for r in dcc.rows)
    assert dcc.blast_percentage is None
    assert "classifier" in dcc.message and "12" in dcc.message


def test_a_classified_count_has_no_message() -> None:
    dcc = differential_count(_labels(lymphocyte=1))
    assert dcc.classifier_installed is True
    assert dcc.message == ""


def test_an_unknown_label_is_refused() -> None:
    with pytest.raises(ValueError, match="neutrophil"):
        differential_count(["neutrophil"])


def test_dcc_follows_a_replacement_class_set() -> None:
    classes = (
        CellClass("good", "Good", True, "#000001", "a"),
        CellClass("bad", "Bad", False, "#000002", "b"),
    )
    dcc = differential_count(["good", "bad", "good"], classes)
    assert [(r.key, r.count) for r in dcc.rows] == [("good", 2)]
    assert dcc.non_counted == {"bad": 1}
    assert dcc.me_ratio is None


def test_dcc_to_dict_is_json_serialisable() -> None:
    data = json.loads(json.dumps(differential_count(_labels(myeloblast=2, others=1)).to_dict()))
    assert data["rows"][0]["key"] == DEFAULT_CLASSES[0].key
    assert data["total_counted"] == 2


def test_review_flags_mark_cells_whose_top_probability_is_below_060() -> None:
    probs = np.array([[0.59, 0.41], [0.60, 0.40], [0.2, 0.8], [0.34, 0.33]])
    np.testing.assert_array_equal(review_flags(probs), [True, False, False, True])
    assert review_flags(np.zeros((0, 22))).shape == (0,)


def test_misclassification_rate_is_one_minus_recall() -> None:
    labels = ["a", "b", "c"]
    y_true = ["a"] * 10 + ["b"] * 4
    y_pred = ["a"] * 9 + ["b"] + ["b", "b", "b", "a"]
    rates = misclassification_rates(confusion_matrix(y_true, y_pred, labels), labels)
    assert rates["a"] == pytest.approx(0.1)
    assert rates["b"] == pytest.approx(0.25)
    assert rates["c"] is None  # no validation sample


def test_two_error_prone_classes_present_raise_the_rescreening_alert() -> None:
    rates = {"monocyte": 0.12, "promonocyte": 0.15, "lymphocyte": 0.02}
    alert = rescreening_alert(["monocyte", "promonocyte", "lymphocyte"], rates)
    assert alert is not None
    assert alert.kind == "automatic_rescreening"
    assert alert.classes == {"monocyte": 0.12, "promonocyte": 0.15}
    assert json.loads(json.dumps(alert.to_dict()))["kind"] == "automatic_rescreening"


def test_one_error_prone_class_is_not_enough() -> None:
    rates = {"monocyte": 0.12, "lymphocyte": 0.02}
    assert rescreening_alert(["monocyte", "lymphocyte"], rates) is None


def test_an_absent_error_prone_class_does_not_count() -> None:
    rates = {"monocyte": 0.12, "promonocyte": 0.5}
    assert rescreening_alert(["monocyte"], rates) is None


def test_exactly_ten_percent_counts_and_unknown_rates_do_not() -> None:
    assert rescreening_alert(["a", "b"], {"a": 0.10, "b": 0.10}) is not None
    assert rescreening_alert(["a", "b"], {"a": 0.10, "b": None}) is None


def test_compare_with_manual_uses_percentage_vectors() -> None:
    auto = {"myeloblast": 30, "lymphocyte": 50, "monocyte": 20, "others": 999}
    manual = {"myeloblast": 90, "lymphocyte": 150, "monocyte": 60}
    result = compare_with_manual(auto, manual)
    assert result.keys == COUNTED_KEYS
    assert sum(result.auto_percent) == pytest.approx(100.0)
    assert result.pearson_r == pytest.approx(1.0)
    assert result.lins_ccc == pytest.approx(1.0)
    assert result.bland_altman is not None
    assert result.bland_altman.mean_diff == pytest.approx(0.0)
    assert json.loads(json.dumps(result.to_dict()))["keys"][0] == COUNTED_KEYS[0]


def test_compare_with_manual_matches_scipy_on_a_disagreement() -> None:
    auto = {"myeloblast": 10, "lymphocyte": 40, "monocyte": 25, "plasma_cell": 25}
    manual = {"myeloblast": 20, "lymphocyte": 35, "monocyte": 30, "basophil": 15}
    result = compare_with_manual(auto, manual)
    expected = stats.pearsonr(result.auto_percent, result.manual_percent)[0]
    assert result.pearson_r == pytest.approx(expected)
    assert result.lins_ccc is not None and result.lins_ccc < result.pearson_r


def test_compare_with_an_empty_count_gives_no_correlation() -> None:
    result = compare_with_manual({}, {"myeloblast": 3})
    assert result.pearson_r is None
    assert result.lins_ccc is None


def test_unstaged_erythroblasts_are_counted_and_erythroid_but_fill_no_stage_row() -> None:
    labels = _labels(
        segmented_neutrophil=6, myeloblast=1, lymphocyte=1, **{ERYTHROBLAST_UNSTAGED: 2}
    )
    dcc = differential_count(labels)
    assert dcc.total_counted == 10 and dcc.erythroblasts_unstaged == 2
    assert dcc.me_ratio == pytest.approx(7 / 2)
    assert dcc.blast_percentage == pytest.approx(10.0)  # of all counted cells, erythroblasts too
    assert all(r.count == 0 for r in dcc.rows if r.key.endswith("erythroblast"))
    assert sum(r.proportion for r in dcc.rows) + 2 / 10 == pytest.approx(1.0)
    assert dcc.counts[ERYTHROBLAST_UNSTAGED] == 2 and list(dcc.counts)[-1] == ERYTHROBLAST_UNSTAGED


def test_a_count_without_unstaged_erythroblasts_keeps_its_16_keys() -> None:
    dcc = differential_count(_labels(late_erythroblast=2, lymphocyte=1))
    assert dcc.erythroblasts_unstaged == 0 and tuple(dcc.counts) == COUNTED_KEYS


def test_cells_called_others_never_enter_the_count() -> None:
    dcc = differential_count(_labels(others=40, lymphocyte=2, **{ERYTHROBLAST_UNSTAGED: 1}))
    assert dcc.total_counted == 3 and dcc.non_counted["others"] == 40
    assert "others" not in dcc.counts and dcc.blast_percentage == 0.0


def test_a_classifier_missing_counted_classes_gets_an_alert_naming_them() -> None:
    pbc = ["promyelocyte", "intermediate_neutrophilic_myelocyte", "late_neutrophilic_myelocyte",
           "band_neutrophil", "segmented_neutrophil", "eosinophil", "basophil",
           ERYTHROBLAST_UNSTAGED, "lymphocyte", "monocyte", "others"]  # fmt: skip
    alert = coverage_alert(pbc)
    assert alert is not None and alert.kind == "classifier_coverage"
    assert set(alert.classes) == {
        "myeloblast",
        "early_erythroblast",
        "intermediate_erythroblast",
        "late_erythroblast",
        "promonocyte",
        "immature_monocyte",
        "plasma_cell",
    }
    assert set(alert.classes.values()) == {1.0}  # such a class is never recognised
    assert "7 of the 16 counted classes" in alert.message and "myeloblast" in alert.message
    assert "cannot stage erythroblasts" in alert.message


def test_a_classifier_covering_every_counted_class_gets_no_coverage_alert() -> None:
    assert coverage_alert([c.key for c in DEFAULT_CLASSES]) is None
    assert coverage_alert(COUNTED_KEYS) is None


def test_unstaged_erythroblasts_are_compared_with_a_manual_count_as_one_pooled_component() -> None:
    auto = {"lymphocyte": 50, "segmented_neutrophil": 30, ERYTHROBLAST_UNSTAGED: 20}
    manual = {"lymphocyte": 50, "segmented_neutrophil": 30, "early_erythroblast": 5,
              "late_erythroblast": 15}  # fmt: skip
    result = compare_with_manual(auto, manual)
    assert len(result.keys) == 14 and POOLED_ERYTHROBLASTS in result.keys
    assert not any(k.endswith("erythroblast") for k in result.keys)
    i = result.keys.index(POOLED_ERYTHROBLASTS)
    assert result.keys[i - 1] == "basophil"  # where the staged erythroblasts were
    assert result.auto_percent[i] == result.manual_percent[i] == pytest.approx(20.0)
    assert result.pearson_r == pytest.approx(1.0)
