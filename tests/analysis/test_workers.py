"""Real ``manage.py qcluster`` processes on one Redis queue and one PostgreSQL database.

They run in CI (PostgreSQL + Redis), and locally when REDIS_URL and a PostgreSQL DATABASE_URL
are set. Each test gets its own queue, so other test runs on the same
Redis do not take its tasks (``Q_NAME``).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings as django_settings

from ml.pipeline import PipelineConfig, analyse
from tests.analysis.conftest import GRID
from tests.conftest import REPO, SLIDE_FILE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL")
        or not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="needs REDIS_URL and a PostgreSQL DATABASE_URL (CI)",
    ),
]
LEASE_S = 5


@pytest.fixture
def cluster(tmp_path, monkeypatch, slide_store) -> Iterator[Callable[[str], subprocess.Popen]]:
    """Start qcluster processes (one worker each) on this test's own queue; all killed after."""
    from django.apps import apps
    from django.db import connection
    from django_q.conf import Conf

    name = f"analysis-test-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    monkeypatch.setattr(Conf, "PREFIX", name)  # the salt of the signed task payloads
    # The schedule the migration made was flushed with the last transactional test's tables.
    migration = importlib.import_module("apps.analysis.migrations.0002_finished_runs_are_immutable")
    migration.schedule_sweep(apps, None)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "Q_NAME": name,
        "Q_SYNC": "false",
        "Q_WORKERS": "1",
        "MODEL_DIR": str(tmp_path / "no-models"),
        "SLIDE_STORAGE_DIR": str(slide_store),
        "ANALYSIS_CHUNK_SIZE": "1",
        "ANALYSIS_DEVICE": "cpu",
        "ANALYSIS_LEASE_S": str(LEASE_S),
    }
    started: list[subprocess.Popen] = []

    def start(label: str) -> subprocess.Popen:
        log = open(tmp_path / f"qcluster-{label}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 takes the workers too
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def session_of(worker: str) -> int | None:
    """The process group (session) of the process named ``hostname:pid``, if it lives."""
    try:
        return os.getsid(int(worker.rsplit(":", 1)[1]))
    except ProcessLookupError:
        return None


def start_run(slide, user) -> int:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    response = client.post("/api/analyses/", {"slide": slide.pk}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def finished(run_id: int):
    from apps.analysis.models import AnalysisRun

    run = AnalysisRun.objects.get(pk=run_id)
    return run if run.finished else None


def library_cell_count() -> int:
    config = PipelineConfig(tile_size=GRID)
    return len(analyse(SLIDE_FILE, models_dir=None, device="cpu", config=config).cells)


def test_two_qcluster_processes_share_the_chunks_of_one_run(slide, owner, cluster) -> None:
    assert django_settings.ANALYSIS_PUSH  # the workers push progress through Redis
    first, second = cluster("a"), cluster("b")
    run_id = start_run(slide, owner)
    run = wait_for(lambda: finished(run_id), 300, "the run to finish")
    assert run.status == "done", run.error
    workers = {c.worker for c in run.chunks.all()}
    sessions = {session_of(w) for w in workers}
    assert sessions == {first.pid, second.pid}, workers
    assert run.summary["cells"] == run.cell_set.annotations.count() == library_cell_count()


def test_a_worker_killed_holding_a_chunk_loses_nothing(slide, owner, cluster) -> None:
    from apps.analysis.models import AnalysisChunk

    doomed = cluster("doomed")
    run_id = start_run(slide, owner)
    held = wait_for(
        lambda: AnalysisChunk.objects.filter(run_id=run_id, status="running").first(),
        240,
        "the first worker to hold a chunk",
    )
    assert session_of(held.worker) == doomed.pid
    os.killpg(doomed.pid, signal.SIGKILL)  # kill -9, the whole worker
    doomed.wait()
    survivor = cluster("survivor")

    # The lease passes, the sweep queues the chunk again and the survivor takes it.
    run = wait_for(lambda: finished(run_id), 300, "the survivor to finish the run")
    assert run.status == "done", run.error
    held.refresh_from_db()
    assert held.status == "done" and held.attempts >= 2
    assert len(held.workers) >= 2 and held.worker != held.workers[0]
    assert session_of(held.worker) == survivor.pid
    assert run.summary["cells"] == run.cell_set.annotations.count() == library_cell_count()
    # Nothing half-written: one set of each stage for the run, no orphans.
    from apps.annotations.models import AnnotationSet

    assert AnnotationSet.objects.filter(slide=slide, source="model_run").count() == 3
