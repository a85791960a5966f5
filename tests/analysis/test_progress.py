"""Live progress over the websocket: events in order, the final "done", catch-up, outsiders out.

The run's steps are run by a small in-test worker thread (the tasks the services queue, taken
in order), while a channels ``WebsocketCommunicator`` listens as the page would. This is the
embedded default: no Redis, so the consumer reads the run's row.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from apps.analysis import services, tasks
from apps.analysis.models import PROGRESS_STAGES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue(monkeypatch):
    """What the services queue, kept for :func:`work` instead of django-q2."""
    jobs: deque[tuple[str, int]] = deque()
    monkeypatch.setattr(
        services, "_enqueue", lambda task, object_id: jobs.append((task, object_id))
    )
    return jobs


def work(jobs: deque) -> None:
    """One worker: take queued steps until none is left."""
    while jobs:
        task, object_id = jobs.popleft()
        getattr(tasks, task)(object_id)


def communicator(user, run_id: int) -> WebsocketCommunicator:
    from channels.routing import URLRouter

    from apps.analysis.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/analyses/{run_id}/")
    comm.scope["user"] = user
    return comm


async def listen(
    comm: WebsocketCommunicator, timeout: float = 120, on_first: Callable[[], None] | None = None
) -> list[dict]:
    connected, _ = await comm.connect()
    assert connected
    events = [await comm.receive_json_from(timeout=timeout)]
    if on_first is not None:
        on_first()  # e.g. start the worker only once the state on connect has arrived
    deadline = time.monotonic() + timeout  # a whole-run bound: a dead worker fails, never hangs
    while events[-1]["status"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"no final state after {timeout} s: {events[-1]}"
        events.append(await comm.receive_json_from(timeout=timeout))
    await comm.disconnect()
    return events


@pytest.mark.skipif(
    "sqlite" in django_settings.DATABASES["default"]["ENGINE"],
    reason="SQLite's in-memory test database locks whole tables across threads without waiting:"
    " the worker thread's writes can fail against the consumer's reads (CI runs it on PostgreSQL)",
)
def test_the_websocket_shows_progress_in_stage_order_and_ends_done(
    slide, owner, queue, settings
) -> None:
    settings.ANALYSIS_POLL_MS = 50
    run = services.start_run(slide=slide, user=owner)
    # The worker starts once the page has its first state: on a loaded machine a fixed delay
    # could let the run start before the socket connects.
    worker = threading.Thread(target=work, args=(queue,))
    events = async_to_sync(listen)(communicator(owner, run.pk), on_first=worker.start)
    worker.join()

    assert events[0]["status"] == "queued"  # sent on connect, before any work
    assert events[-1]["status"] == "done" and events[-1]["cells_found"] > 0
    assert len(events) >= 4
    # Stages start in pipeline order and each one's count only grows.
    started = [
        max((i for i, s in enumerate(PROGRESS_STAGES) if s in e["stages"]), default=-1)
        for e in events
    ]
    assert started == sorted(started)
    for stage in PROGRESS_STAGES:
        done = [e["stages"][stage]["done"] for e in events if stage in e["stages"]]
        assert done == sorted(done), stage
    assert all(s["done"] == s["total"] for s in events[-1]["stages"].values())


def test_a_page_opened_after_the_run_finished_gets_the_result_at_once(slide, owner, queue) -> None:
    run = services.start_run(slide=slide, user=owner)
    work(queue)
    events = async_to_sync(listen)(communicator(owner, run.pk), timeout=5)
    assert [e["status"] for e in events] == ["done"]
    assert events[0]["sets"]["cell"] is not None


def test_an_outsider_is_refused_the_websocket(slide, owner, outsider, queue) -> None:
    run = services.start_run(slide=slide, user=owner)

    async def connect() -> bool:
        comm = communicator(outsider, run.pk)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert async_to_sync(connect)() is False
