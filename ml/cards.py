"""Model cards: a weights file plus a JSON card that says what the weights are.

A card is a JSON object::

    {
      "schema_version": 1,
      "name": "mae-vit-b-bma-2025-06",
      "task": "cell_classification",           # roi | toi | cell_segmentation | cell_classification
      "architecture": "mae_vit_b",              # a key of ml.models.build.MODEL_REGISTRY
      "config": {"num_classes": 22},            # the builder's keyword arguments
      "weights": "mae_vit_b.pt",                # relative to the card's folder, or absolute
      "weights_sha256": "...",                  # optional; checked when present
      "classes": ["band_neutrophil", ...],      # output order of the model
      "input_size": 224,                        # square input side, px
      "normalisation": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},  # 0-1 scale
      "provenance": {"source": "fine-tuned on ...", ...},
      "metrics": {"accuracy": 0.78, "confusion_matrix": [[...], ...]}
    }

Task rules: an ``roi`` card's classes include ``"roi"``, a ``toi`` card's include ``"toi"``; a
``cell_classification`` card carries ``metrics.confusion_matrix``, a square matrix of counts in
``classes`` order (rows true, columns predicted), from which the rescreening alert's
misclassification rates come. Any bad or missing field raises :class:`ModelCardError` naming
the field. Weights load with ``map_location`` and ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.models.build import MODEL_REGISTRY, UnknownArchitectureError, build_model

SCHEMA_VERSION = 1
TASKS = ("roi", "toi", "cell_segmentation", "cell_classification")
#: A pre-trained encoder (``python -m ml train mae-pretrain``): a starting point for training a
#: classifier, never a pipeline stage, so :func:`discover_cards` leaves it out.
ENCODER_TASK = "cell_encoder"
_CARD_TASKS = (*TASKS, ENCODER_TASK)
# Tasks whose builders take ``num_classes`` and whose head must match ``classes``.
_CLASSIFYING_TASKS = ("roi", "toi", "cell_classification")
_REQUIRED_CLASS = {"roi": "roi", "toi": "toi"}


class ModelCardError(ValueError):
    """A model card (or its weights) is missing, malformed or inconsistent.

    ``field`` is the dotted name of the offending field (``"metrics.confusion_matrix"``), or
    ``"<file>"`` when the card itself cannot be read.
    """

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        super().__init__(f"model card {path}: field {field!r}: {message}")
        self.path = Path(path)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Normalisation:
    """Per-channel RGB mean and std on the 0-1 scale: ``x = (rgb / 255 - mean) / std``."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class ModelCard:
    """A validated card. ``weights`` is resolved to an absolute path that exists."""

    path: Path
    name: str
    task: str
    architecture: str
    config: dict[str, Any]
    weights: Path
    classes: tuple[str, ...]
    input_size: int
    normalisation: Normalisation
    provenance: dict[str, Any]
    metrics: dict[str, Any]
    weights_sha256: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def confusion_matrix(self) -> np.ndarray | None:
        """``(C, C)`` int64 validation confusion matrix (rows true), if the card has one."""
        cm = self.metrics.get("confusion_matrix")
        return None if cm is None else np.asarray(cm, dtype=np.int64)

    def summary(self) -> dict[str, Any]:
        """What an analysis result records about the model it used."""
        return {
            "name": self.name,
            "task": self.task,
            "architecture": self.architecture,
            "card": str(self.path),
            "weights": self.weights.name,
            "weights_sha256": self.weights_sha256,
            "provenance": self.provenance,
        }


def load_card(path: Path | str) -> ModelCard:
    """Read and validate a card; raise :class:`ModelCardError` naming the first bad field."""
    path = Path(path)
    return card_from_data(_read_json(path), path)


