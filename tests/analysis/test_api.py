"""Analysis runs through the API, end to end in django-q2 sync mode, on a real slide."""

from __future__ import annotations

import pytest

from ml.pipeline import FrontResult, PipelineConfig, analyse
from tests.analysis.conftest import GRID
from tests.conftest import SLIDE_FILE

pytestmark = pytest.mark.django_db


def test_a_run_through_the_api_counts_the_same_cells_as_the_library(
    slide, member, as_user, run_jobs
) -> None:
    code, body = run_jobs(as_user(member), {"slide": slide.pk})
    assert code == 201, body
    run = as_user(member).get(f"/api/analyses/{body['id']}/").json()
    assert run["status"] == "done", run["error"]

    direct = analyse(
        SLIDE_FILE, models_dir=None, device="cpu", config=PipelineConfig(tile_size=GRID)
    )
    from apps.analysis.models import AnalysisRun

    record = AnalysisRun.objects.get(pk=body["id"])
    assert record.summary["cells"] == len(direct.cells) > 0
    assert record.chunks.count() == sum(d.keep for d in direct.tiles) >= 2
    assert record.cell_set.annotations.count() == len(direct.cells)
    assert record.roi_set.annotations.count() == len(direct.roi.polygons)
    assert record.toi_set.annotations.count() == len(direct.tiles)
    assert record.summary["count"] == direct.dcc.to_dict()
    # The record keeps what reproduces it.
    assert record.slide_sha256 == slide.sha256
    assert record.config == PipelineConfig(tile_size=GRID).to_dict()
    assert record.models_used["cells"] == {"kind": "baseline", "name": direct.stages["cells"].name}
    assert record.software_version.startswith("bmadcc ")
    assert {"thumbnail", "roi", "toi", "cells", "assemble", "total"} <= set(record.timings)
    assert all(c.worker and c.status == "done" for c in record.chunks.all())


def test_the_progress_of_a_finished_run_shows_every_stage_complete(
    slide, owner, as_user, run_jobs
) -> None:
    _, body = run_jobs(as_user(owner), {"slide": slide.pk})
    run = as_user(owner).get(f"/api/analyses/{body['id']}/").json()
    assert list(run["stages"]) == ["thumbnail", "roi", "toi", "cells", "classes"]
    assert all(s["done"] == s["total"] for s in run["stages"].values())
    assert run["cells_found"] == run["summary"]["cells"] and run["eta_s"] == 0.0
    assert all(run["sets"].values())


