"""Background work as rows with a small state machine: queued -> running -> done | failed.

An app keeps its jobs in a concrete subclass of :class:`Job` (the fields of what the job works
on, plus these). A request creates a row (``queued``) and calls :func:`enqueue` with the task's
dotted path and the row's id; the django-q2 task calls :func:`run`, which claims the row with a
conditional update (so a second worker, or a repeated delivery, does nothing), records the
progress the work reports, and ends the row ``done`` with a message or ``failed`` with the
error. An :class:`~apps.core.errors.AppError` records its message for the user; any other
exception records a short reason and logs the traceback. A finished row is never edited again:
retrying is a new row.

With ``Q_SYNC=true`` (tests, one-shot scripts) django-q2 runs the same task function in-process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from apps.core.errors import AppError

log = logging.getLogger(__name__)


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


#: States of a job that has not finished; at most one such job per subject is the usual rule.
ACTIVE = (JobState.QUEUED, JobState.RUNNING)


class Job(models.Model):
    """The state, progress and outcome of one piece of background work.

    ``progress``/``total`` count the work's steps (``total`` 0: not known yet); ``message``
    says what it is doing, or what it did once ``done``; ``error`` why it ``failed``.
    """

    status = models.CharField(
        max_length=10, choices=JobState.choices, default=JobState.QUEUED, db_index=True
    )
    progress = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


J = TypeVar("J", bound=Job)

#: What a job's work calls to report a step: ``(progress, total, message)``.
Progress = Callable[[int, int, str], None]


def fail_abandoned(queryset: models.QuerySet[J]) -> int:
    """Fail the active jobs of ``queryset`` older than the worker's timeout (``Q_CLUSTER``
    ``timeout``): a worker that died or was restarted left them, and no one will finish them.
    Returns how many; call it before looking for an active job to reuse."""
    limit = timezone.now() - timedelta(seconds=cast(int, settings.Q_CLUSTER["timeout"]))
    return queryset.filter(status__in=ACTIVE, created_at__lt=limit).update(
        status=JobState.FAILED,
        finished_at=timezone.now(),
        error="abandoned: no worker finished it in time; request it again",
    )


def enqueue(task: str, job: Job) -> None:
    """Queue ``task(job.pk)`` once the surrounding transaction commits (the worker must see
    the row); outside a transaction, now."""
    from django_q.tasks import async_task

    name = f"{job._meta.label_lower}-{job.pk}"
    transaction.on_commit(lambda: async_task(task, job.pk, task_name=name))


def run(model: type[J], job_id: int, work: Callable[[J, Progress], str]) -> J | None:
    """Claim job ``job_id`` of ``model`` and run ``work(job, progress)`` on it.

    ``work`` returns the message the finished job shows. Returns the finished row, or None
    when the row was not queued (already claimed, or finished).
    """
    claimed = model._default_manager.filter(pk=job_id, status=JobState.QUEUED).update(
        status=JobState.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = model._default_manager.get(pk=job_id)

    def progress(done: int, total: int, message: str) -> None:
        model._default_manager.filter(pk=job_id).update(
            progress=done, total=total, message=message[:255]
        )

    try:
        message = work(job, progress)
    except AppError as exc:
        log.warning("%s %s failed: %s", model.__name__, job_id, exc.message)
        _finish(model, job_id, JobState.FAILED, error=exc.message)
    except Exception as exc:
        log.exception("%s %s: unexpected error", model.__name__, job_id)
        _finish(model, job_id, JobState.FAILED, error=f"unexpected error: {exc}")
    else:
        _finish(model, job_id, JobState.DONE, message=message)
    job.refresh_from_db()
    return job


def _finish(
    model: type[Job], job_id: int, state: str, *, message: str = "", error: str = ""
) -> None:
    fields: dict[str, Any] = {"status": state, "finished_at": timezone.now(), "error": error}
    if message:
        fields["message"] = message[:255]
    model._default_manager.filter(pk=job_id, status=JobState.RUNNING).update(**fields)


def job_json(job: Job | None) -> dict[str, Any] | None:
    """The row as the API and the pages' polling read it (``None`` for no job)."""
    if job is None:
        return None
    return {
        "id": job.pk,
        "status": job.status,
        "progress": job.progress,
        "total": job.total,
        "message": job.message,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
