"""django-q2 entry points. Tasks take ids, claim their row, and record the outcome on it."""

from __future__ import annotations

from . import services


def run_export(job_id: int) -> str | None:
    job = services.run_export(job_id)
    return job.status if job else None