def test_runs_are_listed_by_slide(slide, member, as_user, run_jobs) -> None:
    _, first = run_jobs(as_user(member), {"slide": slide.pk})
    listed = as_user(member).get(f"/api/analyses/?slide={slide.pk}").json()
    assert [r["id"] for r in listed["results"]] == [first["id"]]
    assert as_user(member).get("/api/analyses/?slide=x").status_code == 400


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"tile_sise": 800}, "tile_sise"),
        ({"toi_threshold": 2}, "toi_threshold"),
        ({"review_threshold": "high"}, "review_threshold"),
        ({"cell_filter": {"colour": 1}}, "cell_filter.colour"),
        ({"tile_size": 1600}, "tile_size"),
        ("fast", "config"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field_and_nothing_is_queued(
    slide, member, as_user, config, field
) -> None:
    from apps.analysis.models import AnalysisRun

    response = as_user(member).post(
        "/api/analyses/", {"slide": slide.pk, "config": config}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and field in response.json()["detail"]
    assert not AnalysisRun.objects.exists()


def test_a_pending_or_failed_slide_cannot_be_analysed(slide, member, as_user) -> None:
    from apps.slides.models import Slide

    Slide.objects.filter(pk=slide.pk).update(status="failed", error="the file is truncated")
    response = as_user(member).post("/api/analyses/", {"slide": slide.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == "the slide is failed: the file is truncated"
    Slide.objects.filter(pk=slide.pk).update(status="pending", error="")
    response = as_user(member).post("/api/analyses/", {"slide": slide.pk}, format="json")
    assert response.status_code == 409 and "pending" in response.json()["detail"]


def test_outsiders_get_404_for_the_slide_the_run_and_its_sets(
    slide, member, outsider, as_user, run_jobs
) -> None:
    _, body = run_jobs(as_user(member), {"slide": slide.pk})
    stranger = as_user(outsider)
    assert stranger.post("/api/analyses/", {"slide": slide.pk}, format="json").status_code == 404
    assert stranger.get(f"/api/analyses/{body['id']}/").status_code == 404
    assert stranger.post(f"/api/analyses/{body['id']}/cancel/").status_code == 404
    assert stranger.post(f"/api/analyses/{body['id']}/retry/").status_code == 404
    assert stranger.get(f"/api/analyses/?slide={slide.pk}").json()["results"] == []
    from apps.analysis.models import AnalysisRun

    cell_set = AnalysisRun.objects.get(pk=body["id"]).cell_set_id
    assert stranger.get(f"/api/annotation-sets/{cell_set}/").status_code == 404


def test_a_blinded_annotator_sees_no_model_run_cells_until_the_stage_is_unblinded(
    slide, owner, member, as_user, run_jobs
) -> None:
    from apps.annotations.models import Task

    _, body = run_jobs(as_user(owner), {"slide": slide.pk})
    Task.objects.create(slide=slide, stage="cell", annotator=member, assigned_by=owner)
    annotator = as_user(member)
    run = annotator.get(f"/api/analyses/{body['id']}/").json()
    assert run["status"] == "done"
    assert run["cells_found"] is None and run["summary"] is None and run["sets"]["cell"] is None
    listed = annotator.get(f"/api/annotation-sets/?slide={slide.pk}&stage=cell").json()
    assert [s for s in listed if s["source"] == "model_run"] == []
    cells = annotator.get(f"/api/annotations/?slide={slide.pk}&stage=cell").json()
    assert cells == []
    # The reviewer of the same project sees the run's cells.
    admin_view = as_user(owner).get(f"/api/analyses/{body['id']}/").json()
    assert admin_view["sets"]["cell"] and admin_view["cells_found"] > 0

    Task.objects.filter(slide=slide, stage="cell").update(state="submitted")
    run = annotator.get(f"/api/analyses/{body['id']}/").json()
    assert run["sets"]["cell"] == admin_view["sets"]["cell"]
    assert run["cells_found"] == admin_view["cells_found"]


def test_retry_is_a_new_run_with_the_same_inputs(slide, member, as_user, run_jobs) -> None:
    from apps.analysis.models import AnalysisRun

    client = as_user(member)
    _, first = run_jobs(client, {"slide": slide.pk, "config": {"toi_threshold": 0.4}})
    response = client.post(f"/api/analyses/{first['id']}/retry/")
    assert response.status_code == 201, response.content
    second = AnalysisRun.objects.get(pk=response.json()["id"])
    assert second.retry_of_id == first["id"] and second.overrides == {"toi_threshold": 0.4}
    assert second.config == AnalysisRun.objects.get(pk=first["id"]).config
    assert second.status == "queued"  # its jobs were not run in this test


def test_cancel_stops_the_run_at_the_next_chunk_and_names_who(
    slide, member, owner, as_user, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from apps.analysis import services, tasks
    from apps.analysis.models import AnalysisRun

    slide.project.toi_tile_size = GRID // 2  # smaller tiles: more than two chunks
    slide.project.save(update_fields=["toi_tile_size"])
    client = as_user(member)
    with django_capture_on_commit_callbacks(execute=False):
        run_id = client.post("/api/analyses/", {"slide": slide.pk}, format="json").json()["id"]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        tasks.run_front(run_id)  # the front task ran; its chunks are queued, not yet run
    chunks = AnalysisRun.objects.get(pk=run_id).chunks
    assert len(queued) == chunks.count() >= 3
    # The owner presses cancel as the first chunk's cells are recorded (its progress push),
    # while the worker holds the next chunk it took ahead.
    cancelled = []
    publish = services.publish

    def cancel_after_the_first_chunk(pushed_run_id: int) -> None:
        publish(pushed_run_id)
        if not cancelled and chunks.filter(status="done").exists():
            cancelled.append(as_user(owner).post(f"/api/analyses/{run_id}/cancel/"))

    monkeypatch.setattr(services, "publish", cancel_after_the_first_chunk)
    tasks.run_chunk(chunks.order_by("index").first().pk)  # the worker goes on chunk by chunk

    (response,) = cancelled
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["error"] == "cancelled by owner"
    for chunk in chunks.all():
        tasks.run_chunk(chunk.pk)  # what the workers would still pick up
    run = AnalysisRun.objects.get(pk=run_id)
    assert run.status == "cancelled" and run.cell_set is None
    # The chunk in hand when the cancel came still finishes; no other one starts.
    statuses = list(chunks.order_by("index").values_list("status", flat=True))
    assert statuses == ["done", "done"] + ["skipped"] * (len(statuses) - 2)
    assert client.post(f"/api/analyses/{run_id}/cancel/").status_code == 409


def test_a_finished_run_is_immutable_in_the_database(slide, member, as_user, run_jobs) -> None:
    from django.db import DatabaseError, transaction

    from apps.analysis.models import AnalysisRun

    _, body = run_jobs(as_user(member), {"slide": slide.pk})
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        AnalysisRun.objects.filter(pk=body["id"]).update(error="edited")
    assert AnalysisRun.objects.get(pk=body["id"]).error == ""


def test_a_broken_model_card_fails_the_run_at_once_naming_the_card_and_field(
    slide, member, as_user, run_jobs, settings, tmp_path
) -> None:
    settings.MODEL_DIR = tmp_path / "models"
    settings.MODEL_DIR.mkdir()
    (settings.MODEL_DIR / "roi.json").write_text('{"task": "roi"}')
    _, body = run_jobs(as_user(member), {"slide": slide.pk})
    run = as_user(member).get(f"/api/analyses/{body['id']}/").json()
    assert run["status"] == "failed"
    assert "roi.json" in run["error"] and "field" in run["error"], run["error"]


def test_weights_that_fail_their_sha256_fail_the_run_at_once_naming_the_card_and_field(
    slide, member, as_user, run_jobs, settings, tmp_path
) -> None:
    import json

    from apps.analysis.models import AnalysisRun
    from tests.ml.test_pipeline import write_tiny_models

    settings.MODEL_DIR = write_tiny_models(tmp_path / "models", tasks=("roi",))
    card = settings.MODEL_DIR / "roi.json"
    card.write_text(json.dumps({**json.loads(card.read_text()), "weights_sha256": "0" * 64}))
    _, body = run_jobs(as_user(member), {"slide": slide.pk})
    run = as_user(member).get(f"/api/analyses/{body['id']}/").json()
    assert run["status"] == "failed"
    assert "roi.json" in run["error"] and "weights_sha256" in run["error"], run["error"]
    assert not AnalysisRun.objects.get(pk=body["id"]).chunks.exists()  # failed before any chunk


def test_two_runs_of_one_slide_at_once_keep_their_chunks_apart(
    slide, member, as_user, django_capture_on_commit_callbacks
) -> None:
    from apps.analysis.models import AnalysisRun

    client = as_user(member)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        whole = client.post("/api/analyses/", {"slide": slide.pk}, format="json").json()["id"]
        one = client.post(
            "/api/analyses/", {"slide": slide.pk, "config": {"max_tiles": 1}}, format="json"
        ).json()["id"]
    jobs = list(queued)
    # Both runs' steps through one queue, in the order they were queued (django-q2 sync mode).
    while jobs:
        with django_capture_on_commit_callbacks(execute=False) as more:
            jobs.pop(0)()
        jobs += more
    for run_id, max_tiles in ((whole, None), (one, 1)):
        run = AnalysisRun.objects.get(pk=run_id)
        assert run.status == "done", run.error
        config = PipelineConfig(tile_size=GRID, max_tiles=max_tiles)
        direct = analyse(SLIDE_FILE, models_dir=None, device="cpu", config=config)
        assert run.summary["cells"] == run.cell_set.annotations.count() == len(direct.cells)
        tiles = sorted((t["col"], t["row"]) for c in run.chunks.all() for t in c.tiles)
        assert tiles == sorted((t.col, t.row) for t in FrontResult.from_dict(run.front).tois)
    runs = AnalysisRun.objects.filter(pk__in=[whole, one]).order_by("pk")
    assert [r.chunks.count() for r in runs] == [len(runs[0].front["tois"]), 1]
    assert runs[0].summary["cells"] != runs[1].summary["cells"]  # so a mix-up would show
