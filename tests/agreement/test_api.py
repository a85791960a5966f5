from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from apps.agreement.models import AgreementJob, SlideReport
from apps.annotations import services as annotation_services
from apps.annotations.models import Annotation, Task
from tests.agreement.conftest import (
    CELLS,
    SMALL_SLIDE_FILE,
    assign,
    cell,
    compute,
    draw,
    rect,
    submit,
)

pytestmark = pytest.mark.django_db


def report(api, slide, stage: str, **params):
    query = "&".join(f"{k}={v}" for k, v in {"stage": stage, **params}.items())
    return api.get(f"/api/agreement/slides/{slide.pk}/?{query}")


@pytest.fixture
def request_report(django_capture_on_commit_callbacks):
    """POST for a report; the queued task runs when the request's transaction commits."""

    def _request(api, slide, stage: str):
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(f"/api/agreement/slides/{slide.pk}/report/?stage={stage}")
        return response

    return _request


def test_no_report_while_a_task_is_still_open(as_user, slide, member, partner, owner):
    assign(slide, "cell", [member, partner], owner)
    draw(slide, "cell", member, [{"geometry": cell(300, 300), "label": "myeloblast"}])
    submit(slide, "cell", member)
    response = report(as_user(owner), slide, "cell")
    assert response.status_code == 409
    body = response.json()
    assert (body["status"], body["tasks"], body["submitted"]) == ("blinded", 2, 1)


def test_a_stage_without_tasks_or_with_one_annotator_says_so(as_user, slide, member, owner):
    assert report(as_user(owner), slide, "roi").json()["status"] == "no_tasks"
    assign(slide, "roi", [member], owner)
    submit(slide, "roi", member)
    assert report(as_user(owner), slide, "roi").json()["status"] == "one_annotator"


def test_cell_report_counts_matches_and_classes(as_user, reported_cells, member):
    response = report(as_user(member), reported_cells, "cell")  # annotators see it once unblinded
    assert response.status_code == 200, response.content
    body = response.json()
    assert [a["username"] for a in body["annotators"]] == ["member", "partner"]
    figures = body["pairs"][0]["figures"]
    assert (figures["matched"], figures["a_only"], figures["b_only"]) == (3, 1, 1)
    assert figures["detection_f1"]["value"] == pytest.approx(2 * 3 / (4 + 4))
    y_a = [la for a, la, b, _ in CELLS if a and b]
    y_b = [lb for a, _, b, lb in CELLS if a and b]
    classes = figures["classes"]
    assert classes["kappa"]["value"] == pytest.approx(skm.cohen_kappa_score(y_a, y_b))
    assert len(classes["labels"]) == 22  # the project's full class list, in schema order
    assert np.asarray(classes["confusion"]).sum() == 3
    assert 0.8 < figures["mean_iou"]["value"] < 1.0
    assert body["iou_threshold"] == 0.5


def test_a_get_only_reads_and_says_when_nothing_is_computed_yet(as_user, cell_study, member):
    body = report(as_user(member), cell_study, "cell").json()
    assert (body["status"], body["stale"], body["job"]) == ("not_computed", True, None)
    assert "not been computed" in body["detail"]
    assert not SlideReport.objects.exists() and not AgreementJob.objects.exists()


def test_a_posted_report_is_computed_by_a_job_and_then_served(
    as_user, cell_study, member, request_report
):
    response = request_report(as_user(member), cell_study, "cell")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"  # the worker runs it after the commit
    body = report(as_user(member), cell_study, "cell").json()
    assert (body["status"], body["stale"]) == ("ready", False)
    job = body["job"]
    assert (job["status"], job["progress"], job["total"], job["error"]) == ("done", 3, 3, "")
    assert job["message"].startswith("computed in")
    sets = body["source_state"]["sets"]
    assert [s[2] for s in sets] == [4, 4]  # live annotations per set
    assert [s[4] for s in sets] == [4, 4]  # sum of versions: every annotation at version 1
    again = report(as_user(member), cell_study, "cell").json()
    assert again["computed_at"] == body["computed_at"]
    polled = as_user(member).get(f"/api/agreement/jobs/{job['id']}/").json()
    assert polled == job


