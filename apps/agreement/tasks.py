"""django-q2 entry points. Tasks take ids, claim their row, and record the outcome on it."""

from __future__ import annotations

from . import services


def run_job(job_id: int) -> str | None:
    """Compute a report or fill an adjudication's consensus: the row's final status."""
    job = services.run_job(job_id)
    return job.status if job else None
