"""django-q2 entry points. Tasks take ids, claim their row, and record the outcome on it."""

from __future__ import annotations

from . import services


def ingest_slide(slide_id: int) -> str | None:
    slide = services.ingest(slide_id)
    return slide.status if slide else None


def sweep_ingests() -> int:
    return services.requeue_lost_ingests()
