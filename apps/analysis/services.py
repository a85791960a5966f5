"""Analysis runs: every write, and the three steps a run's tasks take (front, chunk, assemble).

A run's life (see :mod:`apps.analysis.models`):

1. :func:`start_run` validates the slide and the config overrides, stores the full config and
   queues the front step.
2. :func:`run_front_step` claims the run, runs ``ml.pipeline.run_front`` (thumbnail, ROI,
   TOI), stores the decisions, splits the chosen TOIs into chunks and queues one task each.
3. :func:`run_chunk_step` claims a chunk (conditional update with a lease), runs
   ``ml.pipeline.stream_cells`` on its tiles and records the cells on the chunk row; then it
   claims the run's next queued chunk (one ahead while another stays queued for other
   workers) with the slide's read-ahead still warm, until none is left. The last chunk to finish queues the assembly, exactly once (a
   conditional update on the run).
4. :func:`assemble_step` de-duplicates and counts (``ml.pipeline.assemble``) and writes the ROI,
   TOI and cell ``model_run`` sets and the run's outcome in one transaction.

A dead worker's step is taken again when its lease passes (:func:`sweep`, scheduled every
minute, and the claim queries themselves); a step that keeps failing fails the run with the
reason. Every change of a run or chunk is pushed to the run's channel group (with Redis).
"""

from __future__ import annotations

import logging
import time
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from typing import Any

import numpy as np
import shapely
import torch
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.annotations.errors import BulkInvalid
from apps.annotations.models import Stage, TileLabel
from apps.annotations.services import create_model_run_set, ensure_label_schema
from apps.registry import versions as registry
from apps.slides.models import Slide, SlideStatus
from ml.agreement.shapes import to_geometries
from ml.cards import ModelCardError
from ml.count import UNCLASSIFIED
from ml.geometry import Tile, polygon_to_json
from ml.pipeline import (
    AnalysisResult,
    ConfigError,
    FrontResult,
    PipelineConfig,
    Stages,
    assemble,
    run_front,
    stream_cells,
)
from ml.slide import SlideOpenError, SlideReadError, open_slide
from ml.stages.cells import Cell

from . import runtime, selectors
from .errors import InvalidConfig, RunFailure, RunStateConflict, SlideNotReady
from .models import TRANSITIONS, AnalysisChunk, AnalysisRun, ChunkStatus, RunStatus

log = logging.getLogger(__name__)

#: Errors that repeat on every attempt: the run fails at once, with their message.
PERMANENT_ERRORS = (ModelCardError, SlideOpenError, SlideReadError, ConfigError, RunFailure)
#: The model-card task of each pipeline stage (ml.pipeline.Stages.sources keys).
CARD_TASKS = {
    "roi": "roi",
    "toi": "toi",
    "cells": "cell_segmentation",
    "classification": "cell_classification",
}
#: What a run keeps of the registry version it chose for a stage (besides name and sha256).
VERSION_KEYS = ("card", "version_id", "version")
#: Progress is written (and pushed) at most this often per step, and at every stage's end.
PROGRESS_INTERVAL_S = 0.25


# -- starting, cancelling, retrying ---------------------------------------------------------


@transaction.atomic
def start_run(
    *,
    slide: Slide,
    user: User,
    overrides: dict[str, Any] | None = None,
    retry_of: AnalysisRun | None = None,
) -> AnalysisRun:
    """Queue a run of ``slide`` with ``overrides`` over the default :class:`PipelineConfig`.

    Raises :class:`SlideNotReady` for a pending or failed slide, :class:`InvalidConfig` naming
    the field for an unknown key or a bad value.
    """
    if slide.status != SlideStatus.READY:
        reason = f": {slide.error}" if slide.error else ""
        raise SlideNotReady(f"the slide is {slide.status}{reason}", slide_status=slide.status)
    overrides = {} if overrides is None else overrides
    config = _config(slide, overrides)
    run = AnalysisRun.objects.create(
        slide=slide,
        created_by=user,
        retry_of=retry_of,
        config=config.to_dict(),
        overrides=overrides,
        models_used=_chosen_models(slide),
        chunk_size=settings.ANALYSIS_CHUNK_SIZE,
        slide_sha256=slide.sha256,
        software_version=software_version(),
        lease_expires=timezone.now() + _lease(),  # queued again by the sweep if not taken by then
    )
    _enqueue("run_front", run.pk)
    return run


