"""django-q2 entry points. The starter training has no row: its lock file plays that part."""

from __future__ import annotations

from pathlib import Path

from . import services, training


def train_starter_classifier(data_dir: str, model_dir: str, options: dict[str, int | None]) -> str:
    return services.train_starter_classifier(
        data_dir=Path(data_dir), model_dir=Path(model_dir), **options
    )


def run_training(job_id: int) -> None:
    training.run_training(job_id)
