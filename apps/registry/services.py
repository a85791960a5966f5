"""Model-registry services: install the starter cell classifier once, in the background.

A fresh install has no cell classifier, so every count would say "no classifier installed".
:func:`queue_starter_classifier` queues one training (``ml train cell-classifier`` on the PBC
cells) into ``MODEL_DIR`` unless a classifier card is there already or a training is queued or
running. A lock file in ``MODEL_DIR`` records that: ``{"state": "queued"|"running", "pid",
"since"}``. It is created atomically, so two setups racing queue one training, and removed when
the training ends, however it ends. A lock whose training process died, or that stayed queued
for a day, is stale and is replaced.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ml.cards import discover_cards
from ml.datasets.cells import list_labelled_cells
from ml.train import cell_classifier

LOCK_NAME = ".starter-classifier.lock"
#: Scratch folder inside MODEL_DIR (not scanned for cards, which are top-level ``*.json``).
SCRATCH_NAME = ".starter-classifier.training"
#: The worker's time limit for this one task: a shared CPU can stretch 15 minutes a lot.
TRAINING_TIMEOUT_S = 6 * 3600
QUEUED_STALE_AFTER = timedelta(days=1)


class StarterStatus(enum.StrEnum):
    INSTALLED = "installed"
    QUEUED = "queued"
    ALREADY_QUEUED = "already queued or running"
    NO_DATA = "no data"


def starter_options(
    *, epochs: int | None = None, img_size: int | None = None, limit_per_class: int | None = None
) -> dict[str, int | None]:
    """The training knobs a caller may change (tests use tiny ones); ``None`` keeps the default."""
    return {"epochs": epochs, "img_size": img_size, "limit_per_class": limit_per_class}


def has_classifier(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a cell-classification card (raises on a bad card there)."""
    return "cell_classification" in discover_cards(model_dir)


def queue_starter_classifier(
    *, model_dir: Path, data_dir: Path, options: dict[str, int | None]
) -> StarterStatus:
    """Queue the starter training unless it is installed, queued or running, or there is no data."""
    from django_q.tasks import async_task

    if has_classifier(model_dir):
        return StarterStatus.INSTALLED
    if not (data_dir / "manifest.csv").is_file():
        return StarterStatus.NO_DATA
    list_labelled_cells(data_dir)  # a broken manifest fails here, not later in the worker
    model_dir.mkdir(parents=True, exist_ok=True)
    if not _take_lock(model_dir / LOCK_NAME):
        return StarterStatus.ALREADY_QUEUED
    async_task(
        "apps.registry.tasks.train_starter_classifier",
        str(data_dir),
        str(model_dir),
        options,
        task_name="train-starter-classifier",
        timeout=TRAINING_TIMEOUT_S,
    )
    return StarterStatus.QUEUED


def train_starter_classifier(
    *,
    data_dir: Path,
    model_dir: Path,
    epochs: int | None = None,
    img_size: int | None = None,
    limit_per_class: int | None = None,
) -> str:
    """Train into a scratch folder, then move the weights and (last) the card into ``model_dir``.

    Returns what happened, for the task's result. A second delivery of the same task while the
    first still runs (the ORM broker re-delivers after its retry time) does nothing.
    """
    lock = model_dir / LOCK_NAME
    held = _read_lock(lock)
    if held and held.get("state") == "running" and _alive(held.get("pid")):
        return f"skipped: a training is already running (pid {held['pid']})"
    try:
        if has_classifier(model_dir):
            return "skipped: a cell classifier is installed"
        _write_lock(lock, "running")
        return f"installed {_train(data_dir, model_dir, epochs, img_size, limit_per_class)}"
    finally:
        lock.unlink(missing_ok=True)


def _train(
    data_dir: Path,
    model_dir: Path,
    epochs: int | None,
    img_size: int | None,
    limit_per_class: int | None,
) -> str:
    scratch = model_dir / SCRATCH_NAME
    shutil.rmtree(scratch, ignore_errors=True)
    argv = ["--data", str(data_dir), "--out", str(scratch), "--no-progress"]
    for flag, value in (("--epochs", epochs), ("--img-size", img_size),
                        ("--limit-per-class", limit_per_class)):  # fmt: skip
        if value is not None:
            argv += [flag, str(value)]
    args = cell_classifier.get_args_parser().parse_args(argv)
    print(f"training the starter cell classifier into {model_dir}", file=sys.stderr, flush=True)
    card = cell_classifier.run(args, "manage.py setup_models -> python -m ml train cell-classifier "
                               + " ".join(argv))  # fmt: skip
    weights = model_dir / card.weights.name
    shutil.move(card.weights, weights)
    shutil.move(card.path, model_dir / card.path.name)  # last: a card never points at nothing
    shutil.rmtree(scratch, ignore_errors=True)
    return card.name


def _take_lock(lock: Path) -> bool:
    """Create the lock atomically; replace a stale one. ``False`` when a live one is there."""
    held = _read_lock(lock)
    if held is not None and not _stale(held):
        return False
    if held is not None:
        lock.unlink(missing_ok=True)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False  # another setup won the race
    with os.fdopen(fd, "w") as fh:
        json.dump(_lock_body("queued"), fh)
    return True


def _write_lock(lock: Path, state: str) -> None:
    lock.write_text(json.dumps(_lock_body(state)))


def _lock_body(state: str) -> dict[str, Any]:
    return {"state": state, "pid": os.getpid(), "since": datetime.now(UTC).isoformat()}


def _read_lock(lock: Path) -> dict[str, Any] | None:
    try:
        body = json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treat as stale
    return body if isinstance(body, dict) else {}


def _stale(held: dict[str, Any]) -> bool:
    if held.get("state") == "running":
        return not _alive(held.get("pid"))
    try:
        since = datetime.fromisoformat(held["since"])
    except (KeyError, TypeError, ValueError):
        return True
    return datetime.now(UTC) - since > QUEUED_STALE_AFTER


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
