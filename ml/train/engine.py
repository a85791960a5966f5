"""Training engine shared by the training commands: one epoch of training, one evaluation.

Shaped like MAE's ``engine_finetune.py``: :func:`train_one_epoch` steps the model through
shuffled batches with a per-step learning rate and stops on a non-finite loss;
:func:`evaluate` returns the class probabilities, from which :func:`classification_figures`
computes what a card records. Data are in-memory uint8 tensors (no DataLoader): the sets here
are small and decoding was done once beforehand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ml.cards import Normalisation
from ml.metrics import auroc, classification_report, confusion_matrix, macro_auroc

#: ``lr_at(step)`` for a global step counted from 0.
LrSchedule = Callable[[int], float]


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
) -> dict[str, float]:
    """One pass over ``images`` ``(N, S, S, 3)`` uint8 / ``labels`` ``(N,)`` int64, shuffled.

    Returns ``{"loss": mean training loss, "lr": last learning rate}``. Raises
    :class:`NonFiniteLossError` as soon as a batch's loss is not finite.
    """
    model.train()
    order = torch.randperm(len(images), generator=generator)
    steps = math.ceil(len(images) / batch_size)
    total, seen, lr = 0.0, 0, 0.0
    bar = tqdm(range(steps), desc=f"epoch {epoch}", unit="batch", disable=not progress)
    for step in bar:
        lr = lr_at(epoch * steps + step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = order[step * batch_size : (step + 1) * batch_size]
        x = normalised(augment(to_input(images[idx], device), generator), norm)
        loss = criterion(model(x), labels[idx].to(device))
        value = loss.item()
        if not math.isfinite(value):
            bar.close()
            raise NonFiniteLossError(epoch, step, value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += value * len(idx)
        seen += len(idx)
        bar.set_postfix(loss=f"{total / seen:.3f}", lr=f"{lr:.2e}")
    return {"loss": total / max(seen, 1), "lr": lr}


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
