"""Analysis test helpers. The cast and the slide come from tests/conftest.py: ``member`` is an
annotator, ``owner`` the project admin, ``reviewer`` the signing pathologist, ``outsider`` in
another project, and ``slide`` the real Aperio file cmu-1-small-region.svs (2220 x 2967 px).

Runs use the baselines (an empty model folder), a 1,200 px TOI grid and one TOI per chunk, so
the real slide's tiles of interest become several chunks.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def analysis_settings(settings, tmp_path):
    from apps.analysis import runtime

    settings.MODEL_DIR = tmp_path / "no-models"
    settings.ANALYSIS_CHUNK_SIZE = 1
    settings.ANALYSIS_DEVICE = "cpu"
    runtime.clear()
    yield settings
    runtime.clear()


#: The TOI grid of the test project (level-0 px); runs default to it.
GRID = 1200


@pytest.fixture(autouse=True)
def small_grid(project):
    project.toi_tile_size = GRID
    project.save(update_fields=["toi_tile_size"])
    return project


@pytest.fixture
def as_user():
    """A fresh API client authenticated as ``user``."""
    from rest_framework.test import APIClient

    def _as(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return _as


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Run what the request queued, as the worker would (django-q2 sync mode, in-process)."""

    def _start(client, payload: dict) -> tuple[int, dict]:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/analyses/", payload, format="json")
        return response.status_code, response.json()

    return _start
