"""Training engine shared by the training commands: one epoch of training, one evaluation.

Shaped like MAE's ``engine_finetune.py``: :func:`train_steps` steps a model through shuffled
batches with a per-step learning rate and stops on a non-finite loss (:func:`train_one_epoch`
is its classification case); :func:`evaluate` returns the class probabilities, from which
:func:`classification_figures` computes what a card records. :func:`fit` is the epoch loop
every trainer shares: a checkpoint after each epoch (model, optimizer, epoch, RNG states,
history, best epoch), so ``--resume`` continues at the next epoch and ends on the same weights
as an uninterrupted run. Data are in-memory uint8 tensors (no DataLoader): the sets here are
small and decoding was done once beforehand.
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ml.cards import (
    ModelCard,
    ModelCardError,
    Normalisation,
    TensorFileError,
    file_sha256,
    load_model,
    read_tensor_file,
)
from ml.device import autocast_to
from ml.metrics import auroc, classification_report, confusion_matrix, macro_auroc
from ml.models.build import classifier_head

#: ``lr_at(step)`` for a global step counted from 0.
LrSchedule = Callable[[int], float]
#: ``loss_of(batch indices)``: the loss of one batch, a scalar tensor with grad.
BatchLoss = Callable[[torch.Tensor], torch.Tensor]
#: The checkpoint :func:`fit` writes after each epoch, in the output folder.
CHECKPOINT = "checkpoint.pt"


class TrainingPaused(Exception):
    """Training stopped on purpose (``--stop-after-epoch``) after ``epoch`` epochs; the
    checkpoint at ``checkpoint`` resumes it. No card was written."""

    def __init__(self, epoch: int, epochs: int, checkpoint: Path) -> None:
        super().__init__(
            f"stopped after epoch {epoch}/{epochs}; --resume continues from {checkpoint}"
        )
        self.epoch = epoch
        self.checkpoint = checkpoint


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stopped (no weights were written)."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(
            f"loss is {loss} at epoch {epoch}, step {step}: training stopped. "
            "Lower the learning rate or check the data."
        )
        self.epoch = epoch
        self.step = step
        self.loss = loss


def cosine_schedule(*, base_lr: float, warmup_steps: int, total_steps: int) -> LrSchedule:
    """Linear warm-up to ``base_lr``, then a half-cosine down to 0 at ``total_steps`` (as MAE)."""

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return base_lr * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return lr_at


def to_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(B, S, S, 3)`` uint8 -> ``(B, 3, S, S)`` float32 on ``device``, on the 0-1 scale (not
    yet normalised, so augmentations act on real intensities)."""
    return images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)