def _chosen_models(slide: Slide) -> dict[str, dict[str, Any]]:
    """Per stage, the registry version the run will use (its card path, id, number, name and
    weights sha256), chosen now so that every step of the run uses the same cards whatever is
    activated meanwhile. Stages absent here use MODEL_DIR's card or their baseline."""
    chosen = registry.models_for_new_run(slide.project)
    return {stage: chosen[task] for stage, task in CARD_TASKS.items() if task in chosen}


def _cards(run: AnalysisRun) -> dict[str, str]:
    """``{card task: card path}`` of the versions chosen for ``run`` (see :func:`_chosen_models`)."""
    return {
        CARD_TASKS[stage]: used["card"]
        for stage, used in run.models_used.items()
        if stage in CARD_TASKS and used.get("card")
    }


def _config(slide: Slide, overrides: Any) -> PipelineConfig:
    if not isinstance(overrides, dict):
        raise InvalidConfig("config must be an object of pipeline settings", field="config")
    grid = slide.project.toi_tile_size
    try:
        config = PipelineConfig.from_dict({"tile_size": grid, **overrides})
    except ConfigError as exc:
        raise InvalidConfig(exc.message, field=exc.field) from exc
    if config.tile_size != grid:
        # The run's TOI set must line up with the annotators' tiles of the same project.
        raise InvalidConfig(
            f"tile_size must be the project's TOI grid ({grid} px), not {config.tile_size}",
            field="tile_size",
        )
    return config


@transaction.atomic
def ensure_run(*, slide: Slide, user: User) -> AnalysisRun | None:
    """The slide's latest queued, running or done run, or a new one (the demo's; idempotent).

    ``None`` when the slide is not ready (there is nothing to analyse yet).
    """
    if slide.status != SlideStatus.READY:
        return None
    live = [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DONE]
    existing = AnalysisRun.objects.filter(slide=slide, status__in=live).order_by("-pk").first()
    return existing or start_run(slide=slide, user=user)


def retry_run(*, run: AnalysisRun, user: User) -> AnalysisRun:
    """A new run with the same slide and overrides (a finished run is never edited)."""
    if not run.finished:
        raise RunStateConflict(
            f"run {run.pk} is still {run.status}; cancel it first", status=run.status
        )
    return start_run(slide=run.slide, user=user, overrides=run.overrides, retry_of=run)


