"""Live progress in a real browser, on the app as it is deployed: daphne and a qcluster worker
as separate processes on one SQLite file, so the in-memory channel layer cannot carry the
events. The embedded default (no Redis: the consumer reads the run's row) always runs; the
Redis variant (the workers push through channels_redis) runs where REDIS_URL is set (CI).

The page's own WebSocket is wrapped before any script runs, so the test sees every state the
page received, in order, and then checks what the page shows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from apps.analysis.models import PROGRESS_STAGES
from tests.browser import *  # noqa: F403
from tests.browser import login
from tests.conftest import REPO, SLIDE_FILE

# The database fixture is for the shared autouse fixtures; the app under test has its own.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

#: Creates the owner, a project with a 600 px TOI grid (several chunks) and the ready slide.
SETUP = """
from pathlib import Path
from django.contrib.auth import get_user_model
from apps.accounts.models import Role
from apps.accounts.services import add_member, create_project
from apps.slides import services
user = get_user_model().objects.create_user("owner", password="owner-pass-123")
project = create_project(name="live progress", created_by=user)
add_member(project=project, user=user, role=Role.ADMIN)
project.toi_tile_size = 600
project.save(update_fields=["toi_tile_size"])
slide = services.register_path(project=project, path=Path({path!r}), user=user).slide
services.ingest(slide.pk)
slide.refresh_from_db()
assert slide.status == "ready", slide.error
print(slide.pk)
"""
#: Keeps every message the page's sockets receive, before the page's own handler runs.
RECORD_SOCKET = """
window.__runEvents = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => window.__runEvents.push(JSON.parse(event.data)));
  }
};
"""
STATUS_ORDER = ["queued", "running", "done"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 180
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(params=["embedded", "redis"])
def deployed(request, tmp_path) -> Iterator[SimpleNamespace]:
    """daphne + one qcluster worker on their own state folder; the ready slide's id."""
    if not (REPO / "staticfiles" / "bmadcc" / "slides.js").exists():
        pytest.fail("static files are not collected: run manage.py collectstatic (test.sh does)")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    if request.param == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("needs REDIS_URL (CI)")
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    env.update(
        BMADCC_VAR_DIR=str(tmp_path / "var"),
        BMADCC_ALLOW_DEV_SECRET="true",
        DEBUG="false",
        MODEL_DIR=str(tmp_path / "no-models"),
        Q_SYNC="false",
        Q_WORKERS="1",
        Q_NAME=f"analysis-live-{os.getpid()}-{time.monotonic_ns()}",  # its own Redis queue
        ANALYSIS_CHUNK_SIZE="1",
        ANALYSIS_DEVICE="cpu",
        ANALYSIS_POLL_MS="100",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=REPO, env=env, check=True)
    setup = SETUP.format(path=str(SLIDE_FILE))
    out = subprocess.run(
        [*manage, "shell", "-v0", "-c", setup], cwd=REPO, env=env, check=True, capture_output=True
    )
    slide_id = int(out.stdout.split()[-1])
    port = free_port()
    started: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        proc = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=open(log, "wb"),  # noqa: SIM115 (lives as long as the process)
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole after the test
        )
        started.append(proc)
        return proc, log

    try:
        worker, worker_log = start("qcluster", [*manage, "qcluster"])
        daphne, daphne_log = start(
            "daphne",
            [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
            + ["bmadcc_web.asgi:application"],
        )
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(f"{url}/login/"), daphne, daphne_log, "daphne")
        wait_until(lambda: b"running." in worker_log.read_bytes(), worker, worker_log, "qcluster")
        yield SimpleNamespace(url=url, slide_id=slide_id, mode=request.param)
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_viewer_shows_a_runs_progress_live_in_order_and_then_done(new_page, deployed) -> None:
    page = new_page()
    page.add_init_script(RECORD_SOCKET)
    login(page, deployed, "owner", "owner-pass-123")
    page.goto(f"{deployed.url}/slides/{deployed.slide_id}/view/")
    page.get_by_test_id("analyse").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-status]')?.textContent.includes('done')",
        timeout=240_000,
    )
    events = page.evaluate("window.__runEvents")

    statuses = [e["status"] for e in events]
    assert statuses[-1] == "done", statuses
    assert [STATUS_ORDER.index(s) for s in statuses] == sorted(
        STATUS_ORDER.index(s) for s in statuses
    )
    # The cells arrived chunk by chunk, not only at the end.
    partial = [
        e
        for e in events
        if 0 < e["stages"].get("cells", {}).get("done", 0) < e["stages"]["cells"]["total"]
    ]
    assert partial, events
    for stage in PROGRESS_STAGES:
        done = [e["stages"][stage]["done"] for e in events if stage in e["stages"]]
        assert done == sorted(done), (stage, done)
    final = events[-1]
    assert all(s["done"] == s["total"] for s in final["stages"].values())
    assert final["sets"]["cell"] is not None and final["cells_found"] > 0
    # And the page shows the final state.
    assert (
        page.get_by_test_id("run-cells")
        .inner_text()
        .startswith(f"{final['cells_found']} cells found")
    )
    cells_bar = page.locator(".run-stages progress[data-stage=cells]")
    assert cells_bar.evaluate("bar => bar.value === bar.max && bar.max > 1")