def normalised(x: torch.Tensor, norm: Normalisation) -> torch.Tensor:
    """``(B, 3, H, W)`` 0-1 RGB -> normalised with the card's mean and std."""
    mean = torch.tensor(norm.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(norm.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, generator: torch.Generator, jitter: float = 0.2) -> torch.Tensor:
    """The SPEC's augmentations, per image: flips, a 90/180/270 rotation, brightness, contrast.

    A horizontal flip or none, then a rotation by 0/90/180/270 degrees, gives each of the eight
    flips and rotations of the square with equal chance (a vertical flip is one of them).

    ``x`` is ``(B, 3, S, S)`` on the 0-1 scale (square, so rotations keep the shape). Brightness
    scales intensities and contrast scales them about the image's mean, each by a factor in
    ``[1 - jitter, 1 + jitter]``; the result is clipped to [0, 1].
    """
    out = torch.empty_like(x)
    draws = torch.rand(len(x), 4, generator=generator)
    for i, (flip, rot, bright, contrast) in enumerate(draws.tolist()):
        img = x[i].flip(-1) if flip < 0.5 else x[i]
        img = torch.rot90(img, int(rot * 4) % 4, dims=(-2, -1))
        img = img * (1.0 + jitter * (2 * bright - 1))
        mean = img.mean()
        out[i] = (img - mean) * (1.0 + jitter * (2 * contrast - 1)) + mean
    return out.clamp_(0.0, 1.0)


def train_steps(
    loss_of: BatchLoss,
    n: int,
    *,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    lr_at: LrSchedule,
    epoch: int,
    generator: torch.Generator,
    progress: bool = True,
    after_step: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One pass over ``n`` samples in shuffled batches: ``loss_of(indices)``, backward, step.

    The learning rate is set per step from ``lr_at``; ``after_step()`` runs after each
    optimizer step (a weight average's update). Returns ``{"loss": mean training loss,
    "lr": last learning rate}``. Raises :class:`NonFiniteLossError` as soon as a batch's loss
    is not finite (before the step, so the weights stay finite).
    """
    order = torch.randperm(n, generator=generator)
    steps = math.ceil(n / batch_size)
    total, seen, lr = 0.0, 0, 0.0
    bar = tqdm(range(steps), desc=f"epoch {epoch}", unit="batch", disable=not progress)
    for step in bar:
        lr = lr_at(epoch * steps + step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = order[step * batch_size : (step + 1) * batch_size]
        loss = loss_of(idx)
        value = loss.item()
        if not math.isfinite(value):
            bar.close()
            raise NonFiniteLossError(epoch, step, value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step:
            after_step()
        total += value * len(idx)
        seen += len(idx)
        bar.set_postfix(loss=f"{total / seen:.3f}", lr=f"{lr:.2e}")
    return {"loss": total / max(seen, 1), "lr": lr}


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    norm: Normalisation,
    device: torch.device,
    batch_size: int,
    lr_at: LrSchedule,
    epoch: int,
    generator: torch.Generator,
    progress: bool = True,
    autocast: torch.dtype | None = None,
    average: AveragedModel | None = None,
) -> dict[str, float]:
    """A classifier's epoch over ``images`` ``(N, S, S, 3)`` uint8 / ``labels`` ``(N,)`` int64,
    with the SPEC's augmentations (:func:`train_steps` does the rest). The forward pass and
    loss run under autocast to ``autocast`` (:func:`ml.device.training_dtype`) when given;
    ``average`` (:func:`weight_average`) follows the model after every step."""
    model.train()

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        x = normalised(augment(to_input(images[idx], device), generator), norm)
        with autocast_to(device, autocast):
            logits = model(x)
        return criterion(logits.float(), labels[idx].to(device))

    return train_steps(
        loss_of,
        len(images),
        optimizer=optimizer,
        batch_size=batch_size,
        lr_at=lr_at,
        epoch=epoch,
        generator=generator,
        progress=progress,
        after_step=(lambda: average.update_parameters(model)) if average is not None else None,
    )


def weight_average(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s weights and buffers (BatchNorm's running
    statistics too), ``decay`` per optimizer step; its ``.module`` is a model like ``model``.

    Why: fine-tuning on a couple of thousand cells, one epoch's weights scored up to 8 points
    apart on validation from the next one's, so the best epoch was a lucky draw. An average
    over the last hundred steps or so moves less from epoch to epoch (the classifier's
    ``EMA_DECAY`` has the figures).
    """
    check_decay(decay)
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def kept_model(model: nn.Module, average: AveragedModel | None) -> nn.Module:
    """The module a training validates and keeps: the average's copy of ``model`` when there
    is one (:func:`fit` keeps its state; a trainer's ``validate`` must score the same one)."""
    return average.module if average is not None else model


def check_decay(decay: float) -> None:
    """A weight average's decay per step lies strictly between 0 and 1."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"a weight average's decay lies strictly between 0 and 1, not {decay}")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    *,
    norm: Normalisation,
    device: torch.device,
    batch_size: int,
) -> np.ndarray:
    """Softmax probabilities ``(N, C)`` float32 for ``images`` ``(N, S, S, 3)`` uint8, no augmentation."""
    model.eval()
    out = [
        torch.softmax(model(normalised(to_input(chunk, device), norm)).float(), dim=1).cpu()
        for chunk in images.split(batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def classification_figures(
    labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    """What a card records for one split: accuracy, macro-F1, macro-AUROC, per-class precision /
    recall / F1 / support / one-vs-rest AUROC, and the confusion matrix (rows true, columns
    predicted, ``classes`` order). ``labels`` are ``(N,)`` indices, ``probs`` ``(N, C)``."""
    names = list(classes)
    truth = [names[i] for i in labels]
    predicted = [names[i] for i in probs.argmax(axis=1)]
    report = classification_report(truth, predicted, names)
    per_class = {
        key: {
            "precision": report.per_class[key].precision,
            "recall": report.per_class[key].recall,
            "f1": report.per_class[key].f1,
            "support": report.per_class[key].support,
            "auroc": auroc(labels == j, probs[:, j]),
        }
        for j, key in enumerate(names)
    }
    return {
        "n": int(len(labels)),
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "macro_auroc": macro_auroc(labels, probs, list(range(len(names)))),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(truth, predicted, names).tolist(),
    }


def binary_figures(
    labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], positive: str
) -> dict[str, Any]:
    """:func:`classification_figures` plus the ``positive`` class's accuracy / precision /
    recall / F1 / AUROC at the top level, as the paper reports a binary classifier."""
    figures = classification_figures(labels, probs, classes)
    scores = figures["per_class"][positive]
    return {
        **{k: scores[k] for k in ("precision", "recall", "f1", "auroc")},
        "positive_class": positive,
        **figures,
    }


# --------------------------------------------------------------------------- the epoch loop


@dataclass
class FitState:
    """Where a training stands after ``epoch`` (``-1``: none yet). ``best_state`` is the model
    state of the best epoch by the trainer's validation score (higher is better)."""

    epoch: int = -1
    best_epoch: int = -1
    best_score: float = -math.inf
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: The epochs a time budget left room for (:class:`TimeBudget`); ``None``: as asked.
    planned_epochs: int | None = None


@dataclass(frozen=True)
class TimeBudget:
    """Wall time a whole training may take: it must end by ``deadline`` (``time.perf_counter``),
    ``reserve_s`` of it kept for what follows the last epoch beyond a second validation pass
    (the card). :func:`fit` plans the epochs from its first one."""

    deadline: float
    reserve_s: float = 5.0

    @classmethod
    def minutes(cls, minutes: float, started: float) -> TimeBudget | None:
        """A budget of ``minutes`` from ``started``; ``None`` for 0 (no budget)."""
        if minutes < 0:
            raise ValueError("the time budget cannot be negative")
        return cls(deadline=started + 60 * minutes) if minutes else None

    def epochs(self, *, done: int, asked: int, epoch_s: float, validate_s: float) -> int:
        """How many epochs in all fit once ``done`` took ``epoch_s`` each: at least ``done``,
        at most ``asked``. The final evaluation (about two validation passes) is kept back."""
        left = self.deadline - time.perf_counter() - self.reserve_s - 2 * validate_s
        more = math.floor(left / epoch_s) if epoch_s > 0 else asked
        return max(done, min(asked, done + more))


def process_started() -> float:
    """When this process started, on the :func:`time.perf_counter` clock: a command's budget and
    its card's wall time include the interpreter's start and the imports (torch and timm took
    18 s of a 15-minute training here, which ``/usr/bin/time`` counts). Linux reads it from
    ``/proc``; elsewhere it is now."""
    now = time.perf_counter()
    try:
        # Field 22 of /proc/self/stat (after the parenthesised name) is the start time in clock
        # ticks since boot, the clock /proc/uptime also counts from.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return now
    return now - max(0.0, uptime_s - start_s)


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    state: FitState,
    average: AveragedModel | None = None,
) -> None:
    """Write everything resuming needs; atomically (a crash mid-write keeps the previous one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": state.epoch,
        "best_epoch": state.best_epoch,
        "best_score": state.best_score,
        "best_state": state.best_state,
        "history": state.history,
        "planned_epochs": state.planned_epochs,
        "rng": rng,
    }
    if average is not None:
        checkpoint["average"] = average.state_dict()
    tmp = path.with_name(path.name + ".partial")
    torch.save(checkpoint, tmp)
    # Its sha256 beside it: resuming loads through ml.cards' one checked loader.
    digest = _digest_path(path)
    digest_tmp = digest.with_name(digest.name + ".partial")
    digest_tmp.write_text(file_sha256(tmp) + "\n")
    os.replace(tmp, path)
    os.replace(digest_tmp, digest)


def _digest_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".sha256")


def load_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
    average: AveragedModel | None = None,
) -> FitState:
    """Restore model, optimizer, weight average and RNG states from :func:`save_checkpoint`'s
    file."""
    digest = _digest_path(path)
    if not digest.is_file():
        raise TensorFileError("weights_sha256", f"{digest.name} is missing beside {path.name}")
    checkpoint = read_tensor_file(path, device, sha256=digest.read_text().strip())
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if average is not None:
        if "average" not in checkpoint:
            raise TensorFileError("weights", f"{path.name} holds no weight average to resume")
        average.load_state_dict(checkpoint["average"])
    rng = checkpoint["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    generator.set_state(rng["generator"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    return FitState(
        epoch=int(checkpoint["epoch"]),
        best_epoch=int(checkpoint["best_epoch"]),
        best_score=float(checkpoint["best_score"]),
        best_state=checkpoint["best_state"],
        history=list(checkpoint["history"]),
        planned_epochs=checkpoint.get("planned_epochs"),
    )


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    train_epoch: Callable[[int], dict[str, float]],
    validate: Callable[[], dict[str, float]],
    score: Callable[[dict[str, float]], float],
    out: Path,
    generator: torch.Generator,
    device: torch.device,
    resume: bool = False,
    stop_after: int | None = None,
    budget: TimeBudget | None = None,
    on_plan: Callable[[int], None] | None = None,
    average: AveragedModel | None = None,
) -> FitState:
    """Train ``epochs`` epochs (``train_epoch(epoch)``, then ``validate()``), keeping the best.

    After each epoch ``<out>/checkpoint.pt`` holds the model, optimizer, epoch, RNG states,
    history and best epoch; with ``resume`` an existing one is loaded and training continues at
    the next epoch. ``stop_after`` stops after that many epochs in all by raising
    :class:`TrainingPaused` (the checkpoint then resumes it). Each epoch's row of the history has the
    training figures, ``val_<key>`` for each validation figure, and the seconds it took.

    With a ``budget``, the first epoch's time decides how many of ``epochs`` fit. The plan is
    kept in the checkpoint (a resumed training keeps it), and ``on_plan(epochs)`` hears it, so
    a learning-rate schedule can end where training does. Should the machine slow down so
    much that the next epoch no longer fits, training stops early (the budget is a limit).

    With an ``average`` (:func:`weight_average`, which ``train_epoch`` updates), the kept best
    state is the average's (``validate`` should score it), and the checkpoint holds it too.
    """
    path = out / CHECKPOINT
    kept = kept_model(model, average)
    state = FitState(best_state=copy.deepcopy(kept.state_dict()))
    if resume and path.is_file():
        state = load_checkpoint(
            path,
            model=model,
            optimizer=optimizer,
            generator=generator,
            device=device,
            average=average,
        )
        log(f"resumed from {path} after epoch {state.epoch + 1}/{state.planned_epochs or epochs}")
        if state.planned_epochs and on_plan:
            on_plan(state.planned_epochs)
    epoch = state.epoch + 1
    while epoch < (state.planned_epochs or epochs):
        if stop_after is not None and epoch >= stop_after:
            raise TrainingPaused(epoch, state.planned_epochs or epochs, path)
        started = time.perf_counter()
        stats = train_epoch(epoch)
        validating = time.perf_counter()
        val = validate()
        ended = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch, **{k: round(v, 6) for k, v in stats.items()}}
        row |= {f"val_{k}": round(v, 6) for k, v in val.items()}
        row["seconds"] = round(ended - started, 1)
        if budget:
            _keep_to(budget, state, epochs, epoch, ended - started, ended - validating, on_plan)
        state.history.append(row)
        value = score(val)
        if value > state.best_score:
            state.best_score, state.best_epoch = value, epoch
            state.best_state = copy.deepcopy(kept.state_dict())
        state.epoch = epoch
        save_checkpoint(
            path,
            model=model,
            optimizer=optimizer,
            generator=generator,
            state=state,
            average=average,
        )
        shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds"))
        log(f"epoch {epoch + 1}/{state.planned_epochs or epochs}: {shown} ({row['seconds']} s)")
        epoch += 1
    return state


def _keep_to(
    budget: TimeBudget,
    state: FitState,
    asked: int,
    epoch: int,
    epoch_s: float,
    validate_s: float,
    on_plan: Callable[[int], None] | None,
) -> None:
    """Plan ``state.planned_epochs`` after the first epoch (``on_plan`` hears it); later, cut
    it to the epochs done when the machine slowed so much that not one more fits (the budget
    is a limit; the best epoch so far is kept)."""
    done = epoch + 1
    fit_in = functools.partial(budget.epochs, done=done, epoch_s=epoch_s, validate_s=validate_s)
    if state.planned_epochs is None:
        state.planned_epochs = fit_in(asked=asked)
        if state.planned_epochs < asked:
            log(
                f"time budget: {state.planned_epochs} of {asked} epochs fit (one took "
                f"{epoch_s:.1f} s); the learning-rate schedule ends with them"
            )
        if on_plan:
            on_plan(state.planned_epochs)
    elif done < state.planned_epochs and fit_in(asked=done + 1) == done:
        log(f"time budget: no room for epoch {done + 1} of {state.planned_epochs}; stopping")
        state.planned_epochs = done


# ------------------------------------------------------------------------ shared by commands


def load_weights_except_head(model: nn.Module, encoder: ModelCard) -> None:
    """Load a pre-trained encoder card's weights (sha256 checked) into ``model``: every weight
    but the new classifier head (:func:`ml.models.build.classifier_head`; an ImageNet encoder
    has one of its own, which is dropped). Raises :class:`ModelCardError` when they do not fit."""
    head = classifier_head(encoder.architecture)
    state = {
        key: value
        for key, value in load_model(encoder, torch.device("cpu")).state_dict().items()
        if not key.startswith(head)
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    stray = [k for k in missing if not k.startswith(head)] + list(unexpected)
    if stray:
        raise ModelCardError(encoder.path, "weights", f"do not fit the classifier: {stray[:5]}")


def add_common_args(
    parser: argparse.ArgumentParser, *, epochs: int, batch_size: int, lr: float
) -> None:
    """The options every training command takes; the defaults given are the SPEC's."""
    parser.add_argument("--data", type=Path, required=True, help="an export folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for weights and card")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=lr, help="learning rate")
    parser.add_argument("--tiny", action="store_true", help="a test-size model (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="split, initialisation, shuffling")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--name", default=None, help="card name (default: says what it is)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument(
        "--stop-after-epoch", type=int, default=None, help="stop after N epochs (resumable)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def common_options(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`add_common_args`' options as the keyword arguments every command's ``main``
    takes (its own options are added by its ``run``)."""
    return {
        "data": args.data,
        "out": args.out,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "tiny": args.tiny,
        "seed": args.seed,
        "threads": args.threads,
        "device": args.device,
        "name": args.name,
        "resume": args.resume,
        "stop_after_epoch": args.stop_after_epoch,
        "progress": not args.no_progress,
    }


def training_provenance(
    *,
    data: Path,
    layout: str,
    split: dict[str, Any],
    state: FitState,
    hyperparameters: dict[str, Any],
    command: str,
    timer: Timer,
    device: torch.device,
) -> dict[str, Any]:
    """What every trained card's provenance records besides its own ``source``: the data and
    split, the best epoch and history, the hyperparameters, the command, timings, environment."""
    return {
        "dataset": {"path": str(Path(data).resolve()), "layout": layout},
        "split": split,
        "best_epoch": state.best_epoch,
        "history": state.history,
        "hyperparameters": hyperparameters,
        "command": command,
        "timings": timer.timings(),
        "environment": environment(device),
    }


def check_numbers(*, epochs: int, batch_size: int, lr: float) -> None:
    if epochs < 1 or batch_size < 1 or not (lr > 0 and math.isfinite(lr)):
        raise ValueError("epochs and batch size must be at least 1, the learning rate positive")


def environment(device: torch.device) -> dict[str, str]:
    """What a card records about where it was trained."""
    import timm  # imported here: it costs a second, and only cards need its version

    return {
        "device": str(device),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


class Timer:
    """Wall and CPU seconds since creation, for a card's ``provenance.timings``."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def timings(self, **extra: float) -> dict[str, float]:
        return {
            **{k: round(v, 1) for k, v in extra.items()},
            "wall_s": round(time.perf_counter() - self.wall, 1),
            "cpu_s": round(time.process_time() - self.cpu, 1),
            "threads": self.threads,
        }


def log(message: str) -> None:
    # stderr, flushed: the worker's log shows training progress as it happens.
    print(message, file=sys.stderr, flush=True)
