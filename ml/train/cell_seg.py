"""Fine-tune SAM's mask decoder on a CELL-SEG export and write the segmenter's model card.

``python -m ml train cell-seg --data EXPORT --out DIR [--architecture sam_vit_b | lite_medsam]
[--init CARD --epochs N --tiny --resume ...]``

SPEC §2.3: the image and prompt encoders are frozen and only the mask decoder trains, prompted
with one foreground point at each annotated cell's centroid (LiteMedSAM answers boxes, not
points, so it gets each cell's mask box instead); images and masks at the model's input size
(1024 for SAM, 256 for LiteMedSAM); batch 16 cells, Adam 1e-6, Dice + BCE, 30 epochs. The
frozen encoder runs once per tile, before training (its embeddings do not change).

Start from published weights with ``--init CARD`` (a ``cell_segmentation`` card: the
installed LiteMedSAM, or an official SAM checkpoint); without it the model starts from random
weights, which only a test wants. Validation: Recall50 / Recall75, the share of ground-truth
cells whose mask box is matched (one-to-one, :func:`ml.metrics.detection_counts`) by the box
of the mask predicted from that cell's own prompt, at IoU >= 0.5 / 0.75; plus the loss. The
paper's recall comes from everything mode, which also depends on the point grid and NMS; this
one measures the decoder alone. The epoch with the best validation Recall75 (then loss) is kept.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from segment_anything.modeling import Sam
from torch.nn import functional as F

from ml.cards import ModelCard, Normalisation, load_card, load_model, save_model
from ml.device import pick_device
from ml.metrics import boxes_from_masks, detection_counts
from ml.models.build import build_model
from ml.models.sam import SAM_PIXEL_MEAN, SAM_PIXEL_STD
from ml.models.sam_boxes import BoxPromptSam
from ml.train import layouts
from ml.train.engine import (
    Timer,
    add_common_args,
    check_numbers,
    common_options,
    fit,
    log,
    train_steps,
    training_provenance,
)

ARCHITECTURES = ("sam_vit_b", "sam_vit_l", "sam_vit_h", "lite_medsam", "sam_tiny")
SAM_NORMALISATION = Normalisation(
    mean=tuple(v / 255 for v in SAM_PIXEL_MEAN),  # type: ignore[arg-type]
    std=tuple(v / 255 for v in SAM_PIXEL_STD),  # type: ignore[arg-type]
)
#: LiteMedSAM min-max scales each window instead (see ml.zoo's card).
MINMAX_NORMALISATION = Normalisation(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("train cell-seg", add_help=False)
    add_common_args(parser, epochs=30, batch_size=16, lr=1e-6)
    parser.add_argument(
        "--architecture", default="sam_vit_b", choices=ARCHITECTURES, help="(--tiny: sam_tiny)"
    )
    parser.add_argument(
        "--init", type=Path, default=None, help="start from this cell_segmentation card"
    )
    return parser


def uses_boxes(architecture: str) -> bool:
    """LiteMedSAM is prompted with boxes; the official SAMs with points."""
    return architecture.startswith("lite_medsam")


@dataclass
class Prompted:
    """One side's tiles, embedded once, and one prompt per annotated cell.

    ``embeddings`` ``(T, C, e, e)``; per cell: its tile, its prompt in model-input px (a point
    ``(x, y)`` or a box XYXY), its low-res target mask ``(h, w)`` bool and its ground-truth box
    in tile px. ``scale`` maps model-input px to tile px.
    """

    embeddings: torch.Tensor
    tile: np.ndarray
    prompts: np.ndarray
    targets: torch.Tensor
    gt_boxes: np.ndarray
    input_hw: list[tuple[int, int]]
    scale: list[float]

    def __len__(self) -> int:
        return len(self.tile)


def prepare(
    tiles: list[tuple[Path, list[Path]]], sam: BoxPromptSam, *, boxes: bool, low_res: int
) -> Prompted:
    """Embed each tile with the frozen encoder and make each cell's prompt and target."""
    embeddings, tile_of, prompts, targets, gt_boxes, hws, scales = [], [], [], [], [], [], []
    for t, (image_path, mask_paths) in enumerate(tiles):
        image = layouts.read_rgb(image_path)
        (embedded,) = sam.embed([image])
        # A normal tensor: the embedding was made under inference mode, and the decoder's
        # backward pass needs to save its input.
        embeddings.append(embedded.embedding.clone())
        h, w = image.shape[:2]
        nh, nw = embedded.input_hw
        s = w / nw
        hws.append((nh, nw))
        scales.append(s)
        for mask_path in mask_paths:
            mask = layouts.read_mask(mask_path)
            if mask.shape != (h, w) or not mask.any():
                continue
            box = boxes_from_masks(mask[None])[0]
            ys, xs = np.nonzero(mask)
            prompt = box / s if boxes else np.array([xs.mean() + 0.5, ys.mean() + 0.5]) / s
            # The target in the decoder's low-res frame: the mask in input px, padded to the
            # square the encoder saw, then shrunk (area) to the decoder's output.
            square = np.zeros((sam.img_size, sam.img_size), dtype=np.float32)
            square[:nh, :nw] = cv2.resize(
                mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA
            )
            small = cv2.resize(square, (low_res, low_res), interpolation=cv2.INTER_AREA)
            tile_of.append(t)
            prompts.append(prompt)
            targets.append(small >= 0.5)
            gt_boxes.append(box)
    if not tile_of:
        raise layouts.TrainingDataError("no annotated cell masks in the CELL-SEG tiles")
    return Prompted(
        embeddings=torch.stack(embeddings),
        tile=np.asarray(tile_of, dtype=np.int64),
        prompts=np.asarray(prompts, dtype=np.float32),
        targets=torch.from_numpy(np.stack(targets)),
        gt_boxes=np.asarray(gt_boxes, dtype=np.float64),
        input_hw=hws,
        scale=scales,
    )