@transaction.atomic
def cancel_run(*, run: AnalysisRun, user: User) -> AnalysisRun:
    """Stop ``run``: chunks not yet started are skipped; it says "cancelled by <user>"."""
    moved = _move(
        run.pk,
        RunStatus.CANCELLED,
        error=f"cancelled by {user.get_username()}",
        cancel_requested_by=user,
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    if not moved:
        raise RunStateConflict(f"run {run.pk} is already {run.status}", status=run.status)
    AnalysisChunk.objects.filter(run=run, status=ChunkStatus.QUEUED).update(
        status=ChunkStatus.SKIPPED
    )
    transaction.on_commit(lambda: publish(run.pk))
    return run


# -- the state machine ----------------------------------------------------------------------


def _move(run_id: int, to: str, **fields: Any) -> bool:
    """Move a run to ``to`` if the state machine allows it from its current status."""
    sources = [status for status, targets in TRANSITIONS.items() if to in targets]
    return bool(
        AnalysisRun.objects.filter(pk=run_id, status__in=sources).update(status=to, **fields)
    )


def _update_running(run_id: int, **fields: Any) -> bool:
    """Change a running run; a finished run is refused (False), as the database would."""
    return bool(AnalysisRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(**fields))


def _fail(run_id: int, reason: str) -> None:
    log.warning("analysis %s failed: %s", run_id, reason)
    if _move(run_id, RunStatus.FAILED, error=reason, finished_at=timezone.now()):
        AnalysisChunk.objects.filter(run_id=run_id, status=ChunkStatus.QUEUED).update(
            status=ChunkStatus.SKIPPED
        )
    publish(run_id)


def _reason(exc: Exception, step: str) -> str:
    if isinstance(exc, BulkInvalid):  # the pipeline wrote a shape the annotation store refuses
        first = "; ".join(f"item {e['index']}: {e['detail']}" for e in exc.errors[:3])
        return f"the {step} could not store its shapes: {exc.message} ({first})"
    if isinstance(exc, PERMANENT_ERRORS):
        return str(exc) if isinstance(exc, ModelCardError) else getattr(exc, "message", str(exc))
    log.exception("analysis %s: unexpected error", step)
    return f"unexpected error in the {step}: {exc}"


def _lease() -> timedelta:
    return timedelta(seconds=settings.ANALYSIS_LEASE_S)


# -- step 1: front --------------------------------------------------------------------------


def run_front_step(run_id: int) -> None:
    """Claim the run, decide ROI and TOIs, and queue its chunks. A claimed-elsewhere run is left."""
    run = _claim_front(run_id)
    if run is None:
        return
    if run.front_attempts > settings.ANALYSIS_MAX_ATTEMPTS:
        _fail(
            run_id,
            f"the front stages were started {run.front_attempts - 1} times and never finished",
        )
        return
    try:
        chunk_ids = _front(run)
    except Exception as exc:  # recorded on the run; the traceback is logged
        _fail(run_id, _reason(exc, "front stages (thumbnail, ROI, TOI)"))
        return
    publish(run_id)
    for chunk_id in chunk_ids:
        _enqueue("run_chunk", chunk_id)
    if not chunk_ids:
        _maybe_assemble(run_id)


def _claim_front(run_id: int) -> AnalysisRun | None:
    now = timezone.now()
    claimable = Q(status=RunStatus.QUEUED) | Q(
        status=RunStatus.RUNNING, front__isnull=True, lease_expires__lt=now
    )
    claimed = (
        AnalysisRun.objects.filter(claimable, pk=run_id)
        .filter(cancel_requested_by__isnull=True)
        .update(
            status=RunStatus.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            lease_expires=now + _lease(),
            front_attempts=F("front_attempts") + 1,
        )
    )
    return AnalysisRun.objects.select_related("slide").get(pk=run_id) if claimed else None


def _front(run: AnalysisRun) -> list[int]:
    stages, config = runtime.stages_for(PipelineConfig.from_dict(run.config), cards=_cards(run))
    used = models_used(stages, chosen=run.models_used)
    _update_running(run.pk, models_used=used, device=str(runtime.device()))
    with open_slide(run.slide.viewable_file) as slide:
        front = run_front(slide, stages, config, progress=_RunProgress(run.pk))
    return _store_front(run, front)


@transaction.atomic
def _store_front(run: AnalysisRun, front: FrontResult) -> list[int]:
    locked = AnalysisRun.objects.select_for_update().get(pk=run.pk)
    if locked.status != RunStatus.RUNNING or locked.front is not None:
        return []  # cancelled meanwhile, or another worker's retry got there first
    progress = dict(locked.progress)
    progress["cells"] = progress["classes"] = {"done": 0, "total": len(front.tois)}
    _update_running(
        run.pk,
        front=front.to_dict(),
        progress=progress,
        timings={**locked.timings, **front.timings},
        lease_expires=None,
    )
    # A queued chunk's lease is the time by which a worker should have taken it: a worker that
    # died with tasks fetched ahead from the broker loses them, and the sweep queues them again.
    deadline = timezone.now() + _lease()
    chunks = AnalysisChunk.objects.bulk_create(
        AnalysisChunk(
            run=run,
            index=i,
            tiles=[_tile_dict(t) for t in front.tois[start:end]],
            lease_expires=deadline,
        )
        for i, (start, end) in enumerate(chunk_spans(len(front.tois), run.chunk_size))
    )
    return [c.pk for c in chunks]


def chunk_spans(tiles: int, size: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each chunk of ``tiles`` TOIs: ``size`` tiles each, tapering at the end.

    Once at most two full chunks are left, each chunk takes half of what remains, down to
    single tiles (8, 5, 2, 1, 1 for the last 17 tiles at size 8). The run ends when its slowest
    worker does, and a worker that takes the last full chunk while the others run out of work
    leaves them idle for up to a whole chunk; halving bounds that wait by about one tile.
    """
    size, spans, start = max(1, size), [], 0
    while start < tiles:
        left = tiles - start
        step = size if left > 2 * size else min(size, -(-left // 2))
        spans.append((start, start + step))
        start += step
    return spans


def _tile_dict(tile: Tile) -> dict[str, int]:
    return {"col": tile.col, "row": tile.row, "x": tile.x, "y": tile.y, "w": tile.w, "h": tile.h}


class _RunProgress:
    """The front step's ``progress(stage, done, total)``: throttled writes of ``run.progress``.

    Each write also extends the run's lease: a front step that still reports is alive.
    """

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.stages: dict[str, dict[str, int]] = {}
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.stages[stage] = {"done": done, "total": total}
        now = time.monotonic()
        if done < total and now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        _update_running(
            self.run_id,
            progress=dict(self.stages),
            lease_expires=timezone.now() + _lease(),
        )
        publish(self.run_id)


def models_used(
    stages: Stages, chosen: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Per stage: the card's name, architecture and weights sha256, or ``baseline`` and its id.

    A stage whose card came from a registry version (``chosen``, see :func:`_chosen_models`)
    also keeps that version's card path, id and number, so the report names the version.
    """
    out: dict[str, dict[str, Any]] = {}
    for stage, source in stages.sources().items():
        card = stages.cards.get(CARD_TASKS[stage])
        version = {k: v for k, v in (chosen or {}).get(stage, {}).items() if k in VERSION_KEYS}
        if source.kind == "model" and card is not None:
            out[stage] = {
                "kind": "model",
                "name": card.name,
                "architecture": card.architecture,
                "weights_sha256": card.weights_sha256,
                **version,
            }
        else:
            out[stage] = {"kind": "baseline", "name": source.name, **version}
    return out


@cache
def software_version() -> str:
    """``bmadcc <version>; torch <version>``, from pyproject.toml (the app is not installed)."""
    with open(settings.BASE_DIR / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    return f"bmadcc {version}; torch {torch.__version__}"


# -- step 2: chunks -------------------------------------------------------------------------


def run_chunk_step(chunk_id: int) -> None:
    """Claim a chunk, segment and classify its tiles and record its cells; then take the run's
    next queued chunk, and so on, with the slide and its read-ahead kept warm in between.

    A worker that keeps taking chunks while any are queued balances the work whatever the
    broker handed out ahead (django-q2 fetches tasks before a worker is free), and reading
    runs on from one chunk into the next as it does in one ``ml.analyse``. A chunk already
    taken by another worker sends its task to the run's next queued chunk instead. The last
    chunk to finish queues the assembly.
    """
    chunk = _claim_chunk(chunk_id)
    if chunk is None:
        run_id = AnalysisChunk.objects.filter(pk=chunk_id).values_list("run_id", flat=True).first()
        chunk = None if run_id is None else _claim_next(run_id)
    # Well inside the task timeout, after which django-q2 would kill this worker.
    stop_at = time.monotonic() + settings.Q_TIMEOUT / 2
    while chunk is not None:
        chunk = _run_chunks(chunk, stop_at)


def _run_chunks(first: AnalysisChunk, stop_at: float) -> AnalysisChunk | None:
    """Work through ``first`` and the chunks taken ahead of it; returns the chunk to go on with.

    The next chunk is taken ahead, while the last tile of the one before is worked on, only
    when another one stays queued for the other workers; otherwise it is taken once this one
    is recorded (a cold first read, near the run's end only), so no worker sits idle while
    another holds two chunks.
    """
    run = first.run
    if run.status != RunStatus.RUNNING:  # cancelled or failed since the chunk was queued
        AnalysisChunk.objects.filter(pk=first.pk).update(status=ChunkStatus.SKIPPED)
        return None
    if first.attempts > settings.ANALYSIS_MAX_ATTEMPTS:
        _chunk_failed(first, "its worker stopped before finishing (the lease expired)")
        return None
    held = [first]  # claimed and not yet recorded, in order
    go_on = False

    def chunks() -> Iterator[tuple[AnalysisChunk, list[Tile]]]:
        nonlocal go_on
        chunk: AnalysisChunk | None = first
        while chunk is not None:
            yield chunk, [Tile(**t) for t in chunk.tiles]
            if time.monotonic() >= stop_at:
                return
            if AnalysisChunk.objects.filter(run=run, status=ChunkStatus.QUEUED).count() < 2:
                go_on = True
                return
            chunk = _claim_next(run.pk)
            if chunk is not None and chunk.attempts > settings.ANALYSIS_MAX_ATTEMPTS:
                _chunk_failed(chunk, "its worker stopped before finishing (the lease expired)")
                return
            if chunk is not None:
                held.append(chunk)

    try:
        stages, config = runtime.stages_for(PipelineConfig.from_dict(run.config), cards=_cards(run))
        with open_slide(run.slide.viewable_file) as slide:
            started = time.perf_counter()
            for chunk, cells, timings in stream_cells(
                slide, stages, config, chunks(), progress=_ChunkProgress()
            ):
                timings["cells"] = time.perf_counter() - started  # this chunk's turn
                _record_chunk(chunk, cells, timings)
                held.remove(chunk)
                started = time.perf_counter()
    except Exception as exc:  # recorded on the chunk and the run; the traceback is logged
        failed, ahead = held[0], held[1:]
        permanent = isinstance(exc, PERMANENT_ERRORS)
        _chunk_failed(failed, _reason(exc, f"chunk {failed.index}"), permanent=permanent)
        for chunk in ahead:  # claimed ahead and not started: back to the queue, uncharged
            _release(chunk)
        return None
    return _claim_next(run.pk) if go_on else None


def _record_chunk(chunk: AnalysisChunk, cells: list[Cell], timings: dict[str, float]) -> None:
    recorded = AnalysisChunk.objects.filter(
        pk=chunk.pk, status=ChunkStatus.RUNNING, worker=chunk.worker
    ).update(
        status=ChunkStatus.DONE,
        result=[c.to_dict(exact=True) for c in cells],
        cells_found=len(cells),
        tiles_done=len(chunk.tiles),
        timings=timings,
        error="",
        lease_expires=None,
        finished_at=timezone.now(),
    )
    publish(chunk.run_id)
    if recorded:
        _maybe_assemble(chunk.run_id)


def _claim_chunk(chunk_id: int) -> AnalysisChunk | None:
    """Take a queued chunk, or one whose worker's lease expired (that worker died)."""
    now = timezone.now()
    me = runtime.worker_id()
    claimable = Q(status=ChunkStatus.QUEUED) | Q(status=ChunkStatus.RUNNING, lease_expires__lt=now)
    claimed = AnalysisChunk.objects.filter(claimable, pk=chunk_id).update(
        status=ChunkStatus.RUNNING,
        worker=me,
        lease_expires=now + _lease(),
        attempts=F("attempts") + 1,
        tiles_done=0,
        cells_found=0,
        started_at=now,
    )
    if not claimed:
        return None
    chunk = AnalysisChunk.objects.select_related("run__slide").get(pk=chunk_id)
    # Ours until the lease passes, so this read-modify-write is safe.
    chunk.workers = [*chunk.workers, me]
    chunk.save(update_fields=["workers"])
    return chunk


def _claim_next(run_id: int) -> AnalysisChunk | None:
    """The run's first queued chunk, claimed; ``None`` when none is left or the run stopped."""
    candidates = AnalysisChunk.objects.filter(
        run_id=run_id, status=ChunkStatus.QUEUED, run__status=RunStatus.RUNNING
    ).order_by("index")
    # Another worker may claim a candidate first; the next ones are tried.
    for chunk_id in candidates.values_list("pk", flat=True)[:4]:
        chunk = _claim_chunk(chunk_id)
        if chunk is not None:
            return chunk
    return None


def _release(chunk: AnalysisChunk) -> None:
    """Give back a chunk claimed ahead but never started (its attempt is not counted)."""
    released = AnalysisChunk.objects.filter(
        pk=chunk.pk, status=ChunkStatus.RUNNING, worker=chunk.worker
    ).update(
        status=ChunkStatus.QUEUED,
        attempts=F("attempts") - 1,
        lease_expires=timezone.now() + _lease(),
    )
    if released:
        _enqueue("run_chunk", chunk.pk)


class _ChunkProgress:
    """``progress(chunk, done, total)`` of :func:`ml.pipeline.stream_cells`: throttled, and
    extends the chunk's lease."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, chunk: AnalysisChunk, done: int, total: int) -> None:
        now = time.monotonic()
        if done == 0 or done >= total or now - self.last < PROGRESS_INTERVAL_S:
            return  # the start says nothing new; the end is recorded with the result
        self.last = now
        AnalysisChunk.objects.filter(
            pk=chunk.pk, status=ChunkStatus.RUNNING, worker=chunk.worker
        ).update(tiles_done=done, lease_expires=timezone.now() + _lease())
        publish(chunk.run_id)


def _chunk_failed(chunk: AnalysisChunk, reason: str, *, permanent: bool = True) -> None:
    tiles = ", ".join(f"({t['col']}, {t['row']})" for t in chunk.tiles)
    if permanent or chunk.attempts >= settings.ANALYSIS_MAX_ATTEMPTS:
        AnalysisChunk.objects.filter(pk=chunk.pk).update(
            status=ChunkStatus.FAILED, error=reason, lease_expires=None, finished_at=timezone.now()
        )
        tries = "" if permanent else f" after {chunk.attempts} attempts"
        _fail(chunk.run_id, f"chunk {chunk.index} (tiles {tiles}) failed{tries}: {reason}")
        return
    AnalysisChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.RUNNING).update(
        status=ChunkStatus.QUEUED, error=reason, lease_expires=timezone.now() + _lease()
    )
    _enqueue("run_chunk", chunk.pk)


def _maybe_assemble(run_id: int) -> None:
    """Assemble once every chunk is done; the conditional update makes it once.

    The worker that recorded the last chunk assembles at once, with its models loaded, rather
    than queueing a task that another worker would pick up a broker poll later. The claim holds
    a lease, so a worker killed while assembling leaves the assembly to the sweep, as before.
    """
    if AnalysisChunk.objects.filter(run_id=run_id).exclude(status=ChunkStatus.DONE).exists():
        return
    now = timezone.now()
    if _claim_assembly(run_id, Q(assemble_started_at__isnull=True), now):
        assemble_step(run_id)


def _claim_assembly(run_id: int, condition: Q, now) -> bool:
    return bool(
        AnalysisRun.objects.filter(condition, pk=run_id, status=RunStatus.RUNNING)
        .exclude(front__isnull=True)
        .update(assemble_started_at=now, lease_expires=now + _lease())
    )


# -- step 3: assemble -----------------------------------------------------------------------


def assemble_step(run_id: int) -> None:
    """Count the run's cells and write its sets and outcome in one transaction."""
    run = AnalysisRun.objects.select_related("slide__project", "created_by").get(pk=run_id)
    if run.status != RunStatus.RUNNING or run.cell_set_id is not None:
        return
    started = time.perf_counter()
    try:
        result = _assembled(run)
        _write_result(run, result, started)
    except Exception as exc:  # recorded on the run; the traceback is logged
        _fail(run_id, _reason(exc, "assembly"))
        return
    publish(run_id)


def _assembled(run: AnalysisRun) -> AnalysisResult:
    stages, config = runtime.stages_for(PipelineConfig.from_dict(run.config), cards=_cards(run))
    chunks = list(run.chunks.order_by("index").values_list("result", "timings"))
    cells = [Cell.from_dict(d) for result, _ in chunks for d in result or []]
    timings: dict[str, float] = {}
    for _, chunk_timings in chunks:
        for key, seconds in (chunk_timings or {}).items():
            timings[key] = timings.get(key, 0.0) + seconds
    front = FrontResult.from_dict(run.front or {})
    return assemble(front, cells, stages, config, device=run.device, cell_timings=timings)


@transaction.atomic
def _write_result(run: AnalysisRun, result: AnalysisResult, started: float) -> None:
    locked = AnalysisRun.objects.select_for_update().get(pk=run.pk)
    if locked.status != RunStatus.RUNNING or locked.cell_set_id is not None:
        return  # cancelled meanwhile, or a retried assembly already wrote it
    slide, user = run.slide, run.created_by
    if user is None:
        raise RunFailure("the account that started the run was deleted; retry the run")
    ensure_label_schema(project=slide.project)
    note = f"analysis run {run.pk}"
    roi_set = create_model_run_set(
        slide=slide, stage=Stage.ROI, user=user, note=note, items=_roi_items(result)
    )
    toi_set = create_model_run_set(
        slide=slide, stage=Stage.TOI, user=user, note=note, items=_toi_items(result)
    )
    cell_set = create_model_run_set(
        slide=slide, stage=Stage.CELL, user=user, note=note, items=_cell_items(result)
    )
    out = result.to_dict()
    now = timezone.now()
    timings = {k: round(v, 3) for k, v in result.timings.items()}
    timings["assemble"] = round(time.perf_counter() - started, 3)
    if locked.started_at is not None:
        timings["total"] = round((now - locked.started_at).total_seconds(), 3)
    summary = {k: out[k] for k in ("count", "alerts", "notes", "review_count", "throughput")}
    summary["cells"] = len(result.cells)
    summary["classifier_classes"] = out["classifier_classes"]
    moved = _move(
        run.pk,
        RunStatus.DONE,
        roi_set=roi_set,
        toi_set=toi_set,
        cell_set=cell_set,
        summary=summary,
        timings={**locked.timings, **timings},
        lease_expires=None,
        finished_at=now,
    )
    if not moved:
        raise RunStateConflict(f"run {run.pk} stopped while its result was written")


def _storable(coordinates: list[list[list[list[float]]]]) -> list[dict[str, Any]]:
    """GeoJSON Polygons the annotation store accepts.

    A traced mask whose pixels touch only at a corner gives a pinched (self-touching) ring,
    which the store refuses; it is repaired by the one repair rule
    (:func:`ml.agreement.shapes.to_geometries`) and its largest part kept, rounded to 0.1 px.
    """
    out = []
    for rings in coordinates:
        if shapely.Polygon(rings[0], rings[1:]).is_valid:
            out.append({"type": "Polygon", "coordinates": rings})
            continue
        (repaired,) = to_geometries([{"type": "Polygon", "coordinates": rings}])
        parts = getattr(repaired, "geoms", [repaired])
        largest = max((g for g in parts if g.geom_type == "Polygon"), key=lambda g: g.area)
        ring_arrays = [np.asarray(largest.exterior.coords)]
        ring_arrays += [np.asarray(h.coords) for h in largest.interiors]
        out.append({"type": "Polygon", "coordinates": polygon_to_json(ring_arrays)})
    return out


def _roi_items(result: AnalysisResult) -> list[dict[str, Any]]:
    geometries = _storable([polygon_to_json(p) for p in result.roi.polygons])
    return [{"geometry": g} for g in geometries]


def _toi_items(result: AnalysisResult) -> list[dict[str, Any]]:
    return [
        {
            "tile_col": d.tile.col,
            "tile_row": d.tile.row,
            "label": TileLabel.TOI if d.keep else TileLabel.NON_TOI,
            "probabilities": {"score": round(d.score, 4), "roi_fraction": round(d.roi_fraction, 4)},
        }
        for d in result.tiles
    ]


def _cell_items(result: AnalysisResult) -> list[dict[str, Any]]:
    """Cells with their class ("" when no classifier ran), probabilities and review flag.

    ``probabilities`` is ``{"classes": {key: p}, "review": bool}`` (the classifier's classes),
    or ``None`` when no classifier is installed.
    """
    classes = result.classifier_classes or ()
    records = [cell.to_dict() for cell in result.cells]
    geometries = _storable([[r["polygon"]] for r in records])
    items = []
    for cell, record, geometry in zip(result.cells, records, geometries, strict=True):
        probabilities = None
        if record["probabilities"] is not None:
            by_class = dict(zip(classes, record["probabilities"], strict=True))
            probabilities = {"classes": by_class, "review": cell.review}
        items.append(
            {
                "geometry": geometry,
                "label": "" if cell.label == UNCLASSIFIED else cell.label,
                "probabilities": probabilities,
            }
        )
    return items


# -- faults: expired leases -----------------------------------------------------------------


def sweep() -> int:
    """Queue again every step whose lease passed; returns how many were queued.

    A running step's lease passes when its worker stopped reporting (it died); a queued step's
    when no worker took it in time (the broker lost it, or a killed worker had fetched it
    ahead). Each is queued again at most once per lease. Runs every minute (a django-q2
    schedule); the claims repeat the checks, so a step queued twice still runs once.
    """
    now = timezone.now()
    renewed = {"lease_expires": now + _lease()}
    queued = 0
    stale_chunks = AnalysisChunk.objects.filter(
        status__in=[ChunkStatus.QUEUED, ChunkStatus.RUNNING],
        lease_expires__lt=now,
        run__status=RunStatus.RUNNING,
    )
    for chunk_id in stale_chunks.values_list("pk", flat=True):
        # A queued chunk's deadline moves on; a running one keeps its expired lease to be claimed.
        AnalysisChunk.objects.filter(pk=chunk_id, status=ChunkStatus.QUEUED).update(**renewed)
        _enqueue("run_chunk", chunk_id)
        queued += 1
    stale_front = Q(status=RunStatus.RUNNING, front__isnull=True) | Q(status=RunStatus.QUEUED)
    for run_id in AnalysisRun.objects.filter(stale_front, lease_expires__lt=now).values_list(
        "pk", flat=True
    ):
        AnalysisRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(**renewed)
        _enqueue("run_front", run_id)
        queued += 1
    stale_assembly = Q(assemble_started_at__isnull=False, lease_expires__lt=now)
    for run_id in AnalysisRun.objects.filter(stale_assembly, status=RunStatus.RUNNING).values_list(
        "pk", flat=True
    ):
        if _claim_assembly(run_id, stale_assembly, now):
            _enqueue("assemble", run_id)
            queued += 1
    return queued


# -- queue and push -------------------------------------------------------------------------


def _enqueue(task: str, object_id: int) -> None:
    """Queue ``apps.analysis.tasks.<task>(object_id)`` once the current transaction commits."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task(
            f"apps.analysis.tasks.{task}", object_id, task_name=f"analysis-{task}-{object_id}"
        )
    )


def publish(run_id: int) -> None:
    """Push the run's state to its websocket group (Redis only; without it consumers poll)."""
    if not settings.ANALYSIS_PUSH:
        return
    from channels.layers import get_channel_layer
    from redis.exceptions import RedisError

    state = selectors.run_state(AnalysisRun.objects.get(pk=run_id))
    try:
        async_to_sync(get_channel_layer().group_send)(
            selectors.group_name(run_id), {"type": "run.state", "state": state}
        )
    except (RedisError, OSError) as exc:
        # The row is the record and the next push carries the whole state again: a push lost
        # while Redis restarts must not fail the step that made the progress (found by
        # tests/test_redis_restart.py: the front step failed the run).
        log.warning("run %s: progress push failed (%s); the next push repeats it", run_id, exc)
