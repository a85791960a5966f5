"""Train the ROI segmenter (TextureUnet) on an ROI-SEG export and write its model card.

``python -m ml train roi --data EXPORT --out DIR [--epochs N --tiny --resume ...]``

SPEC §2.1: the factor-100 thumbnail resized with ResizeLongestSide to 256 and padded to
256 x 256 (as :class:`ml.models.predictors.RoiPredictor` does at inference), batch 4, Adam
1e-4, cross-entropy + Dice, 100 epochs. Validation figures are the paper's: IoU, Dice and pixel
accuracy of the ROI class, per thumbnail in the model's frame (padding excluded), averaged.
The epoch with the best validation Dice is kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ml.cards import ModelCard, Normalisation, save_model
from ml.device import pick_device
from ml.geometry import LongestSidePad
from ml.metrics import dice, iou, pixel_accuracy
from ml.models.build import build_model
from ml.train import layouts
from ml.train.engine import (
    Timer,
    add_common_args,
    check_numbers,
    common_options,
    fit,
    log,
    normalised,
    train_steps,
    training_provenance,
)

CLASSES = ("background", "roi")
INPUT_SIZE = 256
NORMALISATION = Normalisation(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("train roi", add_help=False)
    add_common_args(parser, epochs=100, batch_size=4, lr=1e-4)
    return parser


class RoiData:
    """Thumbnails ``(N, 256, 256, 3)`` uint8, padded with the normalisation mean (so the pad is
    0 after normalising, as the predictor pads), masks ``(N, 256, 256)`` int64, and each
    thumbnail's unpadded ``(h, w)`` in the model frame."""

    def __init__(self, pairs: list[tuple[Path, Path]], size: int) -> None:
        fill = np.round(np.asarray(NORMALISATION.mean) * 255).astype(np.uint8)
        self.images = np.empty((len(pairs), size, size, 3), dtype=np.uint8)
        self.images[:] = fill
        self.masks = np.zeros((len(pairs), size, size), dtype=np.int64)
        self.hw: list[tuple[int, int]] = []
        for i, (image_path, mask_path) in enumerate(pairs):
            image, mask = layouts.read_rgb(image_path), layouts.read_mask(mask_path)
            transform = LongestSidePad(image.shape[:2], size)
            h, w = transform.resized_hw
            self.images[i, :h, :w] = transform.resize(image)
            small = transform.resize(mask.astype(np.uint8)[..., None] * 255)
            self.masks[i, :h, :w] = small.reshape(h, w) >= 128
            self.hw.append((h, w))

    def __len__(self) -> int:
        return len(self.hw)


