"""Redis restarts in the middle of an analysis run and of an ingest; both still finish.

Everything runs out of process, as deployed: a PostgreSQL and a Redis of the test's own (a
shared one is never restarted), a real ``manage.py qcluster`` worker, and the work queued by
the app's services in a separate process. Redis keeps no data across the restart (no RDB, no
AOF: the worst case, a crash), so whatever was queued in it is gone; the database rows, their
leases and the sweeps must bring the work back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.conftest import REPO, SLIDE_FILE
from tests.live import PrivatePostgres, PrivateRedis, seed, server_env

pytestmark = pytest.mark.slow
LEASE_S = 5

WORLD = f"""
from pathlib import Path
from django.contrib.auth import get_user_model
from apps.accounts.services import create_project
from apps.slides import services
owner = get_user_model().objects.create_user("owner", password="owner-pass-123")
project = create_project(name="Marrow study", created_by=owner)
project.toi_tile_size = 600  # many TOIs, so the run has many chunks to be in the middle of
project.save(update_fields=["toi_tile_size"])
intake = services.register_path(project=project, path=Path({str(SLIDE_FILE)!r}), user=owner)
services.ingest(intake.slide.pk)
print(json.dumps({{"slide": intake.slide.pk}}))
"""

START_RUN = """
from django.contrib.auth import get_user_model
from django.db import transaction
from apps.analysis.services import start_run
from apps.slides.models import Slide
with transaction.atomic():
    run = start_run(slide=Slide.objects.get(pk=SLIDE), user=get_user_model().objects.get())
print(json.dumps(run.pk))
"""

UPLOAD = f"""
from pathlib import Path
from django.contrib.auth import get_user_model
from django.db import transaction
from apps.accounts.services import create_project
from apps.slides import services
owner = get_user_model().objects.get()
with transaction.atomic():
    # Another project: in the first one the same file is already a slide (a duplicate).
    intake = services.take_in_upload(
        project=create_project(name="Second study", created_by=owner), chunks=[Path({str(SLIDE_FILE)!r}).read_bytes()],
        filename="again.svs", user=owner, name="a second copy",
    )
print(json.dumps(intake.slide.pk))
"""


@pytest.fixture
def stack(tmp_path) -> Iterator[dict]:
    """A private PostgreSQL and Redis, a migrated database with a ready slide, the env."""
    pg, redis = PrivatePostgres(), PrivateRedis(tmp_path / "redis")
    try:
        pg.start()
        redis.start()
        env = server_env(
            tmp_path,
            DATABASE_URL=pg.url,
            REDIS_URL=redis.url,
            Q_SYNC="false",
            Q_WORKERS="1",
            ANALYSIS_CHUNK_SIZE="1",
            ANALYSIS_DEVICE="cpu",
            ANALYSIS_LEASE_S=str(LEASE_S),
            SLIDE_INGEST_REQUEUE_S=str(LEASE_S),
            LOG_LEVEL="INFO",  # the qcluster logs say what happened when a test fails
        )
        world = seed(env, WORLD)
        yield {"env": env, "redis": redis, "pg": pg, "tmp": tmp_path, **world}
    finally:
        redis.stop()
        pg.close()


@pytest.fixture
def qcluster(stack) -> Iterator[Callable[[], subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(stack["tmp"] / f"qcluster-{len(started)}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=REPO,
            env=stack["env"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the workers go with it
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def query(stack: dict, sql: str, *args) -> tuple | None:
    with psycopg.connect(stack["pg"].url) as conn:
        return conn.execute(sql, args).fetchone()


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.5
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def restart_redis(stack: dict) -> None:
    stack["redis"].stop()
    time.sleep(2)  # the worker notices: its broker calls fail for a while
    stack["redis"].start()


def test_an_analysis_run_finishes_when_redis_goes_down_in_its_middle(stack, qcluster):
    # Queued first, the worker after: the run (seconds long) starts while this test watches.
    run_id = seed(stack["env"], f"SLIDE = {stack['slide']}\n" + START_RUN)
    qcluster()
    wait_for(
        lambda: query(
            stack, "select 1 from analysis_analysisrun where id = %s and status = 'running'", run_id
        ),
        600,  # a fresh qcluster imports torch: slow on a loaded 2-core machine
        "the worker to start the run",
        poll=0.05,
    )

    stack["redis"].stop()
    (status_at_stop,) = query(
        stack, "select status from analysis_analysisrun where id = %s", run_id
    )
    time.sleep(3)  # steps finish and fail to queue the next ones; progress pushes fail
    stack["redis"].start()
    assert status_at_stop == "running", "the run ended before Redis went down"

    status, error = wait_for(
        lambda: query(
            stack,
            "select status, error from analysis_analysisrun "
            "where id = %s and status in ('done', 'failed', 'cancelled')",
            run_id,
        ),
        300,
        "the run to finish",
    )
    assert (status, error) == ("done", "")
    (cells,) = query(
        stack,
        "select count(*) from annotations_annotation a join analysis_analysisrun r "
        "on a.set_id = r.cell_set_id where r.id = %s",
        run_id,
    )
    (summary_cells,) = query(
        stack, "select (summary->>'cells')::int from analysis_analysisrun where id = %s", run_id
    )
    assert cells == summary_cells > 0


def test_an_ingest_queued_before_a_redis_restart_is_queued_again_and_finishes(stack, qcluster):
    # No worker yet: the ingest sits in Redis, and the restart loses it (a crash, no AOF).
    slide_id = seed(stack["env"], UPLOAD)
    restart_redis(stack)
    assert query(stack, "select status from slides_slide where id = %s", slide_id) == ("pending",)

    qcluster()

    status, error = wait_for(
        lambda: query(
            stack,
            "select status, error from slides_slide where id = %s and status <> 'pending'",
            slide_id,
        ),
        240,
        "the sweep to queue the ingest again and a worker to finish it",
    )
    assert (status, error) == ("ready", "")
