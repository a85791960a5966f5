"""django-q2 entry points: each takes an id, and the service claims the row it works on."""

from __future__ import annotations

from . import services


def run_front(run_id: int) -> None:
    services.run_front_step(run_id)


def run_chunk(chunk_id: int) -> None:
    services.run_chunk_step(chunk_id)


def assemble(run_id: int) -> None:
    services.assemble_step(run_id)


def sweep() -> int:
    return services.sweep()
