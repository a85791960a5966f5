"""The manual count on glass: saved per slide and user, compared with the automated count."""

from __future__ import annotations

import pytest

from ml.classes import DEFAULT_CLASSES
from ml.metrics import bland_altman, lins_ccc, pearson_r
from tests.reports.conftest import report_url

pytestmark = pytest.mark.django_db

COUNTED = [c for c in DEFAULT_CLASSES if c.counted]


def manual_sequence(auto_rows: list[dict], total: int = 300) -> list[str]:
    """``total`` cells shared out like the automated count, off by a few cells per class."""
    counted = sum(r["count"] for r in auto_rows)
    out: list[str] = []
    for i, row in enumerate(auto_rows):
        out += [row["key"]] * max(0, round(total * row["count"] / counted) + (i % 3) - 1)
    return out[:total]


def percents(counts: dict[str, int]) -> list[float]:
    total = sum(counts.get(c.key, 0) for c in COUNTED)
    return [100 * counts.get(c.key, 0) / total for c in COUNTED]


def test_a_counter_is_saved_per_slide_and_user(slide, reviewer, member, as_user) -> None:
    url = f"/api/slides/{slide.pk}/manual-count/"
    sequence = ["myeloblast", "lymphocyte", "myeloblast"]
    assert as_user(reviewer).put(url, {"sequence": sequence}, format="json").status_code == 200
    assert as_user(reviewer).get(url).json() == {
        "slide": slide.pk,
        "sequence": sequence,
        "total": 3,
    }
    assert as_user(member).get(url).json()["sequence"] == []


def test_a_counter_with_an_unknown_class_is_refused_and_the_old_one_kept(
    slide, reviewer, as_user
) -> None:
    url = f"/api/slides/{slide.pk}/manual-count/"
    client = as_user(reviewer)
    client.put(url, {"sequence": ["myeloblast"]}, format="json")
    response = client.put(url, {"sequence": ["myeloblast", "dragon"]}, format="json")
    assert response.status_code == 400 and "dragon" in response.json()["detail"]
    assert client.get(url).json()["sequence"] == ["myeloblast"]


def test_outsiders_get_404_on_the_counter(slide, outsider, as_user) -> None:
    assert as_user(outsider).get(f"/api/slides/{slide.pk}/manual-count/").status_code == 404


def test_the_comparison_uses_ml_metrics_on_the_percentage_vectors(
    finished_run, reviewer, as_user, client
) -> None:
    api = as_user(reviewer)
    rows = api.get(report_url(finished_run)).json()["document"]["dcc"]["rows"]
    sequence = manual_sequence(rows)
    api.put(
        f"/api/slides/{finished_run.slide_id}/manual-count/", {"sequence": sequence}, format="json"
    )
    figures = api.get(report_url(finished_run, "comparison/")).json()
    auto = percents({r["key"]: r["count"] for r in rows})
    manual = percents({k: sequence.count(k) for k in set(sequence)})
    assert figures["auto_percent"] == pytest.approx(auto)
    assert figures["manual_percent"] == pytest.approx(manual)
    assert figures["pearson_r"] == pytest.approx(pearson_r(auto, manual))
    assert figures["lins_ccc"] == pytest.approx(lins_ccc(auto, manual))
    assert figures["bland_altman"] == pytest.approx(bland_altman(auto, manual).to_dict())
    assert figures["published"]["case_r"] == 0.9438
    client.force_login(reviewer)
    page = client.get(f"/analyses/{finished_run.pk}/report/").content.decode()
    assert f"{figures['pearson_r']:.4f}" in page and f"{figures['lins_ccc']:.4f}" in page
    assert page.count('class="pt"') == 32 and 'class="fit"' in page and "ba-bias" in page
