"""The exports API on the real slide: request, follow the job, download (resumable), refusals."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import zipfile

import pytest
from pycocotools.coco import COCO

from apps.exports import services
from apps.exports.models import ExportJob
from tests.exports.conftest import CELLS, annotate, annotate_cells

pytestmark = pytest.mark.django_db

ALL = [
    "roi_seg",
    "toi_cls",
    "cell_seg",
    "cell_cls_labeled",
    "cell_cls_unlabeled",
    "coco",
    "labelme",
    "qupath",
]


def request_body(slide, sets, formats=ALL, **extra) -> dict:
    return {"slides": [{"slide": slide.pk, "sets": sets}], "formats": formats, **extra}


def post(api, user, body):
    api.force_authenticate(user)
    return api.post("/api/exports/", body, format="json")


def test_an_admin_exports_every_format_into_a_zip_that_matches_its_manifest(
    api, owner, member, slide, sync_worker
):
    sets = annotate(slide, member)
    with sync_worker():
        response = post(api, owner, request_body(slide, sets))
    assert response.status_code == 201, response.content
    job = api.get(f"/api/exports/{response.json()['id']}/").json()
    assert job["status"] == "done", job["error"]
    assert job["progress"]["done"] == job["progress"]["total"] > 0
    download = api.get(job["download_url"])
    assert download.status_code == 200 and download["Accept-Ranges"] == "bytes"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    assert set(archive.namelist()) == set(manifest["files"]) | {"manifest.json"}
    for name, record in manifest["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == record["sha256"]
    (entry,) = manifest["slides"]
    assert entry["sha256"] == slide.sha256
    assert {s["stage"]: (s["set_id"], s["annotator"]) for s in entry["sources"]} == {
        stage: (set_id, "member") for stage, set_id in sets.items()
    }
    assert next(s for s in entry["sources"] if s["stage"] == "cell")["version"] == len(CELLS)
    assert len(manifest["class_map"]) == 22
    coco_json = archive.read("coco/train.json")
    coco = COCO()
    coco.dataset = json.loads(coco_json)
    coco.createIndex()
    assert len(coco.getAnnIds()) == len(CELLS)
    labelled = [n for n in archive.namelist() if n.startswith("cell_cls_labeled/train/")]
    assert sorted({n.split("/")[2] for n in labelled}) == ["lymphocyte", "myeloblast"]
    assert any(n.startswith("toi_cls/train/non_toi/") for n in archive.namelist())
    assert any(n.startswith("roi_seg/train/masks/") for n in archive.namelist())


def test_a_download_resumes_with_a_range_request(api, owner, member, slide, sync_worker):
    sets = annotate(slide, member)
    with sync_worker():
        job_id = post(api, owner, request_body(slide, sets, formats=["coco", "qupath"])).json()[
            "id"
        ]
    url = f"/api/exports/{job_id}/download"
    whole = b"".join(api.get(url).streaming_content)
    first = api.get(url, HTTP_RANGE="bytes=0-99")
    assert first.status_code == 206
    assert first["Content-Range"] == f"bytes 0-99/{len(whole)}"
    head = b"".join(first.streaming_content)
    rest = api.get(url, HTTP_RANGE=f"bytes={len(head)}-", HTTP_IF_RANGE=first["ETag"])
    assert rest.status_code == 206
    assert head + b"".join(rest.streaming_content) == whole
    assert api.get(url, HTTP_RANGE=f"bytes={len(whole)}-").status_code == 416
    stale = api.get(url, HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"stale"')
    assert stale.status_code == 200  # the file changed since: start again


def test_several_slides_are_split_by_slide(api, owner, member, ingest_path, slide, sync_worker):
    from tests.ml.data import SLIDES_DIR

    other = ingest_path(SLIDES_DIR / "boxes.tiff")
    assert other.status == "ready", other.error
    body = {
        "slides": [
            {"slide": slide.pk, "sets": {"cell": annotate_cells(slide, member)}},
            {
                "slide": other.pk,
                "sets": {"cell": annotate_cells(other, member, cells=[(40, 40, "myeloblast")])},
            },
        ],
        "formats": ["coco"],
        "fractions": [0.5, 0.5, 0.0],
        "seed": 1,
    }
    with sync_worker():
        job = post(api, owner, body).json()
    manifest = ExportJob.objects.get(pk=job["id"]).manifest
    sides = manifest["split"]["slides"]
    assert sorted(sides.values()) == ["train", "val"]
    for side in ("train", "val"):
        images = json.loads(
            zipfile.ZipFile(
                services.selectors.output_path(ExportJob.objects.get(pk=job["id"]))
            ).read(f"coco/{side}.json")
        )["images"]
        assert [i["file_name"] for i in images] == [k for k, s in sides.items() if s == side]


def test_an_empty_selection_is_400(api, owner, slide):
    response = post(api, owner, {"slides": [], "formats": ["coco"]})
    assert response.status_code == 400 and "at least one slide" in response.json()["detail"]
    response = post(api, owner, request_body(slide, {}))
    assert response.status_code == 400
    assert not ExportJob.objects.exists()


def test_a_class_map_that_leaves_out_labels_is_400_listing_them(api, owner, member, slide):
    sets = annotate(slide, member)
    response = post(api, owner, request_body(slide, sets, class_keys=["myeloblast"]))
    assert response.status_code == 400
    assert response.json()["labels"] == ["lymphocyte"]
    assert not ExportJob.objects.exists()


def test_a_set_still_blinded_to_the_requester_is_404(api, owner, member, partner, slide):
    from apps.annotations.services import assign_task

    for annotator in (member, partner):
        assign_task(slide=slide, stage="cell", annotator=annotator, assigned_by=owner)
    sets = annotate(slide, member)
    response = post(api, partner, request_body(slide, {"cell": sets["cell"]}))
    assert response.status_code == 404
    # Their own set is visible to them, but exporting is an admin's job.
    own = annotate(slide, partner)
    assert post(api, partner, request_body(slide, {"cell": own["cell"]})).status_code == 403


def test_outsiders_get_404_on_exports_and_jobs(api, owner, member, outsider, slide, sync_worker):
    sets = annotate(slide, member)
    with sync_worker():
        job_id = post(api, owner, request_body(slide, sets, formats=["coco"])).json()["id"]
    api.force_authenticate(outsider)
    assert api.get(f"/api/exports/{job_id}/").status_code == 404
    assert api.get(f"/api/exports/{job_id}/download").status_code == 404
    assert post(api, outsider, request_body(slide, sets)).status_code == 404
    assert api.get("/api/exports/").json()["results"] == []


class FillsUp(io.RawIOBase):
    """A file that raises ENOSPC after ``room`` bytes, as a full disk does."""

    def __init__(self, path, room: int) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.room < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()
        super().close()


def test_a_full_disk_fails_the_job_with_the_reason_and_removes_the_partial_zip(
    api, owner, member, slide, sync_worker, monkeypatch, export_dir
):
    monkeypatch.setattr(services, "open_output", lambda path, mode: FillsUp(path, 5_000))
    sets = annotate(slide, member)
    with sync_worker():
        job_id = post(api, owner, request_body(slide, sets, formats=["cell_cls_unlabeled"])).json()[
            "id"
        ]
    job = api.get(f"/api/exports/{job_id}/").json()
    assert job["status"] == "failed"
    assert job["error"].startswith("the disk is full: No space left on device")
    assert list(export_dir.iterdir()) == []
    assert api.get(f"/api/exports/{job_id}/download").status_code == 409


def test_a_folder_export_lands_on_the_server(api, owner, member, slide, sync_worker, export_dir):
    sets = annotate(slide, member)
    with sync_worker():
        job_id = post(
            api, owner, request_body(slide, sets, formats=["qupath"], output="folder")
        ).json()["id"]
    job = ExportJob.objects.get(pk=job_id)
    assert job.status == "done" and job.output_name == f"export-{job_id}"
    assert (export_dir / job.output_name / "manifest.json").exists()
    assert api.get(f"/api/exports/{job_id}/").json()["download_url"] is None


def test_a_consensus_set_exports_with_its_source_in_the_manifest(
    api, owner, member, partner, slide, sync_worker
):
    from apps.agreement.services import start_adjudication
    from apps.annotations import services as annotation_services

    for annotator in (member, partner):
        task = annotation_services.assign_task(
            slide=slide, stage="cell", annotator=annotator, assigned_by=owner
        )
        annotate_cells(slide, annotator)
        task.refresh_from_db()
        annotation_services.submit_task(task=task, user=annotator)
    # The fill job is queued when the transaction commits; run it here, as a worker would.
    with sync_worker():
        adjudication, _, _ = start_adjudication(slide=slide, stage="cell", user=owner)
    consensus = adjudication.consensus
    with sync_worker():
        job_id = post(api, owner, request_body(slide, {"cell": consensus.pk}, formats=["coco"]))
    job = ExportJob.objects.get(pk=job_id.json()["id"])
    assert job.status == "done", job.error
    (source,) = job.manifest["slides"][0]["sources"]
    assert source["source"] == "consensus" and source["set_id"] == consensus.pk
    assert source["annotations"] == len(CELLS)  # both drew the same cells: all agreed


def test_a_damaged_slide_file_fails_the_job_with_the_reason(
    api, owner, member, ingest_path, slide_store, sync_worker, export_dir
):
    from tests.conftest import SLIDE_FILE

    copied = ingest_path(SLIDE_FILE, copy=True)
    stored = copied.viewable_file
    # Only ever damage the test's own copy, never the shared data it came from.
    assert slide_store in stored.parents and not stored.is_symlink()
    sets = annotate(copied, member)
    stored.chmod(0o644)
    stored.write_bytes(b"not a slide any more")
    with sync_worker():
        job_id = post(api, owner, request_body(copied, sets, formats=["roi_seg"])).json()["id"]
    job = ExportJob.objects.get(pk=job_id)
    assert job.status == "failed"
    assert "could not be read" in job.error
    assert not export_dir.exists() or list(export_dir.iterdir()) == []
