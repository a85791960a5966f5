"""Train a model from the app: an admin starts a :class:`TrainingJob` on a finished export.

The job (the :mod:`apps.core.jobs` pattern: a row, a claim, progress, done | failed) unpacks
what its task's trainer reads from the export, runs the trainer into a scratch folder under
``MODEL_DIR``, and registers the card it writes as an **inactive** version, for a person to
activate. :data:`TRAINERS` maps a task to its trainer: the cell classifier, and the ROI, TOI
and cell-segmentation commands, which read the export's own layout (and its split by slide).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.core import jobs
from apps.exports import selectors as export_selectors
from apps.exports.models import ExportJob, JobStatus
from ml.cards import ModelCard
from ml.datasets.cells import IMAGE_SUFFIXES, CellDataError
from ml.datasets.export.cell_cls import LABELED
from ml.train import cell_classifier, cell_seg, roi, toi
from ml.train.engine import NonFiniteLossError

from . import store, versions
from .errors import NotTrainable, RegistryError
from .models import ModelVersion, Origin, TrainingJob

#: What a trainer raises for unusable data, a bad option value or a diverging loss.
TRAINING_ERRORS = (CellDataError, NonFiniteLossError, ValueError)
#: A trainer: (the export's output, a scratch folder, the options) -> the card it wrote.
Train = Callable[[Path, Path, Mapping[str, Any]], ModelCard]


@dataclass(frozen=True)
class Trainer:
    """How one task trains: the export layout it needs, its options and their defaults."""

    layout: str
    options: Mapping[str, type]
    train: Train


def _train_cell_classifier(export: Path, scratch: Path, options: Mapping[str, Any]) -> ModelCard:
    """``ml train cell-classifier`` on the export's CELL-CLS-LABELED crops.

    The export's split is by slide; the classifier today splits the crops it is given itself
    (stratified per cell), so every split's crops go into one ImageFolder.
    """
    data = _image_folder(export, scratch / "cells")
    argv = ["--data", str(data), "--out", str(scratch / "out"), "--no-progress"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    args = cell_classifier.get_args_parser().parse_args(argv)
    return cell_classifier.run(args, "app training job -> python -m ml train cell-classifier")


class _Command:
    """An ``ml train <name>`` command run on the export folder itself (its own layout reader
    keeps the manifest's split by slide); a ZIP export is unpacked into the scratch folder."""

    def __init__(self, name: str, parser: Callable[[], argparse.ArgumentParser], run: Any):
        self.name, self.parser, self.run = name, parser, run

    def __call__(self, export: Path, scratch: Path, options: Mapping[str, Any]) -> ModelCard:
        data = _unpacked(export, scratch / "export")
        argv = ["--data", str(data), "--out", str(scratch / "out"), "--no-progress"]
        for key, value in options.items():
            flag = f"--{key.replace('_', '-')}"
            argv += [flag] if value is True else [] if value is False else [flag, str(value)]
        try:
            args = self.parser().parse_args(argv)
        except SystemExit as exc:  # argparse's answer to a bad value: fail the job, not the worker
            raise ValueError(f"ml train {self.name} refused the options {dict(options)}") from exc
        return self.run(args, f"app training job -> python -m ml train {self.name}")


def _unpacked(export: Path, target: Path) -> Path:
    """The export as a folder: itself, or its ZIP extracted (member names are sanitised by
    :meth:`zipfile.ZipFile.extractall`, so nothing lands outside ``target``)."""
    if export.is_dir():
        return export
    with zipfile.ZipFile(export) as archive:
        archive.extractall(target)
    return target


#: Options every export-reading command takes (``tiny``: the test-size model).
_COMMON: dict[str, type] = {"epochs": int, "batch_size": int, "seed": int, "tiny": bool}

TRAINERS: dict[str, Trainer] = {
    "roi": Trainer("roi_seg", _COMMON, _Command("roi", roi.get_args_parser, roi.run)),
    "toi": Trainer(
        "toi_cls", _COMMON | {"img_size": int}, _Command("toi", toi.get_args_parser, toi.run)
    ),
    "cell_segmentation": Trainer(
        "cell_seg",
        _COMMON | {"architecture": str},
        _Command("cell-seg", cell_seg.get_args_parser, cell_seg.run),
    ),
    "cell_classification": Trainer(
        layout=LABELED,
        options={
            "epochs": int,
            "img_size": int,
            "batch_size": int,
            "limit_per_class": int,
            "seed": int,
            # A timm backbone from random weights; without it the job fine-tunes
            # EfficientNet-Lite0 from its ImageNet weights, as the starter's training does.
            "backbone": str,
            # Minutes of wall time the training may take (0: no budget; the default is 15).
            "time_budget_min": float,
        },
        train=_train_cell_classifier,
    ),
}


def start_training(
    *, export: ExportJob, task: str, user: Any, options: Mapping[str, Any]
) -> TrainingJob:
    """Queue a training of ``task`` on ``export`` (admins only). Raises NotTrainable."""
    versions.require_admin(user, export.project_id)
    trainer = TRAINERS.get(task)
    if trainer is None:
        raise NotTrainable(f"no trainer for {task!r} yet; trainable: {sorted(TRAINERS)}")
    if export.status != JobStatus.DONE:
        raise NotTrainable(f"export {export.pk} is {export.status}, not done")
    if trainer.layout not in (export.manifest or {}).get("formats", []):
        raise NotTrainable(f"export {export.pk} has no {trainer.layout} data")
    unknown = sorted(set(options) - set(trainer.options))
    if unknown:
        raise NotTrainable(f"unknown options {unknown}; {task} takes {sorted(trainer.options)}")
    for key, value in options.items():
        wanted = trainer.options[key]
        # JSON has one kind of number: 15 is a fine float. A bool is never a number here.
        kinds = (int, float) if wanted is float else wanted
        if not isinstance(value, kinds) or (isinstance(value, bool) and wanted is not bool):
            raise NotTrainable(f"option {key!r} must be {wanted.__name__}")
        if wanted is float and value < 0:
            raise NotTrainable(f"option {key!r} cannot be negative")
    with transaction.atomic():
        job = TrainingJob.objects.create(
            project_id=export.project_id,
            task=task,
            export=export,
            options=dict(options),
            requested_by=user,
        )
        jobs.enqueue("apps.registry.tasks.run_training", job)
    return job


def run_training(job_id: int) -> TrainingJob | None:
    return jobs.run(TrainingJob, job_id, _work)


def _work(job: TrainingJob, progress: jobs.Progress) -> str:
    trainer = TRAINERS[job.task]
    export = job.export
    root = Path(settings.MODEL_DIR)
    root.mkdir(parents=True, exist_ok=True)
    # Scratch under MODEL_DIR: a dot folder, so never mistaken for an installed card.
    with tempfile.TemporaryDirectory(prefix=".training-", dir=root) as tmp:
        progress(0, 3, f"training {job.task} on export {export.pk}")
        try:
            card = trainer.train(export_selectors.output_path(export), Path(tmp), job.options)
        except TRAINING_ERRORS as exc:  # bad data or numbers: the job fails with the reason
            raise RegistryError(f"training failed: {exc}") from exc
        progress(1, 3, f"registering {card.name}")
        version = versions.register_staged(
            project=job.project,
            raw=card.raw,
            staged=store.stage_file(card.weights),
            user=job.requested_by,
            origin=Origin.TRAINING,
            manifest=export.manifest,
        )
    TrainingJob.objects.filter(pk=job.pk).update(result=version)
    progress(3, 3, f"registered as {version.task} v{version.version} (inactive)")
    return f"registered {card.name} as {version.task} v{version.version}, inactive"


def _image_folder(export: Path, target: Path) -> Path:
    """``<target>/<class>/<split>_<file>`` from the export's ``cell_cls_labeled/<split>/<class>/``.

    ``export`` is the export's ZIP or server folder. Raises RegistryError when it holds no crops.
    """
    count = 0
    for name, open_member in _members(export):
        parts = PurePosixPath(name).parts
        if len(parts) != 4 or parts[0] != LABELED:
            continue
        _, split, label, file = parts
        if PurePosixPath(file).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        out = target / label / f"{split}_{file}"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open_member() as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        count += 1
    if not count:
        raise RegistryError(f"the export at {export.name} holds no {LABELED} crops")
    return target


def _members(export: Path):
    """``(posix name, opener)`` of every file in a ZIP or a folder."""
    if export.is_file():
        archive = zipfile.ZipFile(export)
        for info in archive.infolist():
            if not info.is_dir():
                yield info.filename, lambda info=info: archive.open(info)
        return
    for path in sorted(export.rglob("*")):
        if path.is_file():
            yield path.relative_to(export).as_posix(), lambda path=path: path.open("rb")


def training_json(job: TrainingJob) -> dict[str, Any]:
    """The job as the API shows it: the job row, its export, and the version it made."""
    result: ModelVersion | None = job.result
    return (jobs.job_json(job) or {}) | {
        "task": job.task,
        "export": job.export_id,
        "project": job.project_id,
        "options": job.options,
        "version": None if result is None else {"id": result.pk, "version": result.version},
    }