def decode(model: Sam, data: Prompted, idx: np.ndarray, boxes: bool) -> torch.Tensor:
    """Low-res mask logits ``(len(idx), h, w)`` for the cells ``idx``, one decoder call per tile."""
    device = data.embeddings.device
    out: list[torch.Tensor] = [torch.empty(0)] * len(idx)
    for tile in np.unique(data.tile[idx]):
        members = np.flatnonzero(data.tile[idx] == tile)
        prompts = torch.as_tensor(data.prompts[idx[members]], device=device)
        if boxes:
            sparse, dense = model.prompt_encoder(points=None, boxes=prompts, masks=None)
        else:
            labels = torch.ones(len(members), 1, device=device)
            sparse, dense = model.prompt_encoder(
                points=(prompts[:, None, :], labels), boxes=None, masks=None
            )
        logits, _ = model.mask_decoder(
            image_embeddings=data.embeddings[tile][None],
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        for k, m in enumerate(members):
            out[m] = logits[k, 0]
    return torch.stack(out)


def dice_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice + binary cross-entropy (SPEC §2.3) per mask, averaged."""
    truth = target.float()
    prob = torch.sigmoid(logits)
    inter = (prob * truth).sum(dim=(1, 2))
    soft_dice = (2 * inter + 1.0) / (prob.sum(dim=(1, 2)) + truth.sum(dim=(1, 2)) + 1.0)
    return F.binary_cross_entropy_with_logits(logits, truth) + (1.0 - soft_dice).mean()


@torch.no_grad()
def recall_figures(model: Sam, data: Prompted, boxes: bool, batch: int = 64) -> dict[str, float]:
    """Recall50 / Recall75 of the prompted masks' boxes against the cells' boxes, and the loss."""
    model.eval()
    img_size = int(model.image_encoder.img_size)
    tp50 = tp75 = 0
    losses = []
    for start in range(0, len(data), batch):
        idx = np.arange(start, min(start + batch, len(data)))
        logits = decode(model, data, idx, boxes)
        losses.append(float(dice_bce(logits, data.targets[idx].to(logits.device))) * len(idx))
        full = F.interpolate(logits[:, None], (img_size, img_size), mode="bilinear")[:, 0] > 0
        for k, i in enumerate(idx):
            nh, nw = data.input_hw[data.tile[i]]
            box = boxes_from_masks(full[k, :nh, :nw].cpu().numpy()[None]) * data.scale[data.tile[i]]
            truth = data.gt_boxes[i][None]
            tp50 += detection_counts(truth, box, 0.5)[0]
            tp75 += detection_counts(truth, box, 0.75)[0]
    n = len(data)
    return {"recall50": tp50 / n, "recall75": tp75 / n, "loss": sum(losses) / n}


def build(
    architecture: str, tiny: bool, init: Path | None, device: torch.device
) -> tuple[Sam, str, dict[str, Any], str | None]:
    """The model to fine-tune, its architecture and config, and the card it started from."""
    if init is not None:
        card = load_card(init)
        if card.task != "cell_segmentation" or card.architecture not in ARCHITECTURES:
            raise ValueError(f"--init {init}: not a SAM cell_segmentation card")
        model = load_model(card, device)
        assert isinstance(model, Sam)
        return model, card.architecture, dict(card.config), card.name
    architecture = "sam_tiny" if tiny else architecture
    model = build_model(architecture, {}).to(device)
    assert isinstance(model, Sam)
    return model, architecture, {}, None


def main(
    *,
    data: Path,
    out: Path,
    epochs: int,
    batch_size: int,
    lr: float,
    architecture: str,
    init: Path | None,
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
    """Fine-tune and write ``<out>/<name>.pt`` + ``.json`` (or raise
    :class:`ml.train.engine.TrainingPaused` when stopped early on purpose).

    Raises :class:`ml.train.layouts.TrainingDataError`, :class:`ml.cards.ModelCardError` for a
    bad ``--init`` card, :class:`ml.train.engine.NonFiniteLossError` and ``ValueError``.
    """
    check_numbers(epochs=epochs, batch_size=batch_size, lr=lr)
    timer = Timer(threads)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch_device = pick_device(device)
    model, architecture, config, started_from = build(architecture, tiny, init, torch_device)
    boxes = uses_boxes(architecture)
    for part in (model.image_encoder, model.prompt_encoder):
        part.requires_grad_(False)
    splits = layouts.read_splits(
        data,
        "cell_seg",
        layouts.cell_seg_tiles,
        lambda item: layouts.tile_slide(item[0].stem),
        seed=seed,
    )
    sam = BoxPromptSam(model, torch_device, preprocessing="minmax" if boxes else "sam")
    low_res = model.prompt_encoder.mask_input_size[0]
    sets = {
        side: prepare(getattr(splits, side), sam, boxes=boxes, low_res=low_res)
        for side in ("train", "val", "test")
        if getattr(splits, side)
    }
    train = sets["train"]
    log(f"CELL-SEG tiles {splits.sizes()}, {len(train)} training cells; {torch_device}")
    optimizer = torch.optim.Adam(model.mask_decoder.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        chosen = idx.numpy()
        logits = decode(model, train, chosen, boxes)
        return dice_bce(logits, train.targets[chosen].to(torch_device))

    def train_epoch(epoch: int) -> dict[str, float]:
        model.eval()  # the frozen encoders stay as they are; the decoder has no dropout/BN
        return train_steps(
            loss_of,
            len(train),
            optimizer=optimizer,
            batch_size=batch_size,
            lr_at=lambda _: lr,
            epoch=epoch,
            generator=generator,
            progress=progress,
        )

    state = fit(
        model,
        optimizer,
        epochs=epochs,
        train_epoch=train_epoch,
        validate=lambda: recall_figures(model, sets["val"], boxes),
        score=lambda val: val["recall75"] - 1e-6 * val["loss"],
        out=out,
        generator=generator,
        device=torch_device,
        resume=resume,
        stop_after=stop_after_epoch,
    )
    model.load_state_dict(state.best_state)
    val = recall_figures(model, sets["val"], boxes)
    metrics: dict[str, Any] = {
        **val,
        "validation": {**val, "n_cells": len(sets["val"])},
        "protocol": "each ground-truth cell prompted by its own "
        + ("mask box" if boxes else "centroid point")
        + "; its predicted mask's box matched to the cell's box at IoU >= 0.5 / 0.75",
    }
    if "test" in sets:
        metrics["test"] = {
            **recall_figures(model, sets["test"], boxes),
            "n_cells": len(sets["test"]),
        }
    source = f"from the card {started_from}" if started_from else "from random weights"
    card = save_model(
        model.cpu(),
        out,
        name=name or f"cell-seg-{architecture.replace('_', '-')}-decoder-tuned",
        task="cell_segmentation",
        architecture=architecture,
        config=config,
        classes=("cell",),
        input_size=int(model.image_encoder.img_size),
        normalisation=MINMAX_NORMALISATION if boxes else SAM_NORMALISATION,
        provenance={
            "source": f"{architecture} mask decoder fine-tuned {source} on {len(train)} "
            "CELL-SEG cells (image and prompt encoders frozen)",
            "init": started_from,
            "prompts": "boxes" if boxes else "points",
        }
        | training_provenance(
            data=data,
            layout="cell_seg",
            split=splits.provenance,
            state=state,
            hyperparameters={"epochs": epochs, "batch_size": batch_size, "lr": lr},
            command=command,
            timer=timer,
            device=torch_device,
        ),
        metrics=metrics,
    )
    log(
        f"validation Recall50 {val['recall50']:.3f}, Recall75 {val['recall75']:.3f}; card {card.path}"
    )
    return card


def run(args: argparse.Namespace, command: str) -> ModelCard:
    """:func:`main` with the parsed arguments (the CLI's entry point)."""
    return main(
        **common_options(args),
        architecture=args.architecture,
        init=args.init,
        command=command,
    )