def roi_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy + soft Dice loss of the ROI class (SPEC §2.1). ``logits`` ``(B, 2, H, W)``,
    ``target`` ``(B, H, W)`` int64 0/1."""
    prob = torch.softmax(logits, dim=1)[:, 1]
    truth = target.float()
    inter = (prob * truth).sum(dim=(1, 2))
    soft_dice = (2 * inter + 1.0) / (prob.sum(dim=(1, 2)) + truth.sum(dim=(1, 2)) + 1.0)
    return F.cross_entropy(logits, target) + (1.0 - soft_dice).mean()


@torch.no_grad()
def segmentation_figures(
    model: nn.Module, data: RoiData, device: torch.device, batch_size: int = 8
) -> dict[str, float]:
    """Mean IoU, Dice and pixel accuracy of the predicted ROI (argmax) over the thumbnails."""
    model.eval()
    scores: dict[str, list[float]] = {"iou": [], "dice": [], "pixel_accuracy": []}
    for start in range(0, len(data), batch_size):
        x = torch.from_numpy(data.images[start : start + batch_size]).to(device)
        x = normalised(x.permute(0, 3, 1, 2).float().div_(255.0), NORMALISATION)
        predicted = model(x).argmax(dim=1).cpu().numpy() == 1
        for k, pred in enumerate(predicted):
            h, w = data.hw[start + k]
            truth = data.masks[start + k, :h, :w] == 1
            scores["iou"].append(iou(pred[:h, :w], truth))
            scores["dice"].append(dice(pred[:h, :w], truth))
            scores["pixel_accuracy"].append(pixel_accuracy(pred[:h, :w], truth))
    return {k: float(np.mean(v)) if v else 0.0 for k, v in scores.items()}


def main(
    *,
    data: Path,
    out: Path,
    epochs: int,
    batch_size: int,
    lr: float,
    tiny: bool,
    seed: int,
    threads: int,
    device: str | None,
    name: str | None,
    resume: bool,
    stop_after_epoch: int | None,
    progress: bool,
    command: str,
) -> ModelCard:
    """Train and write ``<out>/<name>.pt`` + ``.json`` (:class:`ml.train.engine.TrainingPaused` when
    stopped early on purpose: ``resume`` continues).

    Raises :class:`ml.train.layouts.TrainingDataError`, :class:`ml.train.engine.NonFiniteLossError`
    (no card is written) and ``ValueError`` for a bad number.
    """
    check_numbers(epochs=epochs, batch_size=batch_size, lr=lr)
    timer = Timer(threads)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch_device = pick_device(device)
    splits = layouts.read_splits(
        data, "roi_seg", layouts.roi_pairs, lambda pair: pair[0].stem, seed=seed
    )
    sets = {side: RoiData(getattr(splits, side), INPUT_SIZE) for side in ("train", "val", "test")}
    log(f"ROI-SEG thumbnails {splits.sizes()} (train/val/test); {torch_device}")
    architecture = "texture_unet_tiny" if tiny else "texture_unet"
    config = {"num_classes": len(CLASSES)}
    model = build_model(architecture, config).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    train = sets["train"]
    images, masks = torch.from_numpy(train.images), torch.from_numpy(train.masks)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        x = images[idx].to(torch_device).permute(0, 3, 1, 2).float().div_(255.0)
        return roi_loss(model(normalised(x, NORMALISATION)), masks[idx].to(torch_device))

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        return train_steps(
            loss_of,
            len(train),
            optimizer=optimizer,
            batch_size=batch_size,
            lr_at=lambda _: lr,  # constant, as the method trains
            epoch=epoch,
            generator=generator,
            progress=progress,
        )

    state = fit(
        model,
        optimizer,
        epochs=epochs,
        train_epoch=train_epoch,
        validate=lambda: segmentation_figures(model, sets["val"], torch_device),
        score=lambda val: val["dice"],
        out=out,
        generator=generator,
        device=torch_device,
        resume=resume,
        stop_after=stop_after_epoch,
    )
    model.load_state_dict(state.best_state)
    figures = {side: segmentation_figures(model, sets[side], torch_device) for side in sets}
    metrics: dict[str, Any] = {**figures["val"], "validation": figures["val"]}
    if len(sets["test"]):
        metrics["test"] = figures["test"]
    card = save_model(
        model.cpu(),
        out,
        name=name or f"roi-{architecture.replace('_', '-')}",
        task="roi",
        architecture=architecture,
        config=config,
        classes=CLASSES,
        input_size=INPUT_SIZE,
        normalisation=NORMALISATION,
        provenance={
            "source": f"{architecture} trained from random weights on {len(train)} ROI-SEG thumbnails",
        }
        | training_provenance(
            data=data,
            layout="roi_seg",
            split=splits.provenance,
            state=state,
            hyperparameters={"epochs": epochs, "batch_size": batch_size, "lr": lr},
            command=command,
            timer=timer,
            device=torch_device,
        ),
        metrics=metrics,
    )
    log(f"validation IoU {metrics['iou']:.3f}, Dice {metrics['dice']:.3f}; card {card.path}")
    return card


def run(args: argparse.Namespace, command: str) -> ModelCard:
    """:func:`main` with the parsed arguments (the CLI's entry point)."""
    return main(
        **common_options(args),
        command=command,
    )