def test_a_second_request_while_one_is_queued_gets_the_same_job(as_user, cell_study, member):
    api = as_user(member)
    first = api.post(f"/api/agreement/slides/{cell_study.pk}/report/?stage=cell")
    second = api.post(f"/api/agreement/slides/{cell_study.pk}/report/?stage=cell")
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert AgreementJob.objects.count() == 1


def test_a_blinded_stage_cannot_be_requested(as_user, slide, member, partner, owner):
    assign(slide, "cell", [member, partner], owner)
    response = as_user(owner).post(f"/api/agreement/slides/{slide.pk}/report/?stage=cell")
    assert response.status_code == 409 and response.json()["status"] == "blinded"
    assert not AgreementJob.objects.exists()


def test_report_is_stale_after_an_edit_and_recomputes(
    as_user, cell_study, owner, partner, request_report
):
    compute(cell_study, "cell", owner)
    first = report(as_user(owner), cell_study, "cell").json()
    # The admin reopens B's task (the stage is blinded again), B relabels a cell, resubmits.
    task = Task.objects.get(slide=cell_study, stage="cell", annotator=partner)
    annotation_services.reopen_task(task=task, user=owner, note="check the third cell")
    assert report(as_user(owner), cell_study, "cell").status_code == 409
    third = Annotation.objects.get(set__annotator=partner, set__stage="cell", label="promyelocyte")
    annotation_services.update_annotation(
        annotation_id=third.pk, user=partner, version=1, changes={"label": "myeloblast"}
    )
    submit(cell_study, "cell", partner)
    stored = report(as_user(owner), cell_study, "cell").json()
    assert stored["stale"] is True and stored["computed_at"] == first["computed_at"]
    assert request_report(as_user(owner), cell_study, "cell").status_code == 202
    fresh = report(as_user(owner), cell_study, "cell").json()
    assert fresh["stale"] is False and fresh["computed_at"] > first["computed_at"]
    assert fresh["pairs"][0]["figures"]["classes"]["kappa"]["value"] == 1.0
    assert fresh["source_state"]["sets"][1][4] == 5  # B's versions went up by one


def test_outsiders_get_404(as_user, reported_cells, outsider, project):
    api = as_user(outsider)
    assert report(api, reported_cells, "cell").status_code == 404
    assert api.get(f"/api/agreement/projects/{project.pk}/").status_code == 404
    assert (
        api.post(f"/api/agreement/slides/{reported_cells.pk}/report/?stage=cell").status_code == 404
    )
    job = AgreementJob.objects.get()
    assert api.get(f"/api/agreement/jobs/{job.pk}/").status_code == 404


def test_without_stage_every_stage_reports_or_says_why(as_user, reported_cells, owner):
    body = as_user(owner).get(f"/api/agreement/slides/{reported_cells.pk}/").json()
    assert body["stages"]["cell"]["status"] == "ready"
    assert body["stages"]["roi"]["status"] == "no_tasks"
    bad = as_user(owner).get(f"/api/agreement/slides/{reported_cells.pk}/?stage=x")
    assert bad.status_code == 400


def test_roi_report_is_the_overlap_of_each_annotators_union(as_user, slide, member, partner, owner):
    assign(slide, "roi", [member, partner], owner)
    draw(slide, "roi", member, [{"geometry": rect(100, 100, 600, 600), "label": ""}])
    draw(
        slide,
        "roi",
        partner,
        [
            {"geometry": rect(100, 100, 600, 350), "label": ""},
            {"geometry": rect(100, 350, 600, 700), "label": ""},
        ],
    )
    submit(slide, "roi", member, partner)
    compute(slide, "roi", owner)
    figures = report(as_user(owner), slide, "roi").json()["pairs"][0]["figures"]
    assert figures["iou"] == pytest.approx(500 * 500 / (500 * 600))
    assert figures["dice"] == pytest.approx(2 * 500 * 500 / (500 * 500 + 500 * 600))


