"""A classifier that cannot stage erythroblasts (the PBC starter) in the app: its run stores,
and the report lists those cells on a line of their own.

Before, the run's assembly refused the whole cell set ("unknown or retired cell class
'erythroblast_unstaged'"), so every run of the day-one classifier that met an erythroblast
failed.
"""

from __future__ import annotations

import copy

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from ml.classes import ERYTHROBLAST_UNSTAGED, ERYTHROBLAST_UNSTAGED_NAME
from ml.count import POOLED_ERYTHROBLASTS, POOLED_ERYTHROBLASTS_NAME
from tests.annotations.test_api import own_set, polygon
from tests.reports.conftest import report_url, store_run

pytestmark = pytest.mark.django_db

UNSTAGED = 3


@pytest.fixture
def unstaged_run(pipeline_output, project, slide, member):
    """The real run with its first three classified cells called unstaged erythroblasts, sure
    enough not to need review (so the gallery groups them under their label)."""
    output = copy.deepcopy(pipeline_output)
    classified = [item for item in output["items"] if item["label"]]
    for item in classified[:UNSTAGED]:
        item["label"] = ERYTHROBLAST_UNSTAGED
        item["probabilities"]["review"] = False
    return store_run(output, project=project, slide=slide, user=member)


def test_the_run_stores_them_and_the_document_counts_them_on_their_own_line(
    unstaged_run, reviewer, as_user
) -> None:
    labels = list(unstaged_run.cell_set.annotations.values_list("label", flat=True))
    assert labels.count(ERYTHROBLAST_UNSTAGED) == UNSTAGED
    dcc = as_user(reviewer).get(report_url(unstaged_run)).json()["document"]["dcc"]
    line = dcc["unstaged_row"]
    assert line["count"] == dcc["erythroblasts_unstaged"] == UNSTAGED
    assert line["name"] == ERYTHROBLAST_UNSTAGED_NAME
    assert sum(r["proportion"] for r in dcc["rows"]) + line["proportion"] == pytest.approx(1.0)
    assert 0 < line["ci_low"] < line["proportion"] < line["ci_high"] < 1


def test_the_page_pdf_table_and_fhir_show_the_line(unstaged_run, reviewer, client) -> None:
    client.force_login(reviewer)
    page = client.get(f"/analyses/{unstaged_run.pk}/report/").content.decode()
    assert page.count('<tr data-key="') == 17
    assert f'<tr data-key="{ERYTHROBLAST_UNSTAGED}"' in page and ERYTHROBLAST_UNSTAGED_NAME in page
    fhir = DiagnosticReport.model_validate(
        client.get(f"/analyses/{unstaged_run.pk}/report.fhir.json").json()
    )
    codes = [o.code.coding[0].code for o in fhir.contained if isinstance(o, Observation)]
    assert ERYTHROBLAST_UNSTAGED in codes and len(codes) == 17


def test_the_gallery_names_the_group(unstaged_run, reviewer, as_user) -> None:
    body = as_user(reviewer).get(report_url(unstaged_run, "cells/")).json()
    groups = {g["key"]: g for g in body["groups"]}
    assert groups[ERYTHROBLAST_UNSTAGED]["name"] == ERYTHROBLAST_UNSTAGED_NAME
    assert groups[ERYTHROBLAST_UNSTAGED]["count"] == UNSTAGED


def test_an_annotator_still_stages_erythroblasts(as_user, member, slide) -> None:
    api = as_user(member)
    response = api.post(
        "/api/annotations/",
        {
            "set": own_set(api, slide, "cell"),
            "geometry": polygon(300, 300),
            "label": ERYTHROBLAST_UNSTAGED,
        },
        format="json",
    )
    assert response.status_code == 400
    assert f"unknown or retired cell class {ERYTHROBLAST_UNSTAGED!r}" in response.json()["detail"]


def test_the_manual_comparison_pools_the_erythroblast_stages(
    unstaged_run, reviewer, as_user, client
) -> None:
    api = as_user(reviewer)
    sequence = ["late_erythroblast"] * 2 + ["early_erythroblast", "lymphocyte", "monocyte"]
    api.put(
        f"/api/slides/{unstaged_run.slide_id}/manual-count/", {"sequence": sequence}, format="json"
    )
    figures = api.get(report_url(unstaged_run, "comparison/")).json()
    pooled = figures["keys"].index(POOLED_ERYTHROBLASTS)
    assert "late_erythroblast" not in figures["keys"] and len(figures["keys"]) == 14
    dcc = api.get(report_url(unstaged_run)).json()["document"]["dcc"]
    staged = sum(r["count"] for r in dcc["rows"] if r["key"].endswith("_erythroblast"))
    # The automated side counts the unstaged cells in the pooled component, not nowhere.
    assert figures["auto_percent"][pooled] == pytest.approx(
        100 * (staged + UNSTAGED) / dcc["total_counted"]
    )
    assert figures["manual_percent"][pooled] == pytest.approx(60.0)
    client.force_login(reviewer)
    page = client.get(f"/analyses/{unstaged_run.pk}/report/").content.decode()
    assert POOLED_ERYTHROBLASTS_NAME in page
