"""Train a cell classifier on expert-labelled cell images and write its model card.

``python -m ml train cell-classifier --data DIR --out DIR [--epochs N --backbone NAME ...]``

Shaped like MAE's ``main_finetune.py``: :func:`get_args_parser` -> :func:`main` (explicit
parameters, not the ``args`` object), with the loop in :mod:`ml.train.engine`. The data (a PBC
manifest folder or an ImageFolder, :mod:`ml.datasets.cells`) are decoded once into memory,
split 70/15/15 per class with a fixed seed, and trained from random weights (no pretrained
weights can be downloaded here) with the SPEC's augmentations. The epoch with the best
validation macro-F1 is kept; its validation and test figures go on the card, and the
validation confusion matrix is the one the rescreening alert reads.
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from ml.cards import ModelCard, Normalisation, save_model
from ml.classes import ERYTHROBLAST_UNSTAGED
from ml.datasets.cells import PBC_PROVENANCE, LabelledCells, load_labelled_cells, stratified_split
from ml.device import pick_device
from ml.models.build import build_model
from ml.train.engine import (
    classification_figures,
    cosine_schedule,
    evaluate,
    train_one_epoch,
)

ARCHITECTURE = "timm_classifier"
SPLIT = (0.7, 0.15, 0.15)
#: ImageNet statistics; the model trains from scratch, so any fixed choice works if the card says it.
NORMALISATION = Normalisation(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

ERYTHROBLAST_DECISION = (
    f"PBC labels erythroblasts without a stage; the model outputs {ERYTHROBLAST_UNSTAGED!r} for "
    "them. Such cells are counted (in the total and the erythroid side of M:E) on a line of "
    "their own; the staged erythroblast rows stay empty (see ml.classes.ERYTHROBLAST_UNSTAGED)."
)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("train cell-classifier", add_help=False)
    parser.add_argument("--data", type=Path, required=True, help="PBC folder or ImageFolder")
    parser.add_argument("--out", type=Path, required=True, help="folder for weights and card")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--backbone", default="resnet18", help="a timm model name")
    parser.add_argument("--img-size", type=int, default=96, help="square input side, px")
    parser.add_argument(
        "--centre-crop",
        type=float,
        # PBC centres one cell in a wide field (the cell spans about half of it); 0.7 leaves
        # a margin like the pipeline's box-offset crop and learnt faster than the whole image
        # in a side-by-side subset run (see the card's framing).
        default=0.7,
        help="keep the central square of this fraction of each image's shorter side",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument(
        "--limit-per-class", type=int, default=None, help="use at most N images per class"
    )
    parser.add_argument("--seed", type=int, default=0, help="split, initialisation and shuffling")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--name", default=None, help="card name (default: says what it is)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(
    *,
    data: Path,
    out: Path,
    epochs: int,
    backbone: str,
    img_size: int,
    centre_crop: float,
    batch_size: int,
    lr: float,
    weight_decay: float,
    label_smoothing: float,
    warmup_epochs: int,
    limit_per_class: int | None,
    seed: int,
    threads: int,
    device: str | None,
    name: str | None,
    progress: bool,
    command: str,
) -> ModelCard:
    """Train, evaluate and write ``<out>/<name>.pt`` and ``<out>/<name>.json``; return the card.

    Raises :class:`ml.datasets.cells.CellDataError` for unusable data,
    :class:`ml.train.engine.NonFiniteLossError` on a non-finite loss (nothing is written then)
    and ``ValueError`` for a bad number.
    """
    if epochs < 1 or batch_size < 1 or img_size < 16:
        raise ValueError("epochs and batch size must be at least 1, the image size at least 16")
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch_device = pick_device(device)
    cells = load_labelled_cells(
        data, img_size=img_size, limit_per_class=limit_per_class, seed=seed, centre_crop=centre_crop
    )
    train_idx, val_idx, test_idx = stratified_split(cells.labels, SPLIT, seed)
    _log(f"{len(cells.labels)} cells in {len(cells.classes)} classes: {cells.class_counts()}")
    _log(f"split {len(train_idx)}/{len(val_idx)}/{len(test_idx)} (seed {seed}); {torch_device}")
    decoded_s = time.perf_counter() - started

    config = {"backbone": backbone, "num_classes": len(cells.classes), "img_size": img_size}
    model = build_model(ARCHITECTURE, config).to(torch_device)
    images = torch.from_numpy(cells.images)
    labels = torch.from_numpy(cells.labels)
    best, history = _fit(
        model,
        images[train_idx],
        labels[train_idx],
        images[val_idx],
        cells,
        val_idx,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        label_smoothing=label_smoothing,
        warmup_epochs=warmup_epochs,
        device=torch_device,
        seed=seed,
        progress=progress,
    )
    model.load_state_dict(best["state"])
    figures = {
        split: classification_figures(
            cells.labels[idx],
            evaluate(model, images[idx], norm=NORMALISATION, device=torch_device, batch_size=256),
            cells.classes,
        )
        for split, idx in (("validation", val_idx), ("test", test_idx))
    }
    timings = {
        "decode_s": round(decoded_s, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu_started, 1),
        "threads": threads,
    }
    card = save_model(
        model.cpu(),
        out,
        name=name or default_name(cells, backbone),
        task="cell_classification",
        architecture=ARCHITECTURE,
        config=config,
        classes=cells.classes,
        input_size=img_size,
        normalisation=NORMALISATION,
        provenance=_provenance(
            data, cells, backbone, seed, command, timings, best["epoch"], history, torch_device
        )
        | {"framing": framing(centre_crop), "centre_crop": centre_crop},
        metrics=_card_metrics(figures),
    )
    test = figures["test"]
    _log(
        f"test accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}; "
        f"{timings['wall_s'] / 60:.1f} min wall, {timings['cpu_s'] / 60:.1f} CPU-min; card {card.path}"
    )
    return card


def _fit(
    model: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    val_images: torch.Tensor,
    cells: LabelledCells,
    val_idx: Any,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    label_smoothing: float,
    warmup_epochs: int,
    device: torch.device,
    seed: int,
    progress: bool,
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Train for ``epochs``; return the best epoch by validation macro-F1 and the history."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    steps = -(-len(train_images) // batch_size)
    schedule = cosine_schedule(
        base_lr=lr, warmup_steps=warmup_epochs * steps, total_steps=epochs * steps
    )
    generator = torch.Generator().manual_seed(seed)
    best: dict[str, Any] = {"macro_f1": -1.0, "epoch": -1, "state": model.state_dict()}
    history = []
    for epoch in range(epochs):
        t = time.perf_counter()
        stats = train_one_epoch(
            model,
            train_images,
            train_labels,
            optimizer=optimizer,
            criterion=criterion,
            norm=NORMALISATION,
            device=device,
            batch_size=batch_size,
            lr_at=schedule,
            epoch=epoch,
            generator=generator,
            progress=progress,
        )
        probs = evaluate(model, val_images, norm=NORMALISATION, device=device, batch_size=256)
        val = classification_figures(cells.labels[val_idx], probs, cells.classes)
        row = {
            "epoch": epoch,
            "loss": round(stats["loss"], 4),
            "val_accuracy": round(val["accuracy"], 4),
            "val_macro_f1": round(val["macro_f1"], 4),
            "seconds": round(time.perf_counter() - t, 1),
        }
        history.append(row)
        _log(
            f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.3f}, validation accuracy "
            f"{row['val_accuracy']:.3f}, macro-F1 {row['val_macro_f1']:.3f} ({row['seconds']} s)"
        )
        if val["macro_f1"] > best["macro_f1"]:
            state = copy.deepcopy(model.state_dict())
            best = {"macro_f1": val["macro_f1"], "epoch": epoch, "state": state}
    return best, history


def framing(centre_crop: float) -> str:
    """What a card says about how its training images were framed."""
    if centre_crop >= 1.0:
        return (
            "each whole source image, resized; the pipeline crops a square around the cell's "
            "mask box plus the box offset, so its cells may be framed tighter than in training"
        )
    return (
        f"the central square of {centre_crop:.0%} of each source image's shorter side, resized, "
        "so the centred cell fills the frame about as the pipeline's box-offset crop does"
    )


def default_name(cells: LabelledCells, backbone: str) -> str:
    """A name nobody mistakes for a marrow-validated model when trained on PBC."""
    slug = backbone.replace("_", "-").lower()
    if cells.layout == "pbc-manifest":
        return f"starter-pbc-{slug}-NOT-MARROW-VALIDATED"
    return f"cell-classifier-{slug}"


def _card_metrics(figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Top level: the validation figures (the split the alerts read); both splits in full."""
    val, test = figures["validation"], figures["test"]
    return {
        "accuracy": val["accuracy"],
        "macro_f1": val["macro_f1"],
        "confusion_matrix": val["confusion_matrix"],
        "confusion_matrix_split": "validation",
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "validation": val,
        "test": test,
    }


