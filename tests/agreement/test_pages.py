from __future__ import annotations

import csv
import io
import json
import re

import pytest

from apps.agreement.models import Adjudication, AgreementJob, SlideReport
from tests.agreement.conftest import assign, cell, compute, draw, submit

pytestmark = pytest.mark.django_db


def page(client, user, path: str):
    client.force_login(user)
    return client.get(path)


def test_slide_page_shows_figures_heat_map_and_why_other_stages_wait(
    client, reported_cells, member, partner, owner
):
    cell_study = reported_cells
    assign(cell_study, "toi", [member, partner], owner)
    html = page(client, member, f"/slides/{cell_study.pk}/agreement/").content.decode()
    assert "member (A) vs partner (B)" in html
    assert re.search(r"Detection F1</td><td class=\"num\">0\.750 \[", html)
    assert html.count('<svg class="heatmap"') == 1
    assert "Myeloblast" in html and "Promyelocyte" in html  # class names, not keys
    assert "blinded: 0 of 2 toi tasks are submitted" in html
    assert "Adjudicate disagreements" not in html  # annotators do not adjudicate


def test_reviewer_starts_an_adjudication_from_the_slide_page(client, cell_study, reviewer):
    html = page(client, reviewer, f"/slides/{cell_study.pk}/agreement/").content.decode()
    assert "Adjudicate disagreements" in html
    response = client.post(f"/slides/{cell_study.pk}/adjudicate/start/", {"stage": "cell"})
    assert response.status_code == 302
    assert response["Location"] == f"/slides/{cell_study.pk}/adjudicate/?stage=cell"
    assert Adjudication.objects.filter(slide=cell_study, stage="cell").exists()
    html = client.get(response["Location"]).content.decode()
    assert f'data-api-url="/api/agreement/slides/{cell_study.pk}/adjudication/?stage=cell"' in html
    assert "agreement/adjudicate.js" in html


def test_slide_page_offers_to_compute_what_is_missing_and_shows_the_job(
    client, cell_study, member, django_capture_on_commit_callbacks
):
    html = page(client, member, f"/slides/{cell_study.pk}/agreement/").content.decode()
    assert "Not computed yet" in html and "Compute the figures" in html
    assert not SlideReport.objects.exists()  # the page only read
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/slides/{cell_study.pk}/agreement/compute/", {"stage": "cell"})
    assert response["Location"] == f"/slides/{cell_study.pk}/agreement/#stage-cell"
    job = AgreementJob.objects.get()
    html = client.get(f"/slides/{cell_study.pk}/agreement/").content.decode()
    assert f'data-job-url="/api/agreement/jobs/{job.pk}/" data-job-status="queued"' in html
    assert "Compute the figures" not in html  # one job at a time
    for enqueue in queued:  # the commit hands the job to django-q2 (sync in tests)
        enqueue()
    html = client.get(f"/slides/{cell_study.pk}/agreement/").content.decode()
    assert "member (A) vs partner (B)" in html and "data-job-url" not in html


def test_slide_page_says_when_figures_are_out_of_date(client, reported_cells, owner, partner):
    from apps.annotations import services
    from apps.annotations.models import Annotation, Task

    cell_study = reported_cells
    task = Task.objects.get(slide=cell_study, stage="cell", annotator=partner)
    services.reopen_task(task=task, user=owner, note="one more cell")
    draw(cell_study, "cell", partner, [{"geometry": cell(1300, 300), "label": "monocyte"}])
    submit(cell_study, "cell", partner)
    html = page(client, owner, f"/slides/{cell_study.pk}/agreement/").content.decode()
    assert "they are out of date until recomputed" in html and "Recompute the figures" in html
    assert Annotation.objects.filter(set__annotator=partner, is_deleted=False).count() == 5
    compute(cell_study, "cell", owner)
    html = client.get(f"/slides/{cell_study.pk}/agreement/").content.decode()
    assert "out of date" not in html


def test_slide_downloads_hold_every_figure(client, reported_cells, owner):
    cell_study = reported_cells
    response = page(client, owner, f"/slides/{cell_study.pk}/agreement.csv")
    assert response["Content-Disposition"].endswith(f'agreement-slide-{cell_study.pk}.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    figures = {r["figure"]: r for r in rows}
    assert figures["matched"]["value"] == "3"
    assert float(figures["mean_iou"]["ci_low"]) < float(figures["mean_iou"]["value"])
    assert figures["classes.confusion[myeloblast|promyelocyte]"]["value"] == "1"
    assert {r["annotator_a"] for r in rows} == {"member"}
    body = json.loads(client.get(f"/slides/{cell_study.pk}/agreement.json").content)
    assert body["stages"]["cell"]["pairs"][0]["figures"]["matched"] == 3
    assert body["stages"]["roi"]["status"] == "no_tasks"
    assert client.get(f"/slides/{cell_study.pk}/agreement.xml").status_code == 404


def test_project_page_draws_per_slide_bars_with_cis_and_the_published_line(
    client, reported_cells, owner, project
):
    html = page(client, owner, f"/projects/{project.pk}/agreement/").content.decode()
    assert html.count('<svg class="bars"') == 4  # cell IoU, Dice, detection F1, class kappa
    assert '<g class="ci"' in html
    assert "published 0.85" in html and "published 0.82" in html
    assert "mean 0.750" in html  # detection F1 of the one slide-pair, as the project mean
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/projects/{project.pk}/agreement.csv").content.decode())
        )
    )
    project_rows = {r["figure"]: r for r in rows if r["slide"] == "(project)"}
    assert project_rows["detection_f1.pooled"]["value"] == "0.75"
    assert project_rows["matched"]["value"] == "3"


def test_pages_are_scoped_to_the_users_projects(client, cell_study, outsider, project):
    assert page(client, outsider, f"/slides/{cell_study.pk}/agreement/").status_code == 404
    assert client.get(f"/projects/{project.pk}/agreement/").status_code == 404
    assert client.get(f"/slides/{cell_study.pk}/agreement.csv").status_code == 404
    assert client.get(f"/slides/{cell_study.pk}/adjudicate/").status_code == 404


def test_slide_viewer_and_slide_list_link_to_the_reports(client, slide, member, project):
    viewer = page(client, member, f"/slides/{slide.pk}/view/").content.decode()
    assert f'href="/slides/{slide.pk}/agreement/"' in viewer
    listing = client.get("/").content.decode()
    assert f'href="/projects/{project.pk}/agreement/"' in listing
