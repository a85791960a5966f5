"""Command line: ``python -m ml analyse SLIDE --models DIR --out result.json [--geojson cells.geojson]``
, ``python -m ml train {roi,toi,cell-seg,mae-pretrain,cell-classifier} --data DIR --out DIR
[...]`` (:mod:`ml.train`)
and ``python -m ml install-models --models DIR`` (the day-one model cards, :mod:`ml.zoo`).

Runs :func:`ml.pipeline.analyse` with a tqdm progress bar per stage and writes the result as
JSON (and, with ``--geojson``, the cells as QuPath-compatible GeoJSON). Exit status 0 on
success, 2 on a usage error, 1 when the slide or a model card is unusable (the message says
which and why).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ml.cards import ModelCardError
from ml.datasets.cells import CellDataError
from ml.device import DeviceError
from ml.pipeline import PipelineConfig, Progress, analyse
from ml.slide import SlideOpenError, SlideReadError
from ml.train import cell_classifier, cell_seg, mae_pretrain, roi, toi
from ml.train.engine import NonFiniteLossError, TrainingPaused
from ml.train.layouts import TrainingDataError


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description="bmadcc analysis library")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("analyse", help="analyse one slide: ROI, TOI, cells, classes, DCC")
    run.add_argument("slide", type=Path, help="a whole-slide file OpenSlide can read")
    run.add_argument(
        "--models", type=Path, default=None, help="folder of model cards (default: baselines only)"
    )
    run.add_argument("--out", type=Path, required=True, help="where to write the result JSON")
    run.add_argument(
        "--geojson", type=Path, default=None, help="also write the cells as QuPath GeoJSON"
    )
    run.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if present)"
    )
    run.add_argument(
        "--max-tiles", type=int, default=None, help="segment only the N best-scoring TOIs"
    )
    run.add_argument(
        "--lite-medsam-cells",
        action="store_true",
        help="segment cells with a lite_medsam card's box prompts (default: the classical "
        "segmenter, which scored higher on BCCD)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_train_commands(commands)
    install = commands.add_parser(
        "install-models", help="write the day-one model cards (LiteMedSAM) into a folder"
    )
    install.add_argument("--models", type=Path, required=True, help="folder of model cards")
    return parser


def _add_train_commands(commands: argparse._SubParsersAction) -> None:
    """``train <model>``: one sub-command per trainable model (more join as they are written)."""
    train = commands.add_parser("train", help="train a model and write its weights and card")
    trainers = train.add_subparsers(dest="trainer", required=True)
    trainers.add_parser(
        "cell-classifier",
        parents=[cell_classifier.get_args_parser()],
        help="a timm cell classifier from labelled cell images (PBC or ImageFolder)",
    )
    for name, module, what in _TRAINERS:
        trainers.add_parser(name, parents=[module.get_args_parser()], help=what)


_TRAINERS = (
    ("roi", roi, "the ROI segmenter (TextureUnet) from an ROI-SEG export"),
    ("toi", toi, "the TOI classifier (TCNet) from a TOI-CLS export"),
    ("cell-seg", cell_seg, "fine-tune SAM's mask decoder on a CELL-SEG export"),
    ("mae-pretrain", mae_pretrain, "MAE pre-training on CELL-CLS-UNLABELED crops (encoder card)"),
)


def run_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    command = shlex.join(["python", "-m", "ml", *argv])
    errors = (
        CellDataError,
        TrainingDataError,
        NonFiniteLossError,
        DeviceError,
        ModelCardError,
        ValueError,
    )
    try:
        if args.trainer == "cell-classifier":
            # Its own process: the budget and the card count from the process's start.
            cell_classifier.run(args, command, whole_process=True)
        for name, module, _ in _TRAINERS:
            if args.trainer == name:
                module.run(args, command)
    except TrainingPaused as paused:  # asked for: the checkpoint resumes it
        print(str(paused), file=sys.stderr)
        return 0
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


class _Bars:
    """One tqdm bar per stage, created when the stage first reports."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="step", file=sys.stderr)
        bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run_analyse(args: argparse.Namespace) -> int:
    bars = _Bars(not args.no_progress)
    progress: Progress = bars
    try:
        result = analyse(
            args.slide,
            models_dir=args.models,
            device=args.device,
            progress=progress,
            config=PipelineConfig(
                max_tiles=args.max_tiles, lite_medsam_cells=args.lite_medsam_cells
            ),
        )
    except (ModelCardError, SlideOpenError, SlideReadError, DeviceError, FileNotFoundError) as exc:
        bars.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bars.close()
    _write_json(args.out, result.to_dict())
    if args.geojson is not None:
        _write_json(args.geojson, result.to_geojson())
    for stage, source in result.stages.items():
        sha = source.detail.get("weights_sha256") if source.kind == "model" else None
        print(
            f"{stage}: {source.kind} {source.name}" + (f" sha256 {sha}" if sha else ""),
            file=sys.stderr,
        )
    counted = result.dcc.total_counted
    print(
        f"{len(result.cells)} cells, {counted} counted; result written to {args.out}",
        file=sys.stderr,
    )
    if result.dcc.message:
        print(result.dcc.message, file=sys.stderr)
    return 0


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(path)  # a reader never sees half a file


def run_install_models(args: argparse.Namespace) -> int:
    from ml.zoo import install_models

    try:
        cards = install_models(args.models)
    except (ModelCardError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for card in cards:
        print(f"{card.task}: {card.name} ({card.path})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser().parse_args(argv)
    if args.command == "analyse":
        return run_analyse(args)
    if args.command == "train":
        return run_train(args, argv)
    if args.command == "install-models":
        return run_install_models(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
