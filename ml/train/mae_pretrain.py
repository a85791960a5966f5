"""MAE self-supervised pre-training on CELL-CLS-UNLABELED crops; writes an encoder card.

``python -m ml train mae-pretrain --data EXPORT --out DIR [--epochs N --tiny --resume ...]``

SPEC §2.4(a): a ViT-B MAE (75 % of patches masked) reconstructing the masked pixels of cell
crops, batch 256, AdamW 1e-3, MSE, 200 epochs; the crops get the classifier's flips, rotations,
brightness and contrast. The validation figure is the reconstruction loss (MSE over masked
patches, normalised pixels) with a fixed mask per crop, so epochs compare; the epoch with the
lowest is kept.

The card is the **encoder** alone (task ``cell_encoder``, architecture ``mae_vit_b`` /
``mae_vit_tiny`` with ``num_classes=0``): ``python -m ml train cell-classifier --init CARD``
fine-tunes it as the 22-class classifier (stage b).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.cards import ENCODER_TASK, ModelCard, Normalisation, save_model
from ml.crops import resize_to
from ml.datasets.export.cell_cls import UNLABELED
from ml.device import pick_device
from ml.models.mae import MaskedAutoencoder, build_masked_autoencoder
from ml.train import layouts
from ml.train.engine import (
    Timer,
    add_common_args,
    augment,
    check_numbers,
    common_options,
    cosine_schedule,
    fit,
    log,
    normalised,
    to_input,
    train_steps,
    training_provenance,
)

NORMALISATION = Normalisation(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
#: A fixed seed for the validation masks, apart from the training RNG.
VAL_MASK_SEED = 1234


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("train mae-pretrain", add_help=False)
    add_common_args(parser, epochs=200, batch_size=256, lr=1e-3)
    parser.add_argument("--img-size", type=int, default=224, help="square input side, px")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup-epochs", type=int, default=1)
    return parser


def load_crops(paths: list[Path], size: int) -> torch.Tensor:
    """``(N, size, size, 3)`` uint8 crops."""
    if not paths:
        return torch.zeros((0, size, size, 3), dtype=torch.uint8)
    return torch.from_numpy(np.stack([resize_to(layouts.read_rgb(p), size) for p in paths]))


@torch.no_grad()
def reconstruction_loss(
    mae: MaskedAutoencoder, crops: torch.Tensor, device: torch.device, batch: int = 64
) -> float:
    """Mean masked-patch MSE over ``crops``, each with the same mask every time."""
    mae.eval()
    noise = torch.rand(
        len(crops), mae.num_patches, generator=torch.Generator().manual_seed(VAL_MASK_SEED)
    )
    total = 0.0
    for start in range(0, len(crops), batch):
        x = normalised(to_input(crops[start : start + batch], device), NORMALISATION)
        total += float(mae(x, noise[start : start + batch].to(device))) * len(x)
    return total / max(len(crops), 1)


def main(
    *,
    data: Path,
    out: Path,
    epochs: int,
    batch_size: int,
    lr: float,
    img_size: int,
    weight_decay: float,
    warmup_epochs: int,
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
    """Pre-train and write the encoder's ``<out>/<name>.pt`` + ``.json``; return its card.

    Raises :class:`ml.train.engine.TrainingPaused` when stopped early on purpose, :class:`ml.train.layouts.TrainingDataError`,
    :class:`ml.train.engine.NonFiniteLossError` and ``ValueError`` for a bad number."""
    check_numbers(epochs=epochs, batch_size=batch_size, lr=lr)
    if img_size % 16:
        raise ValueError("the image size must be a multiple of the 16 px patch")
    timer = Timer(threads)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch_device = pick_device(device)
    splits = layouts.read_splits(
        data, UNLABELED, layouts.pngs, lambda p: layouts.tile_slide(p.stem), seed=seed
    )
    sets = {side: load_crops(getattr(splits, side), img_size) for side in ("train", "val", "test")}
    crops = sets["train"]
    log(f"CELL-CLS-UNLABELED crops {splits.sizes()} (train/val/test); {torch_device}")
    architecture = "mae_vit_tiny" if tiny else "mae_vit_b"
    mae = build_masked_autoencoder(architecture, img_size=img_size).to(torch_device)
    optimizer = torch.optim.AdamW(
        mae.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95)
    )
    steps = -(-len(crops) // batch_size)
    schedule = cosine_schedule(
        base_lr=lr, warmup_steps=warmup_epochs * steps, total_steps=epochs * steps
    )
    generator = torch.Generator().manual_seed(seed)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        x = normalised(augment(to_input(crops[idx], torch_device), generator), NORMALISATION)
        noise = torch.rand(len(idx), mae.num_patches, generator=generator)
        return mae(x, noise.to(torch_device))

    def train_epoch(epoch: int) -> dict[str, float]:
        mae.train()
        return train_steps(
            loss_of,
            len(crops),
            optimizer=optimizer,
            batch_size=batch_size,
            lr_at=schedule,
            epoch=epoch,
            generator=generator,
            progress=progress,
        )

    state = fit(
        mae,
        optimizer,
        epochs=epochs,
        train_epoch=train_epoch,
        validate=lambda: {
            "reconstruction_loss": reconstruction_loss(mae, sets["val"], torch_device)
        },
        score=lambda val: -val["reconstruction_loss"],
        out=out,
        generator=generator,
        device=torch_device,
        resume=resume,
        stop_after=stop_after_epoch,
    )
    mae.load_state_dict(state.best_state)
    val = reconstruction_loss(mae, sets["val"], torch_device)
    metrics: dict[str, Any] = {
        "reconstruction_loss": val,
        "mask_ratio": mae.mask_ratio,
        "validation": {"reconstruction_loss": val, "n": len(sets["val"])},
    }
    if len(sets["test"]):
        test = reconstruction_loss(mae, sets["test"], torch_device)
        metrics["test"] = {"reconstruction_loss": test, "n": len(sets["test"])}
    config = {"num_classes": 0, "img_size": img_size}
    card = save_model(
        mae.encoder.cpu(),
        out,
        name=name or f"{architecture.replace('_', '-')}-mae-encoder",
        task=ENCODER_TASK,
        architecture=architecture,
        config=config,
        classes=(),
        input_size=img_size,
        normalisation=NORMALISATION,
        provenance={
            "source": f"{architecture} encoder pre-trained by MAE on {len(crops)} unlabelled "
            "cell crops (CELL-CLS-UNLABELED)",
        }
        | training_provenance(
            data=data,
            layout=UNLABELED,
            split=splits.provenance,
            state=state,
            hyperparameters={
                "epochs": epochs,
                "batch_size": batch_size,
                "lr": lr,
                "weight_decay": weight_decay,
                "mask_ratio": mae.mask_ratio,
            },
            command=command,
            timer=timer,
            device=torch_device,
        ),
        metrics=metrics,
    )
    log(f"validation reconstruction loss {val:.4f}; encoder card {card.path}")
    return card


def run(args: argparse.Namespace, command: str) -> ModelCard:
    """:func:`main` with the parsed arguments (the CLI's entry point)."""
    return main(
        **common_options(args),
        img_size=args.img_size,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        command=command,
    )
