"""Train the tile-of-interest classifier (TCNet) on a TOI-CLS export and write its model card.

``python -m ml train toi --data EXPORT --out DIR [--epochs N --tiny --resume ...]``

SPEC §2.2: 1600 px tiles resized to 224 (as :class:`ml.models.predictors.TilePredictor` does),
flips, 90/180/270 rotations, brightness and contrast; batch 128, Adam 1e-4, cross-entropy (plus
TCNet's texture and contour supervision, :func:`ml.models.tcnet.tcnet_loss`), 50 epochs.
Validation figures are the paper's: accuracy, and the TOI class's precision, recall, F1 and
AUROC. The epoch with the best validation F1 is kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.cards import ModelCard, Normalisation, save_model
from ml.crops import resize_to
from ml.datasets.export import NON_TOI, TOI
from ml.device import pick_device
from ml.models.build import build_model
from ml.models.tcnet import TCNet, tcnet_loss
from ml.train import layouts
from ml.train.engine import (
    Timer,
    add_common_args,
    augment,
    binary_figures,
    check_numbers,
    common_options,
    evaluate,
    fit,
    log,
    normalised,
    to_input,
    train_steps,
    training_provenance,
)

CLASSES = (NON_TOI, TOI)
NORMALISATION = Normalisation(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("train toi", add_help=False)
    add_common_args(parser, epochs=50, batch_size=128, lr=1e-4)
    parser.add_argument("--img-size", type=int, default=224, help="square input side, px")
    return parser


def load_tiles(items: list[tuple[Path, int]], size: int) -> tuple[torch.Tensor, np.ndarray]:
    """``(N, size, size, 3)`` uint8 tiles and ``(N,)`` int64 class indices."""
    images = np.stack([resize_to(layouts.read_rgb(p), size) for p, _ in items]) if items else None
    labels = np.asarray([label for _, label in items], dtype=np.int64)
    empty = np.zeros((0, size, size, 3), dtype=np.uint8)
    return torch.from_numpy(images if images is not None else empty), labels


def main(
    *,
    data: Path,
    out: Path,
    epochs: int,
    batch_size: int,
    lr: float,
    img_size: int,
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

    Raises :class:`ml.train.layouts.TrainingDataError` (also when a side holds one class
    only), :class:`ml.train.engine.NonFiniteLossError` and ``ValueError`` for a bad number.
    """
    check_numbers(epochs=epochs, batch_size=batch_size, lr=lr)
    timer = Timer(threads)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch_device = pick_device(device)
    splits = layouts.read_splits(
        data,
        "toi_cls",
        lambda folder: layouts.toi_tiles(folder, CLASSES),
        lambda item: layouts.tile_slide(item[0].stem),
        seed=seed,
    )
    sets = {side: load_tiles(getattr(splits, side), img_size) for side in ("train", "val", "test")}
    if len(set(sets["train"][1].tolist())) < 2:
        raise layouts.TrainingDataError("the training tiles need both toi and non_toi examples")
    log(f"TOI-CLS tiles {splits.sizes()} (train/val/test); {torch_device}")
    architecture = "tcnet_tiny" if tiny else "tcnet"
    config = {"num_classes": len(CLASSES)}
    model = build_model(architecture, config).to(torch_device)
    assert isinstance(model, TCNet)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    images, labels = sets["train"][0], torch.from_numpy(sets["train"][1])

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        x = normalised(augment(to_input(images[idx], torch_device), generator), NORMALISATION)
        return tcnet_loss(model.forward_all(x), x, labels[idx].to(torch_device))

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        return train_steps(
            loss_of,
            len(images),
            optimizer=optimizer,
            batch_size=batch_size,
            lr_at=lambda _: lr,
            epoch=epoch,
            generator=generator,
            progress=progress,
        )

    def figures(side: str) -> dict[str, Any]:
        tiles, truth = sets[side]
        probs = evaluate(model, tiles, norm=NORMALISATION, device=torch_device, batch_size=64)
        return binary_figures(truth, probs, CLASSES, TOI)

    def validate() -> dict[str, float]:
        val = figures("val")
        return {k: val[k] or 0.0 for k in ("accuracy", "precision", "recall", "f1", "auroc")}

    state = fit(
        model,
        optimizer,
        epochs=epochs,
        train_epoch=train_epoch,
        validate=validate,
        score=lambda val: val["f1"],
        out=out,
        generator=generator,
        device=torch_device,
        resume=resume,
        stop_after=stop_after_epoch,
    )
    model.load_state_dict(state.best_state)
    val = figures("val")
    metrics: dict[str, Any] = {
        **{k: val[k] for k in ("accuracy", "precision", "recall", "f1", "auroc")},
        "validation": val,
    }
    if len(sets["test"][1]):
        metrics["test"] = figures("test")
    card = save_model(
        model.cpu(),
        out,
        name=name or f"toi-{architecture.replace('_', '-')}",
        task="toi",
        architecture=architecture,
        config=config,
        classes=CLASSES,
        input_size=img_size,
        normalisation=NORMALISATION,
        provenance={
            "source": f"{architecture} trained from random weights on {len(images)} TOI-CLS tiles",
        }
        | training_provenance(
            data=data,
            layout="toi_cls",
            split=splits.provenance,
            state=state,
            hyperparameters={"epochs": epochs, "batch_size": batch_size, "lr": lr},
            command=command,
            timer=timer,
            device=torch_device,
        ),
        metrics=metrics,
    )
    log(f"validation accuracy {val['accuracy']:.3f}, F1 {val['f1']:.3f}; card {card.path}")
    return card


def run(args: argparse.Namespace, command: str) -> ModelCard:
    """:func:`main` with the parsed arguments (the CLI's entry point)."""
    return main(
        **common_options(args),
        img_size=args.img_size,
        command=command,
    )
