"""The slides API: upload, detail, list, thumbnails and associated images."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.slides import services
from apps.slides.models import Slide
from tests.conftest import SLIDES_DIR

pytestmark = pytest.mark.django_db


def _upload(api, project, name="small.svs", **extra):
    content = (SLIDES_DIR / name).read_bytes()
    return api.post(
        "/api/slides/",
        {"file": SimpleUploadedFile(name, content), "project": project.pk, **extra},
        format="multipart",
    )


def test_upload_creates_a_pending_slide_then_ingest_makes_it_ready(api, member, project):
    api.force_authenticate(member)
    response = _upload(api, project)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and body["duplicate"] is False
    services.ingest(body["id"])
    detail = api.get(f"/api/slides/{body['id']}/").json()
    assert detail["status"] == "ready"
    assert (detail["width"], detail["height"]) == (16, 16)
    assert detail["mpp_x"] == pytest.approx(0.499)
    assert detail["vendor"] == "aperio" and detail["error"] == ""
    assert detail["levels"] == [{"width": 16, "height": 16, "downsample": 1.0}]


def test_uploaded_file_is_stored_under_its_sha256(api, member, project, slide_store):
    api.force_authenticate(member)
    slide = Slide.objects.get(pk=_upload(api, project).json()["id"])
    assert slide.stored_file.is_relative_to(slide_store)
    assert slide.stored_file.read_bytes() == (SLIDES_DIR / "small.svs").read_bytes()
    assert slide.stored_file.parent.name == slide.sha256


def test_duplicate_upload_is_recognised(api, member, project):
    api.force_authenticate(member)
    first = _upload(api, project).json()
    second = _upload(api, project)
    assert second.status_code == 200
    assert second.json()["id"] == first["id"] and second.json()["duplicate"] is True


def test_upload_over_the_limit_is_refused_and_nothing_is_kept(
    api, member, project, settings, slide_store
):
    settings.SLIDE_UPLOAD_MAX_BYTES = 1000
    api.force_authenticate(member)
    response = _upload(api, project)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert not Slide.objects.exists()
    assert not [p for p in slide_store.rglob("*") if p.is_file()]


def test_upload_into_someone_elses_project_is_404(api, outsider, project):
    api.force_authenticate(outsider)
    assert _upload(api, project).status_code == 404
    assert not Slide.objects.filter(project=project).exists()


def test_list_filters_by_project_and_hides_other_projects(
    api, owner, outsider, project, ingest_path
):
    ingest_path(SLIDES_DIR / "small.svs")
    api.force_authenticate(owner)
    assert api.get(f"/api/slides/?project={project.pk}").json()["count"] == 1
    api.force_authenticate(outsider)
    assert api.get("/api/slides/").json()["count"] == 0
    assert api.get(f"/api/slides/?project={project.pk}").json()["count"] == 0


def test_thumbnail_fits_max_size_and_keeps_aspect(api, owner, ingest_path):
    slide = ingest_path(SLIDES_DIR / "cmu-1-small-region.svs")
    api.force_authenticate(owner)
    response = api.get(f"/api/slides/{slide.pk}/thumbnail/?max_size=300")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert max(image.size) == 300
    assert image.size == (round(2220 * 300 / 2967), 300) or image.size == (225, 300)


def test_thumbnail_rejects_absurd_sizes(api, owner, ingest_path):
    slide = ingest_path(SLIDES_DIR / "small.svs")
    api.force_authenticate(owner)
    assert api.get(f"/api/slides/{slide.pk}/thumbnail/?max_size=100000").status_code == 400


def test_label_image_is_served_and_a_missing_one_is_404(api, owner, ingest_path):
    slide = ingest_path(SLIDES_DIR / "cmu-1-small-region.svs")
    api.force_authenticate(owner)
    label = api.get(f"/api/slides/{slide.pk}/associated/label/")
    assert label.status_code == 200
    assert Image.open(io.BytesIO(label.content)).format == "JPEG"
    assert api.get(f"/api/slides/{slide.pk}/associated/nothing/").status_code == 404


def test_a_slide_not_yet_ingested_has_no_images_and_the_404_says_why(api, member, project):
    api.force_authenticate(member)
    slide_id = _upload(api, project).json()["id"]  # the ingest waits for the worker
    response = api.get(f"/api/slides/{slide_id}/thumbnail/")
    assert response.status_code == 404
    assert response.json()["detail"] == "The slide is pending: not ingested yet."


def test_an_outsider_learns_nothing_about_a_slide(api, outsider, ingest_path):
    slide = ingest_path(SLIDES_DIR / "small.svs")
    api.force_authenticate(outsider)
    for url in (f"/api/slides/{slide.pk}/thumbnail/", f"/api/slides/{slide.pk}/associated/label/"):
        response = api.get(url)
        assert response.status_code == 404 and response.json()["detail"] == "No such slide."


def test_upload_queues_the_ingest_job_which_the_worker_runs(
    api, member, project, monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    # django-q2's sync mode runs the queued task in-process through the same task function.
    monkeypatch.setattr(Conf, "SYNC", True)
    api.force_authenticate(member)
    with django_capture_on_commit_callbacks(execute=True):
        slide_id = _upload(api, project, name="cmu-1-small-region.svs").json()["id"]
    slide = Slide.objects.get(pk=slide_id)
    assert slide.status == "ready" and slide.ingested_at is not None