def _provenance(
    data: Path,
    cells: LabelledCells,
    backbone: str,
    seed: int,
    command: str,
    timings: dict[str, Any],
    best_epoch: int,
    history: list[dict[str, float]],
    device: torch.device,
) -> dict[str, Any]:
    pbc = cells.layout == "pbc-manifest"
    dataset: dict[str, Any] = {"path": str(Path(data).resolve()), "layout": cells.layout}
    dataset |= PBC_PROVENANCE if pbc else {}
    dataset["class_counts"] = cells.class_counts()
    return {
        "source": (
            f"{backbone} trained from random weights on {len(cells.labels)} expert-labelled "
            + ("PERIPHERAL BLOOD cells (PBC); never validated on bone marrow" if pbc else "cells")
        ),
        "validated_on_marrow": False,
        "dataset": dataset,
        "split": {
            "fractions": list(SPLIT),
            "seed": seed,
            "kind": "stratified, random per cell",
            "caveat": (
                "no patient ids: cells of one smear can fall on both sides, so validation and "
                "test figures are optimistic"
            ),
        },
        "class_mapping": ERYTHROBLAST_DECISION if ERYTHROBLAST_UNSTAGED in cells.classes else "",
        "pretrained": False,
        "best_epoch": best_epoch,
        "history": history,
        "command": command,
        "timings": timings,
        "environment": {
            "device": str(device),
            "torch": torch.__version__,
            "timm": timm.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }


def _log(message: str) -> None:
    # stderr, flushed: the worker's log shows training progress as it happens.
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, command: str) -> ModelCard:
    """:func:`main` with the parsed arguments spelled out (the CLI's entry point)."""
    return main(
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        backbone=args.backbone,
        img_size=args.img_size,
        centre_crop=args.centre_crop,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        warmup_epochs=args.warmup_epochs,
        limit_per_class=args.limit_per_class,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        name=args.name,
        progress=not args.no_progress,
        command=command,
    )
