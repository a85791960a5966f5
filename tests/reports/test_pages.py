"""The report page, its PDF (WeasyPrint, checked with poppler) and its FHIR R4 form."""

from __future__ import annotations

import subprocess

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from tests.reports.conftest import REVIEWER_PASSWORD, flagged_cells, report_url

pytestmark = pytest.mark.django_db


def sign_all(client, run, user) -> None:
    user.first_name, user.last_name = "Rosa", "Pathologist"
    user.save()
    for cell in flagged_cells(client, run):
        client.post(report_url(run, f"cells/{cell['id']}/confirm/"))
    response = client.post(report_url(run, "sign/"), {"password": REVIEWER_PASSWORD})
    assert response.status_code == 200, response.content


def test_the_page_shows_alerts_the_table_and_the_histogram(finished_run, reviewer, client) -> None:
    client.force_login(reviewer)
    page = client.get(f"/analyses/{finished_run.pk}/report/").content.decode()
    assert 'data-kind="review_required"' in page and "cells need review" in page
    assert "Automatic rescreening" in page and "ran baselines" in page
    assert page.count('<tr data-key="') == 16
    assert '<svg class="bars"' in page and 'class="ci"' in page
    assert finished_run.slide.sha256 in page and "Not signed yet." in page
    assert 'id="review"' in page and 'class="sign-form"' in page


def test_outsiders_get_404_on_the_page_pdf_and_fhir(finished_run, outsider, client) -> None:
    client.force_login(outsider)
    for tail in ("report/", "report.pdf", "report.fhir.json"):
        assert client.get(f"/analyses/{finished_run.pk}/{tail}").status_code == 404


@pytest.mark.slow
def test_the_signed_pdf_renders_and_names_the_signer(
    finished_run, reviewer, as_user, client, tmp_path
) -> None:
    sign_all(as_user(reviewer), finished_run, reviewer)
    client.force_login(reviewer)
    page = client.get(f"/analyses/{finished_run.pk}/report/").content.decode()
    assert "Rosa Pathologist" in page and "signature valid" in page
    assert f'<tr data-run="{finished_run.pk}" class="this-run">' in page
    assert "signed (version 1)" in page
    response = client.get(f"/analyses/{finished_run.pk}/report.pdf")
    assert response["Content-Type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Rosa Pathologist" in text and "reviewed and approved as final report" in text
    assert "Myeloblast" in text and "signature valid" in text


def test_the_fhir_report_has_one_observation_per_counted_class(
    finished_run, reviewer, as_user, client
) -> None:
    sign_all(as_user(reviewer), finished_run, reviewer)
    client.force_login(reviewer)
    data = client.get(f"/analyses/{finished_run.pk}/report.fhir.json").json()
    report = DiagnosticReport.model_validate(data)
    assert report.status == "final"
    observations = [o for o in report.contained if isinstance(o, Observation)]
    assert len(observations) == len(report.result) == 16
    doc = as_user(reviewer).get(report_url(finished_run)).json()["document"]
    for obs, row in zip(observations, doc["dcc"]["rows"], strict=True):
        assert obs.code.coding[0].code == row["key"]
        assert obs.valueQuantity.unit == "%"
        assert float(obs.valueQuantity.value) == pytest.approx(100 * row["proportion"], abs=1e-3)
        ci = obs.component[0].valueRange
        assert float(ci.low.value) == pytest.approx(100 * row["ci_low"], abs=1e-3)
        assert float(ci.high.value) == pytest.approx(100 * row["ci_high"], abs=1e-3)
    assert report.resultsInterpreter[0].display == "Rosa Pathologist"
