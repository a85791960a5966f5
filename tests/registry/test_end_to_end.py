"""The loop closed, on the real slide, on CPU with tiny settings: two annotators draw cells,
adjudication makes the consensus, it is exported as CELL-CLS-LABELED + COCO, a classifier is
trained on the export for one tiny epoch in a training job and registered, an admin activates
it, an analysis runs, and its report names the new version; after a rollback a new run's
report names the previous version, and the first report still names the one it used."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from apps.registry.models import ModelVersion
from tests.exports.conftest import annotate_cells
from tests.registry.conftest import classifier_card

pytestmark = pytest.mark.django_db

#: 16 cells, 8 per class, spread over the slide (2220 x 2967 px), level-0 px.
CELLS = [
    (300 + (i % 4) * 420, 400 + (i // 4) * 560, "myeloblast" if i % 2 else "lymphocyte")
    for i in range(16)
]
#: A 1,200 px TOI grid and two TOIs keep each run to a couple of tiles.
RUN = {"tile_size": 1200, "max_tiles": 2}


def _consensus(slide, owner, annotators, sync_worker) -> int:
    from apps.agreement.services import start_adjudication
    from apps.annotations import services

    for annotator in annotators:
        task = services.assign_task(
            slide=slide, stage="cell", annotator=annotator, assigned_by=owner
        )
        annotate_cells(slide, annotator, cells=CELLS)
        task.refresh_from_db()
        services.submit_task(task=task, user=annotator)
    with sync_worker():
        adjudication, _, _ = start_adjudication(slide=slide, stage="cell", user=owner)
    return adjudication.consensus.pk


def _run_and_report(api, slide, sync_worker) -> dict:
    with sync_worker():
        started = api.post("/api/analyses/", {"slide": slide.pk, "config": RUN}, format="json")
    assert started.status_code == 201, started.content
    run = api.get(f"/api/analyses/{started.json()['id']}/").json()
    assert run["status"] == "done", run["error"]
    report = api.get(f"/api/analyses/{run['id']}/report/").json()
    models = report["document"]["provenance"]["models"]
    return next(m for m in models if m["stage"] == "classification") | {"run": run["id"]}


def test_a_classifier_trained_on_consensus_cells_runs_once_activated_and_rolls_back(
    api, client, project, owner, member, partner, slide, sync_worker, registry_dirs
) -> None:
    project.toi_tile_size = RUN["tile_size"]
    project.save(update_fields=["toi_tile_size"])
    # A fresh install's classifier (here a tiny random one) is version 1 on first use.
    classifier_card(registry_dirs, name="installed-classifier")
    api.force_authenticate(owner)
    (installed,) = api.get(f"/api/models/?project={project.pk}&task=cell_classification").json()
    assert (installed["version"], installed["is_active"]) == (1, True)

    consensus = _consensus(slide, owner, (member, partner), sync_worker)
    body = {
        "slides": [{"slide": slide.pk, "sets": {"cell": consensus}}],
        "formats": ["cell_cls_labeled", "coco"],
    }
    with sync_worker():
        export = api.post("/api/exports/", body, format="json").json()
    export = api.get(f"/api/exports/{export['id']}/").json()
    assert export["status"] == "done", export["error"]
    archive = zipfile.ZipFile(
        io.BytesIO(b"".join(api.get(export["download_url"]).streaming_content))
    )
    crops = [n for n in archive.namelist() if n.startswith("cell_cls_labeled/")]
    assert len(crops) == len(CELLS)
    (coco_file,) = [n for n in archive.namelist() if n.startswith("coco/")]
    assert len(json.loads(archive.read(coco_file))["annotations"]) == len(CELLS)

    tiny = {"epochs": 1, "img_size": 32, "batch_size": 8, "time_budget_min": 10}
    with sync_worker():
        started = api.post(
            "/api/models/training-jobs/", {"export": export["id"], "options": tiny}, format="json"
        )
    assert started.status_code == 201, started.content
    job = api.get(f"/api/models/training-jobs/{started.json()['id']}/").json()
    assert job["status"] == "done", job["error"]
    assert job["progress"] == job["total"] > 0
    trained = ModelVersion.objects.get(pk=job["version"]["id"])
    assert (trained.version, trained.is_active, trained.origin) == (2, False, "training")
    assert trained.manifest["slides"][0]["sha256"] == slide.sha256
    assert set(trained.card["classes"]) == {"myeloblast", "lymphocyte"}
    assert trained.card["provenance"]["timings"]["time_budget_min"] == 10

    assert api.post(f"/api/models/{trained.pk}/activate/").json()["is_active"] is True
    first = _run_and_report(api, slide, sync_worker)
    assert (first["version"], first["version_id"], first["name"]) == (2, trained.pk, trained.name)
    assert first["kind"] == "model" and first["weights_sha256"] == trained.weights_sha256

    rollback = {"project": project.pk, "task": "cell_classification"}
    assert api.post("/api/models/rollback/", rollback).json()["version"] == 1
    second = _run_and_report(api, slide, sync_worker)
    assert (second["version"], second["name"]) == (1, "installed-classifier")
    # The first report still names the version it ran with.
    again = api.get(f"/api/analyses/{first['run']}/report/").json()["document"]["provenance"]
    assert next(m for m in again["models"] if m["stage"] == "classification")["version"] == 2
    # And so does the report page a person reads.
    client.force_login(owner)
    page = client.get(f"/analyses/{first['run']}/report/").content.decode()
    assert f'{trained.name} <span class="model-version">v2</span>' in page