def card_from_data(raw: dict[str, Any], path: Path) -> ModelCard:
    """Validate a card's JSON data as :func:`load_card` does; ``path`` is where the card is (or
    would be): relative weights resolve beside it, and errors name it."""
    v = _Validator(path, raw)
    v.require(
        "schema_version", int, check=lambda x: x == SCHEMA_VERSION, why=f"must be {SCHEMA_VERSION}"
    )
    task = v.require(
        "task", str, check=lambda x: x in _CARD_TASKS, why=f"must be one of {_CARD_TASKS}"
    )
    classes = v.classes(task)
    config = dict(v.require("config", dict))
    if task in _CLASSIFYING_TASKS:
        config.setdefault("num_classes", len(classes))
        if config["num_classes"] != len(classes):
            v.fail(
                "config.num_classes",
                f"is {config['num_classes']} but there are {len(classes)} classes",
            )
    return ModelCard(
        path=path,
        name=v.require("name", str, check=bool, why="must not be empty"),
        task=task,
        architecture=v.require(
            "architecture",
            str,
            check=lambda x: x in MODEL_REGISTRY,
            why=f"must be one of {sorted(MODEL_REGISTRY)}",
        ),
        config=config,
        weights=v.weights(),
        classes=classes,
        input_size=v.require("input_size", int, check=lambda x: x > 0, why="must be positive"),
        normalisation=v.normalisation(),
        provenance=v.require(
            "provenance",
            dict,
            check=lambda x: isinstance(x.get("source"), str) and x["source"],
            why="needs a non-empty 'source'",
        ),
        metrics=v.metrics(task, len(classes)),
        weights_sha256=v.optional("weights_sha256", str),
        raw=raw,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelCardError(path, "<file>", "does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(path, "<file>", f"is not readable JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ModelCardError(path, "<file>", "must hold a JSON object")
    return raw


class _Validator:
    """Field checks for one card; each failure raises with the field's dotted name."""

    def __init__(self, path: Path, raw: dict[str, Any]) -> None:
        self.path = path
        self.raw = raw

    def fail(self, name: str, message: str) -> None:
        raise ModelCardError(self.path, name, message)

    def require(self, name: str, kind: type, *, check: Any = None, why: str = "") -> Any:
        if name not in self.raw:
            self.fail(name, "is missing")
        return self._typed(name, self.raw[name], kind, check, why)

    def optional(self, name: str, kind: type) -> Any:
        return (
            None
            if self.raw.get(name) is None
            else self._typed(name, self.raw[name], kind, None, "")
        )

    def _typed(self, name: str, value: Any, kind: type, check: Any, why: str) -> Any:
        # bool is an int in Python; a card saying "input_size": true is still wrong.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(name, f"must be {kind.__name__}, got {type(value).__name__}")
        if check is not None and not check(value):
            self.fail(name, why)
        return value

    def classes(self, task: str) -> tuple[str, ...]:
        classes = self.require("classes", list)
        if not all(isinstance(c, str) and c for c in classes):
            self.fail("classes", "must be non-empty strings")
        if len(set(classes)) != len(classes):
            self.fail("classes", "must be unique")
        if task in _CLASSIFYING_TASKS and len(classes) < 2:
            self.fail("classes", f"a {task} model needs at least two classes")
        required = _REQUIRED_CLASS.get(task)
        if required and required not in classes:
            self.fail("classes", f"a {task} model must have a {required!r} class")
        return tuple(classes)

    def weights(self) -> Path:
        name = self.require("weights", str, check=bool, why="must not be empty")
        weights = Path(name) if Path(name).is_absolute() else self.path.parent / name
        if not weights.is_file():
            self.fail("weights", f"file {weights} does not exist")
        return weights.resolve()

    def normalisation(self) -> Normalisation:
        norm = self.require("normalisation", dict)
        values: dict[str, tuple[float, float, float]] = {}
        for key in ("mean", "std"):
            v = norm.get(key)
            ok = isinstance(v, list) and len(v) == 3 and all(isinstance(x, int | float) for x in v)
            if not ok:
                self.fail(f"normalisation.{key}", "must be a list of three numbers")
            values[key] = (float(v[0]), float(v[1]), float(v[2]))
        if min(values["std"]) <= 0:
            self.fail("normalisation.std", "must be positive")
        return Normalisation(mean=values["mean"], std=values["std"])

    def metrics(self, task: str, n_classes: int) -> dict[str, Any]:
        metrics = self.require("metrics", dict)
        if task != "cell_classification":
            return metrics
        cm = metrics.get("confusion_matrix")
        if cm is None:
            self.fail("metrics.confusion_matrix", "is missing (the rescreening alert needs it)")
        ok = (
            isinstance(cm, list)
            and len(cm) == n_classes
            and all(isinstance(r, list) and len(r) == n_classes for r in cm)
            and all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 0 for r in cm for x in r
            )
        )
        if not ok:
            self.fail(
                "metrics.confusion_matrix", f"must be a {n_classes}x{n_classes} matrix of counts"
            )
        return metrics


class TensorFileError(ValueError):
    """A tensor file failed its sha256 (``field`` "weights_sha256") or cannot be read
    (``field`` "weights")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def read_tensor_file(path: Path, device: torch.device, *, sha256: str | None) -> Any:
    """The one ``torch.load`` of the project: the file's sha256 checked first (when known),
    then loaded with ``weights_only=True``, so a file can hold tensors and plain data only,
    never code. Model weights (:func:`load_weights`) and training checkpoints both come here."""
    if sha256 and file_sha256(path) != sha256.lower():
        raise TensorFileError("weights_sha256", f"does not match {path.name}")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same here
        raise TensorFileError("weights", f"cannot be loaded ({exc})") from exc


def load_weights(model: nn.Module, card: ModelCard, device: torch.device) -> nn.Module:
    """Load the card's weights into ``model`` (strict), on ``device``; eval mode.

    Accepts a bare state dict or one wrapped as ``{"model": ...}`` / ``{"state_dict": ...}``
    (MAE and most training scripts wrap it).
    """
    try:
        state = read_tensor_file(card.weights, device, sha256=card.weights_sha256)
    except TensorFileError as exc:
        raise ModelCardError(card.path, exc.field, exc.message) from exc
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelCardError(
            card.path, "weights", f"do not fit {card.architecture} ({exc})"
        ) from exc
    return model.to(device).eval()


def load_model(card: ModelCard, device: torch.device) -> nn.Module:
    """Build the card's architecture from its config and load its weights."""
    try:
        model = build_model(card.architecture, card.config)
    except (TypeError, UnknownArchitectureError) as exc:
        raise ModelCardError(card.path, "config", str(exc)) from exc
    return load_weights(model, card, device)


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(
    model: nn.Module,
    directory: Path | str,
    *,
    name: str,
    task: str,
    architecture: str,
    config: dict[str, Any],
    classes: Sequence[str],
    input_size: int,
    normalisation: Normalisation,
    provenance: dict[str, Any],
    metrics: dict[str, Any],
) -> ModelCard:
    """Write ``model``'s weights and a card for them into ``directory``; return the loaded card."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    card = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "task": task,
        "architecture": architecture,
        "config": config,
        "weights": weights.name,
        "weights_sha256": file_sha256(weights),
        "classes": list(classes),
        "input_size": input_size,
        "normalisation": {"mean": list(normalisation.mean), "std": list(normalisation.std)},
        "provenance": provenance,
        "metrics": metrics,
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(card, indent=2))
    return load_card(path)


def discover_cards(models_dir: Path | str | None) -> dict[str, ModelCard]:
    """Load every ``*.json`` card in ``models_dir``, keyed by task.

    A missing or empty folder gives ``{}`` (every stage then uses its baseline). Two cards for
    one task raise :class:`ModelCardError` on the second, since the choice would be a guess.
    """
    if models_dir is None or not Path(models_dir).is_dir():
        return {}
    cards: dict[str, ModelCard] = {}
    for path in sorted(Path(models_dir).glob("*.json")):
        card = load_card(path)
        if card.task not in TASKS:
            continue
        if card.task in cards:
            raise ModelCardError(
                path, "task", f"{card.task!r} already provided by {cards[card.task].path.name}"
            )
        cards[card.task] = card
    return cards
