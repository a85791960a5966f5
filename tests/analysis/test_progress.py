"""Live progress over the websocket: events in order, the final "done", catch-up, outsiders out.

The run's steps are run by a small in-test worker thread (the tasks the services queue, taken
in order), while a channels ``WebsocketCommunicator`` listens as the page would. This is the
embedded default: no Redis, so the consumer reads the run's row.
"""

from __future__ import annotations

import threading
from collections import deque

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

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


async def listen(comm: WebsocketCommunicator, timeout: float = 120) -> list[dict]:
    connected, _ = await comm.connect()
    assert connected
    events = [await comm.receive_json_from(timeout=timeout)]
    while events[-1]["status"] not in ("done", "failed", "cancelled"):
        events.append(await comm.receive_json_from(timeout=timeout))
    await comm.disconnect()
    return events


def test_the_websocket_shows_progress_in_stage_order_and_ends_done(
    slide, owner, queue, settings
) -> None:
    settings.ANALYSIS_POLL_MS = 50
    run = services.start_run(slide=slide, user=owner)
    worker = threading.Timer(0.5, work, args=(queue,))
    worker.start()
    events = async_to_sync(listen)(communicator(owner, run.pk))
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
