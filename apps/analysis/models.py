"""Analysis runs: the pipeline on one slide as a row with a small state machine, in chunks.

An :class:`AnalysisRun` goes ``queued -> running -> done | failed | cancelled`` (and ``queued ->
failed | cancelled``); a finished run is never edited again: the services refuse it and the
database refuses it (a trigger, see migration 0002). Retrying is a new run.

The front task (thumbnail, ROI, TOI) stores its decisions on the run and splits the chosen TOIs
into :class:`AnalysisChunk` rows; any worker claims any chunk with a conditional update and a
lease, records its cells on the row, and the last one to finish queues the assembly, which
writes the result as ``model_run`` annotation sets in one transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.annotations.models import AnnotationSet
from apps.slides.models import Slide


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


#: The state machine: the statuses a run may move to from each status.
TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset({RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.DONE: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
FINISHED = tuple(s for s, nxt in TRANSITIONS.items() if not nxt)
#: The stages a run reports progress for, in order (SPEC §2).
PROGRESS_STAGES = ("thumbnail", "roi", "toi", "cells", "classes")


class AnalysisRun(models.Model):
    slide = models.ForeignKey(Slide, on_delete=models.CASCADE, related_name="analysis_runs")
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    # The full PipelineConfig.to_dict() (per-device None fields are filled on each worker).
    config = models.JSONField()
    # The user's overrides as sent, so a retry repeats the same inputs.
    overrides = models.JSONField(default=dict, blank=True)
    chunk_size = models.PositiveIntegerField()
    slide_sha256 = models.CharField(max_length=64)
    # {"roi": {"kind": "model", "name", "architecture", "weights_sha256"} | {"kind": "baseline", "name"}, ...}
    models_used = models.JSONField(default=dict, blank=True)
    software_version = models.CharField(max_length=100, blank=True)
    device = models.CharField(max_length=20, blank=True)
    # Front stages' progress: {"thumbnail": {"done", "total"}, "roi": ..., "toi": ...}; the
    # cell stages' progress is the sum over the chunks (selectors.run_state).
    progress = models.JSONField(default=dict, blank=True)
    # Seconds per stage: thumbnail, roi, toi (front task), cells, segmentation, ... (summed
    # over chunks), assemble, total (wall time from start to the result).
    timings = models.JSONField(default=dict, blank=True)
    # ml.pipeline.FrontResult.to_dict(): the ROI, every TOI decision, the chosen TOIs.
    front = models.JSONField(null=True, blank=True)
    # The count, alerts, notes and review count of the finished run.
    summary = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Lease of the front and assemble steps (chunks have their own): a dead worker's step is
    # taken again once it passes.
    lease_expires = models.DateTimeField(null=True, blank=True)
    front_attempts = models.PositiveIntegerField(default=0)
    assemble_started_at = models.DateTimeField(null=True, blank=True)
    roi_set = models.OneToOneField(
        AnnotationSet, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    toi_set = models.OneToOneField(
        AnnotationSet, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    cell_set = models.OneToOneField(
        AnnotationSet, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"analysis {self.pk} of slide {self.slide_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class ChunkStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (the run stopped)"


class AnalysisChunk(models.Model):
    """A few TOIs of one run, segmented and classified by whichever worker claims them."""

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    # [ml.geometry.Tile as a dict: col, row, x, y, w, h], level-0 px.
    tiles = models.JSONField()
    status = models.CharField(
        max_length=10, choices=ChunkStatus.choices, default=ChunkStatus.QUEUED, db_index=True
    )
    worker = models.CharField(max_length=200, blank=True)  # hostname:pid of the last claim
    workers = models.JSONField(default=list, blank=True)  # every claim, in order
    lease_expires = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    tiles_done = models.PositiveIntegerField(default=0)
    cells_found = models.PositiveIntegerField(default=0)
    # [ml.stages.cells.Cell.to_dict()]: classified, not yet de-duplicated across tiles.
    result = models.JSONField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="one_chunk_per_run_index")
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of analysis {self.run_id} ({self.status})"
