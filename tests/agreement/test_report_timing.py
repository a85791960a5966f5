"""The report GET on a slide-sized study: two annotators with 5,000 cell polygons each.

The cells are the synthetic-but-realistic ones of ``bench/agreement.py`` (a 100k px slide), so
the slide row is sized to hold them; nothing reads its pixels here.
"""

from __future__ import annotations

import time

import pytest

from apps.annotations import services as annotation_services
from apps.annotations.errors import BulkInvalid
from apps.slides.models import Slide, SlideStatus
from bench.agreement import SLIDE, annotators
from tests.agreement.conftest import assign, submit

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def big_study(project, owner, member, partner) -> Slide:
    slide = Slide.objects.create(
        project=project,
        name="synthetic 100k",
        original_filename="synthetic.svs",
        sha256="0" * 64,
        file_path="synthetic.svs",
        source="register",
        status=SlideStatus.READY,
        width=SLIDE,
        height=SLIDE,
    )
    poly_a, lab_a, poly_b, lab_b = annotators(0, 5000, 0.8)
    assign(slide, "cell", [member, partner], owner)
    for user, polygons, labels in ((member, poly_a, lab_a), (partner, poly_b, lab_b)):
        aset = annotation_services.get_or_create_annotator_set(slide=slide, stage="cell", user=user)
        items = [{"geometry": g, "label": k} for g, k in zip(polygons, labels, strict=True)]
        store(aset, user, items)
    submit(slide, "cell", member, partner)
    return slide


def store(aset, user, items: list[dict]) -> None:
    """Store ``items``, leaving out the few trembling outlines that cross themselves."""
    try:
        annotation_services.bulk_create_annotations(
            aset=aset, user=user, items=items, limit=annotation_services.MAX_IMPORT_ITEMS
        )
    except BulkInvalid as exc:
        bad = {e["index"] for e in exc.errors}
        assert len(bad) < 10, exc.message
        store(aset, user, [item for i, item in enumerate(items) if i not in bad])


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def test_a_report_get_reads_while_the_job_computes(
    as_user, project, owner, member, partner, django_capture_on_commit_callbacks
):
    slide = big_study(project, owner, member, partner)
    api = as_user(owner)
    url = f"/api/agreement/slides/{slide.pk}/?stage=cell"
    before, missing = timed(lambda: api.get(url))
    assert missing.json()["status"] == "not_computed"
    with django_capture_on_commit_callbacks() as queued:
        post, response = timed(
            lambda: api.post(f"/api/agreement/slides/{slide.pk}/report/?stage=cell")
        )
    assert response.status_code == 202
    job_s, _ = timed(lambda: [enqueue() for enqueue in queued])
    after, served = timed(lambda: api.get(url))
    body = served.json()
    assert body["status"] == "ready" and body["stale"] is False
    assert body["pairs"][0]["figures"]["matched"] > 3000
    print(
        f"\nreport GET before compute {before:.3f} s, POST {post:.3f} s, job {job_s:.3f} s, "
        f"GET of the stored report {after:.3f} s"
    )
    assert after < 1.0 and after < job_s / 3  # the GET reads; the job did the matching


def test_starting_an_adjudication_leaves_the_copy_to_the_job(
    as_user, project, owner, member, partner, django_capture_on_commit_callbacks
):
    slide = big_study(project, owner, member, partner)
    api = as_user(owner)
    url = f"/api/agreement/slides/{slide.pk}/adjudication/?stage=cell"
    with django_capture_on_commit_callbacks() as queued:
        post, response = timed(lambda: api.post(url, {}, format="json"))
    assert response.status_code == 201 and response.json()["filled"] is False
    job_s, _ = timed(lambda: [enqueue() for enqueue in queued])
    body = api.get(url).json()
    assert body["filled"] is True and body["progress"]["total"] > 1000
    print(f"\nadjudication POST {post:.3f} s, fill job {job_s:.3f} s ({body['job']['message']})")
    assert post < job_s / 3
