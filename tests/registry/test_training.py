"""Training jobs from the app: who may start one, on what, and how a bad request or bad data
is answered (the happy path runs in test_end_to_end.py)."""

from __future__ import annotations

import pytest

from apps.registry.models import ModelVersion, TrainingJob
from tests.exports.conftest import CELLS, annotate_cells

pytestmark = pytest.mark.django_db

TINY = {"epochs": 1, "img_size": 32}


def _export(api, owner, slide, sets, sync_worker, formats=("cell_cls_labeled",)) -> int:
    api.force_authenticate(owner)
    body = {"slides": [{"slide": slide.pk, "sets": sets}], "formats": list(formats)}
    with sync_worker():
        job = api.post("/api/exports/", body, format="json").json()
    assert api.get(f"/api/exports/{job['id']}/").json()["status"] == "done"
    return job["id"]


def _train(api, user, body, sync_worker):
    api.force_authenticate(user)
    with sync_worker():
        return api.post("/api/models/training-jobs/", body, format="json")


def test_an_export_of_one_class_fails_the_job_with_the_reason(
    api, owner, member, slide, sync_worker
) -> None:
    cells = [(x, y, "myeloblast") for x, y, _ in CELLS]
    export = _export(
        api, owner, slide, {"cell": annotate_cells(slide, member, cells=cells)}, sync_worker
    )
    response = _train(api, owner, {"export": export, "options": TINY}, sync_worker)
    assert response.status_code == 201, response.content
    job = api.get(f"/api/models/training-jobs/{response.json()['id']}/").json()
    assert job["status"] == "failed" and "only the class" in job["error"], job
    assert job["version"] is None and not ModelVersion.objects.exists()


def test_bad_training_requests_are_400_and_queue_nothing(
    api, owner, member, slide, sync_worker
) -> None:
    sets = {"cell": annotate_cells(slide, member)}
    coco_only = _export(api, owner, slide, sets, sync_worker, formats=("coco",))
    crops = _export(api, owner, slide, sets, sync_worker)
    cases = [
        ({"export": coco_only}, "no cell_cls_labeled data"),
        ({"export": crops, "task": "roi"}, "no roi_seg data"),
        ({"export": crops, "options": {"tiny": True}}, "unknown options"),
        ({"export": crops, "options": {"learning_rate": 1}}, "unknown options"),
        ({"export": crops, "options": {"epochs": "1"}}, "must be int"),
        ({"export": crops, "options": {"time_budget_min": "15"}}, "must be float"),
        ({"export": crops, "options": {"time_budget_min": True}}, "must be float"),
        ({"export": crops, "options": {"time_budget_min": -1}}, "cannot be negative"),
    ]
    for body, reason in cases:
        response = _train(api, owner, body, sync_worker)
        assert response.status_code == 400 and reason in response.json()["detail"], response.json()
    assert not TrainingJob.objects.exists()


def test_members_read_training_jobs_but_outsiders_see_nothing(
    api, owner, member, outsider, slide, sync_worker
) -> None:
    export = _export(api, owner, slide, {"cell": annotate_cells(slide, member)}, sync_worker)
    # Exports are an admin's business, so for anyone else the export does not exist.
    assert _train(api, member, {"export": export}, sync_worker).status_code == 404
    job = TrainingJob.objects.create(
        project=slide.project, task="cell_classification", export_id=export
    )
    api.force_authenticate(member)
    assert api.get(f"/api/models/training-jobs/{job.pk}/").json()["export"] == export
    api.force_authenticate(outsider)
    assert api.get(f"/api/models/training-jobs/{job.pk}/").status_code == 404
    assert api.get("/api/models/training-jobs/").json() == []
    assert _train(api, outsider, {"export": export}, sync_worker).status_code == 404


def test_an_roi_model_trains_from_an_roi_seg_export_into_an_inactive_version(
    api, owner, project, sync_worker, settings, tmp_path
) -> None:
    import json
    import shutil

    from apps.exports.models import ExportJob, JobStatus
    from tests.ml.exports import write_bccd_export

    settings.EXPORT_DIR = tmp_path / "exports"
    # A finished folder export, as the export job leaves it: 8 BCCD photos as slides.
    written = write_bccd_export(tmp_path / "written", n=8)
    shutil.copytree(written, settings.EXPORT_DIR / "bccd")
    manifest = json.loads((written / "manifest.json").read_text())
    export = ExportJob.objects.create(
        project=project,
        requested_by=owner,
        selection={},
        status=JobStatus.DONE,
        output_name="bccd",
        manifest=manifest,
    )
    body = {"export": export.pk, "task": "roi", "options": {"epochs": 1, "tiny": True}}
    response = _train(api, owner, body, sync_worker)
    assert response.status_code == 201, response.content
    job = api.get(f"/api/models/training-jobs/{response.json()['id']}/").json()
    assert job["status"] == "done", job["error"]
    version = ModelVersion.objects.get(pk=job["version"]["id"])
    assert (version.task, version.is_active, version.origin) == ("roi", False, "training")
    assert set(version.metrics["validation"]) == {"iou", "dice", "pixel_accuracy"}
    assert version.manifest == manifest
