"""The starter cell classifier: full training on the PBC cells, figures on its test split.

Run from the repository root: ``python -m bench.classifier [--threads N] [--card CARD.json]``.
Without ``--card`` it runs the full default training (``python -m ml train cell-classifier``:
EfficientNet-Lite0 fine-tuned from its ImageNet weights at 112 px, at most 36 epochs in a
15-minute budget, a moving average of the weights kept) into a temporary folder; with
``--card`` it reads the figures a previous run wrote on its card.
Prints one JSON line: ``cls_test_accuracy``, ``cls_test_macro_f1`` (targets >= 0.90, >= 0.85),
``cls_train_minutes`` (wall, target <= 15), ``cls_train_cpu_minutes`` (CPU time of the
process, all threads; on a shared machine the wall time is inflated by other load, the CPU
time much less), the epochs the budget left room for, the training precision, the validation
figures and the thread count.
"""

from __future__ import annotations

import argparse
import json
import shlex
import tempfile
from pathlib import Path
from typing import Any

from bench.synthetic import SHARED
from ml.cards import ModelCard, load_card
from ml.train import cell_classifier

PBC_DIR = SHARED / "cells" / "PBC"


def classifier_figures(card: Path | None = None, *, threads: int = 2) -> dict[str, Any]:
    """Figures of ``card``, or of a fresh full training on PBC with ``threads`` CPU threads."""
    if card is not None:
        return _figures(load_card(card))
    with tempfile.TemporaryDirectory() as out:
        argv = ["--data", str(PBC_DIR), "--out", out, "--threads", str(threads), "--no-progress"]
        args = cell_classifier.get_args_parser().parse_args(argv)
        command = shlex.join(["python", "-m", "ml", "train", "cell-classifier", *argv])
        return _figures(cell_classifier.run(args, command))


def _figures(card: ModelCard) -> dict[str, Any]:
    timings = card.provenance["timings"]
    return {
        "cls_test_accuracy": round(card.metrics["test_accuracy"], 4),
        "cls_test_macro_f1": round(card.metrics["test_macro_f1"], 4),
        "cls_train_minutes": round(timings["wall_s"] / 60, 2),
        "cls_train_cpu_minutes": round(timings["cpu_s"] / 60, 2),
        "cls_val_accuracy": round(card.metrics["accuracy"], 4),
        "cls_val_macro_f1": round(card.metrics["macro_f1"], 4),
        "cls_threads": timings["threads"],
        # Cards written before the time budget existed trained every epoch asked.
        "cls_epochs_trained": timings.get("epochs_trained", len(card.provenance["history"])),
        "cls_epochs_asked": timings.get("epochs_asked"),
        "cls_training_precision": timings.get("training_precision", "fp32"),
        "cls_card": card.name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", type=Path, default=None, help="read this card; do not train")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(classifier_figures(args.card, threads=args.threads)))


if __name__ == "__main__":
    main()
