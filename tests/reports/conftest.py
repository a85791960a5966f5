"""Report test helpers: a finished analysis run of the real slide cmu-1-small-region.svs.

The cells are real: ``ml.pipeline.analyse`` on the slide with the baseline ROI, TOI and cell
stages plus a tiny real-architecture classifier with random weights (tests/ml/test_pipeline.py's
``write_tiny_models``), on two tiles of interest. Random weights are unsure of every cell, so
every cell needs review, and the card says each class is mistaken half the time, so the
rescreening alert fires. The pipeline's output is computed once and cached under
var/test-cache (keyed by the slide, weights and config); each test then stores it as a done
:class:`AnalysisRun` with its ``model_run`` cell set, the way the analysis app's assembly does.

``reviewer`` (password :data:`REVIEWER_PASSWORD`) signs; ``member`` annotates; ``outsider`` is
in another project.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.analysis.conftest import GRID
from tests.conftest import SLIDE_FILE, TEST_CACHE

REVIEWER_PASSWORD = "reviewer-pass-123"
CONFIG = {"tile_size": GRID, "max_tiles": 2}


@pytest.fixture(autouse=True)
def fresh_report_caches():
    """Forget the gallery's per-process caches: they are keyed by review set id, which a rolled
    back test database hands out again (a real database never reuses one)."""
    from apps.reports import selectors

    for lru in (selectors._MODEL_OUTPUT, selectors._SHEET_CELLS, selectors._SPRITES):
        lru.clear()


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.ml.test_pipeline import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("models"), tasks=("cell_classification",))


@pytest.fixture(scope="session")
def pipeline_output(classifier_dir: Path) -> dict[str, Any]:
    return load_pipeline_output(classifier_dir)


def load_pipeline_output(classifier_dir: Path) -> dict[str, Any]:
    """The run's cells (as the analysis app stores them), summary and models, cached."""
    weights = sorted(p.read_bytes() for p in classifier_dir.glob("**/*") if p.is_file())
    key = hashlib.sha256(b"".join(weights) + json.dumps(CONFIG).encode()).hexdigest()[:16]
    cached = TEST_CACHE / f"report-run-{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    import torch

    from apps.analysis.services import _cell_items, models_used
    from ml.cards import discover_cards
    from ml.pipeline import PipelineConfig, analyse, build_stages

    config = PipelineConfig.from_dict(CONFIG)
    result = analyse(SLIDE_FILE, models_dir=classifier_dir, device="cpu", config=config)
    stages = build_stages(discover_cards(classifier_dir), torch.device("cpu"), config)
    out = result.to_dict()
    summary = {k: out[k] for k in ("count", "alerts", "notes", "review_count", "throughput")}
    summary |= {"cells": len(result.cells), "classifier_classes": out["classifier_classes"]}
    data = {
        "items": _cell_items(result),
        "summary": summary,
        "models_used": models_used(stages),
        "config": config.to_dict(),
        "timings": {**out["timings_s"], "total": round(sum(out["timings_s"].values()), 3)},
    }
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(data))
    return data


@pytest.fixture
def finished_run(pipeline_output, project, slide, member):
    """A done :class:`AnalysisRun` of ``slide`` with its classified cells, started by ``member``."""
    return store_run(pipeline_output, project=project, slide=slide, user=member)


def store_run(pipeline_output: dict[str, Any], *, project, slide, user):
    """Store the pipeline's output as a done run, as the analysis app's assembly does."""
    from django.utils import timezone

    from apps.analysis.models import AnalysisRun, RunStatus
    from apps.analysis.services import software_version
    from apps.annotations.models import Stage
    from apps.annotations.services import create_model_run_set, ensure_label_schema

    ensure_label_schema(project=project)
    cell_set = create_model_run_set(
        slide=slide, stage=Stage.CELL, user=user, items=pipeline_output["items"]
    )
    now = timezone.now()
    return AnalysisRun.objects.create(
        slide=slide,
        status=RunStatus.DONE,
        created_by=user,
        config=pipeline_output["config"],
        chunk_size=1,
        slide_sha256=slide.sha256,
        models_used=pipeline_output["models_used"],
        software_version=software_version(),
        device="cpu",
        timings=pipeline_output["timings"],
        summary=pipeline_output["summary"],
        cell_set=cell_set,
        started_at=now,
        finished_at=now,
    )


@pytest.fixture
def as_user():
    """A fresh API client authenticated as ``user``."""
    from rest_framework.test import APIClient

    def _as(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return _as


def report_url(run, tail: str = "") -> str:
    return f"/api/analyses/{run.pk}/report/{tail}"


def flagged_cells(client, run) -> list[dict]:
    """Every cell of the "needs review" group, page by page, as the gallery lists them."""
    cells, page = [], 1
    while True:
        body = client.get(report_url(run, "cells/"), {"group": "needs_review", "page": page}).json()
        cells += body["cells"]
        if page >= body["pages"]:
            return cells
        page += 1
