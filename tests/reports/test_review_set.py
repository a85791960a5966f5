"""A report's review copy belongs to the report: the annotation API refuses to write it (409,
signed or not), and the workspace's layers leave it out unless it is asked for by id."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.annotations.models import Annotation, SetSource
from tests.reports.conftest import REVIEWER_PASSWORD, flagged_cells, report_url

pytestmark = pytest.mark.django_db

SQUARE = {"type": "Polygon", "coordinates": [[[10, 10], [40, 10], [40, 40], [10, 40], [10, 10]]]}


def review_set_of(client, run):
    from apps.reports.models import ReportVersion

    client.get(report_url(run))  # makes version 1 and its review copy
    return ReportVersion.objects.get(report__run=run, number=1).review_set


def sign(client, run) -> None:
    for cell in flagged_cells(client, run):
        assert client.post(report_url(run, f"cells/{cell['id']}/confirm/")).status_code == 200
    assert client.post(report_url(run, "sign/"), {"password": REVIEWER_PASSWORD}).status_code == 200


def annotation_api_writes(client, review_set) -> dict[str, int]:
    """Every annotation API write aimed at ``review_set``, by name: its status code."""
    cell = Annotation.objects.filter(set=review_set).order_by("id").first()
    url = f"/api/annotations/{cell.pk}/"
    geojson = {"type": "FeatureCollection", "features": []}
    upload = SimpleUploadedFile("cells.geojson", json.dumps(geojson).encode())
    answers = {
        "edit": client.patch(url, {"label": "monocyte", "version": cell.version}, format="json"),
        "delete": client.delete(f"{url}?version={cell.version}"),
        "restore": client.post(f"{url}restore/", {"version": cell.version}, format="json"),
        "create": client.post(
            "/api/annotations/",
            {"set": review_set.pk, "geometry": SQUARE, "label": "monocyte"},
            format="json",
        ),
        "bulk": client.post(
            "/api/annotations/bulk/",
            {"set": review_set.pk, "items": [{"geometry": SQUARE, "label": "monocyte"}]},
            format="json",
        ),
        "import": client.post(
            f"/api/annotation-sets/{review_set.pk}/import/",
            {"file": upload, "format": "geojson"},
            format="multipart",
        ),
    }
    return {name: response.status_code for name, response in answers.items()}


def test_every_annotation_api_write_to_a_signed_reports_cells_answers_409(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    review_set = review_set_of(client, finished_run)
    sign(client, finished_run)
    before = list(Annotation.objects.filter(set=review_set).values_list("id", "label", "version"))
    assert annotation_api_writes(client, review_set) == dict.fromkeys(
        ("edit", "delete", "restore", "create", "bulk", "import"), 409
    )
    after = list(Annotation.objects.filter(set=review_set).values_list("id", "label", "version"))
    assert after == before


def test_an_unsigned_review_copy_is_edited_only_through_the_report(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    review_set = review_set_of(client, finished_run)
    answers = annotation_api_writes(client, review_set)
    assert set(answers.values()) == {409}
    cell = flagged_cells(client, finished_run)[0]
    new = "monocyte" if cell["label"] != "monocyte" else "lymphocyte"
    response = client.post(
        report_url(finished_run, f"cells/{cell['id']}/reclassify/"),
        {"label": new, "version": cell["version"]},
        format="json",
    )
    assert response.status_code == 200 and response.json()["cell"]["label"] == new


def test_the_review_copy_is_labelled_and_left_out_of_the_slides_layers(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    review_set = review_set_of(client, finished_run)
    slide = finished_run.slide_id
    sets = {s["id"]: s for s in client.get("/api/annotation-sets/", {"slide": slide}).json()}
    assert sets[review_set.pk]["source"] == SetSource.REPORT_REVIEW
    assert sets[finished_run.cell_set_id]["source"] == SetSource.MODEL_RUN
    assert f"analysis run {finished_run.pk}" in sets[review_set.pk]["note"]
    layers = client.get("/api/annotations/", {"slide": slide, "stage": "cell"}).json()
    assert {item["set"] for item in layers} == {finished_run.cell_set_id}
    asked = client.get("/api/annotations/", {"slide": slide, "set": review_set.pk}).json()
    assert len(asked) == finished_run.cell_set.annotations.count()
    assert {item["set"] for item in asked} == {review_set.pk}