def test_toi_report_counts_tiles_only_one_labelled(as_user, slide, member, partner, owner):
    assign(slide, "toi", [member, partner], owner)
    tiles_a = {(0, 0): "toi", (1, 0): "non_toi", (0, 1): "toi"}
    tiles_b = {(0, 0): "toi", (1, 0): "toi", (1, 1): "non_toi"}
    draw(
        slide,
        "toi",
        member,
        [{"tile_col": c, "tile_row": r, "label": v} for (c, r), v in tiles_a.items()],
    )
    draw(
        slide,
        "toi",
        partner,
        [{"tile_col": c, "tile_row": r, "label": v} for (c, r), v in tiles_b.items()],
    )
    submit(slide, "toi", member, partner)
    compute(slide, "toi", owner)
    figures = report(as_user(owner), slide, "toi").json()["pairs"][0]["figures"]
    assert (figures["n"], figures["only_a"], figures["only_b"]) == (2, 1, 1)
    assert figures["confusion"] == [[1, 0], [1, 0]]
    assert figures["kappa"]["value"] == pytest.approx(
        skm.cohen_kappa_score(["toi", "non_toi"], ["toi", "toi"])
    )


def test_three_annotators_get_every_pair_and_fleiss_kappa(
    as_user, cell_study, member, partner, reviewer, owner
):
    third = reviewer  # a reviewer may annotate too; here a third annotator
    assign(cell_study, "cell", [third], owner)
    draw(
        cell_study,
        "cell",
        third,
        [
            {"geometry": cell(301, 299), "label": "myeloblast"},
            {"geometry": cell(501, 302), "label": "lymphocyte"},
            {"geometry": cell(699, 300), "label": "myeloblast"},
        ],
    )
    submit(cell_study, "cell", third)
    compute(cell_study, "cell", owner)
    body = report(as_user(owner), cell_study, "cell").json()
    assert [(p["a"], p["b"]) for p in body["pairs"]] == [(0, 1), (0, 2), (1, 2)]
    fleiss = body["fleiss"]
    assert (fleiss["n_raters"], fleiss["n_items"]) == (3, 3)
    assert -1.0 <= fleiss["fleiss_kappa"] <= 1.0


def test_project_report_pools_every_comparable_slide(
    as_user,
    cell_study,
    ingest_path,
    member,
    partner,
    owner,
    project,
    django_capture_on_commit_callbacks,
):
    small = ingest_path(SMALL_SLIDE_FILE)
    assert small.status == "ready", small.error
    assign(small, "cell", [member, partner], owner)
    draw(small, "cell", member, [{"geometry": cell(80, 80, r=20), "label": "basophil"}])
    draw(small, "cell", partner, [{"geometry": cell(81, 80, r=20), "label": "basophil"}])
    submit(small, "cell", member, partner)
    with django_capture_on_commit_callbacks(execute=True):
        queued = as_user(owner).post(f"/api/agreement/projects/{project.pk}/reports/")
    assert queued.status_code == 202 and len(queued.json()["jobs"]) == 2
    body = as_user(owner).get(f"/api/agreement/projects/{project.pk}/?stage=cell").json()
    stage = body["stages"]["cell"]
    assert stage["units"] == 2 and len(stage["slides"]) == 2 and stage["stale"] == 0
    aggregate = stage["aggregate"]
    assert aggregate["matched"] == 3 + 1 and aggregate["n_a"] == 4 + 1
    assert aggregate["detection_f1"]["pooled"]["value"] == pytest.approx(2 * 4 / (5 + 5))
    assert aggregate["classes"]["n"] == 4
    assert aggregate["mean_iou"]["mean"]["ci"] is not None  # two slides: a bootstrap CI


def test_a_job_no_worker_finished_is_failed_and_a_new_one_queued(
    as_user, cell_study, member, settings
):
    from datetime import timedelta

    from django.utils import timezone

    api = as_user(member)
    first = api.post(f"/api/agreement/slides/{cell_study.pk}/report/?stage=cell").json()
    old = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 1)
    AgreementJob.objects.filter(pk=first["id"]).update(created_at=old)
    second = api.post(f"/api/agreement/slides/{cell_study.pk}/report/?stage=cell")
    assert second.status_code == 202 and second.json()["id"] != first["id"]
    abandoned = AgreementJob.objects.get(pk=first["id"])
    assert abandoned.status == "failed" and abandoned.error.startswith("abandoned")
