"""Readers of the export layouts (:mod:`ml.datasets.export`) for the training commands.

Every training format is written as ``<format>/<split>/...`` with the split drawn **by slide**
(``manifest.json``'s ``split``). :func:`read_splits` keeps that split. When the export has no
validation side (too few slides for one), a seeded share of the training slides becomes the
validation side; a folder without split folders is split the same way. Either way a slide
never lands on two sides, since samples are grouped by the slide key in their file names
(``<slide>.png``, ``<slide>_c<col>_r<row>.png``, ``<slide>_<n>.png``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from ml.crops import resize_to
from ml.datasets.cells import IMAGE_SUFFIXES, LabelledCells, report_order
from ml.datasets.export.cell_cls import LABELED
from ml.datasets.export.split import SPLITS

T = TypeVar("T")
#: The share of slides held out for validation when the export has no validation side (the
#: method's 80/20 splits).
VAL_SHARE = 0.2


class TrainingDataError(ValueError):
    """The folder does not hold the export layout a training command reads."""


@dataclass
class Splits(Generic[T]):
    """Samples per side; ``provenance`` says where the split came from."""

    train: list[T]
    val: list[T]
    test: list[T]
    provenance: dict[str, Any] = field(default_factory=dict)

    def sizes(self) -> str:
        return f"{len(self.train)}/{len(self.val)}/{len(self.test)}"


def format_root(data: Path, fmt: str) -> Path:
    """``<data>/<fmt>`` for an export folder; ``data`` itself when it is that folder."""
    data = Path(data)
    if (data / fmt).is_dir():
        return data / fmt
    if data.name == fmt or any((data / s).is_dir() for s in SPLITS):
        return data
    raise TrainingDataError(f"{data} holds no {fmt}/ folder (write one with the export)")


def read_manifest(data: Path) -> dict[str, Any] | None:
    """The export's ``manifest.json`` (next to the format folder), if there is one."""
    for folder in (Path(data), Path(data).parent):
        path = folder / "manifest.json"
        if path.is_file():
            return dict(json.loads(path.read_text()))
    return None


def read_splits(
    data: Path,
    fmt: str,
    collect: Callable[[Path], list[T]],
    slide_of: Callable[[T], str],
    *,
    seed: int,
) -> Splits[T]:
    """``collect(<root>/<split>)`` per side of ``fmt``'s layout; see the module docstring.

    Raises :class:`TrainingDataError` when no training sample is found.
    """
    root = format_root(data, fmt)
    manifest = read_manifest(data)
    by_side = {s: collect(root / s) if (root / s).is_dir() else [] for s in SPLITS}
    source = "the export's split by slide (manifest.json)" if manifest else "the split folders"
    if not any((root / s).is_dir() for s in SPLITS):
        by_side["train"], source = collect(root), "none in the data"
    if not by_side["train"]:
        raise TrainingDataError(f"no training samples under {root}")
    provenance: dict[str, Any] = {"by": "slide", "source": source, "seed": seed}
    if manifest:
        provenance["export_created_at"] = manifest.get("created_at")
        provenance["export_split_seed"] = manifest.get("split", {}).get("seed")
    if not by_side["val"]:
        by_side["train"], by_side["val"], held = _hold_out(by_side["train"], slide_of, seed)
        provenance["validation"] = (
            f"no validation side in the data: {len(held)} of the training slides held out, "
            f"seeded ({seed}), {VAL_SHARE:.0%}"
        )
        if len(held) == 0:
            provenance["validation"] = "one slide only: validated on the training samples"
    return Splits(by_side["train"], by_side["val"], by_side["test"], provenance)


def _hold_out(
    samples: list[T], slide_of: Callable[[T], str], seed: int
) -> tuple[list[T], list[T], list[str]]:
    slides = sorted({slide_of(s) for s in samples})
    if len(slides) < 2:
        return samples, list(samples), []
    random.Random(seed).shuffle(slides)
    held = set(slides[: max(1, round(len(slides) * VAL_SHARE))])
    train = [s for s in samples if slide_of(s) not in held]
    val = [s for s in samples if slide_of(s) in held]
    return train, val, sorted(held)


def tile_slide(stem: str) -> str:
    """The slide key of a tile stem ``<slide>_c<col>_r<row>`` (or a crop stem ``<slide>_<n>``)."""
    head, _, tail = stem.rpartition("_")
    if tail.startswith("r") and head.rpartition("_")[2].startswith("c"):
        return head.rpartition("_")[0]
    return head or stem


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def read_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an exported PNG."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise TrainingDataError(f"{path} is not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """``(H, W)`` bool of an exported mask PNG (any non-zero pixel is inside)."""
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise TrainingDataError(f"{path} is not a readable mask")
    return np.asarray(mask if mask.ndim == 2 else mask[..., 0]) > 0


# ------------------------------------------------------------------------- one per format


def roi_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """ROI-SEG: ``(images/<slide>.png, masks/<slide>.png)`` pairs of one side."""
    pairs = [(p, folder / "masks" / p.name) for p in pngs(folder / "images")]
    missing = [str(m) for _, m in pairs if not m.is_file()]
    if missing:
        raise TrainingDataError(f"ROI masks missing: {missing[:3]}")
    return pairs


def toi_tiles(folder: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """TOI-CLS: ``(tile, class index)`` for each tile in ``<class>/`` of one side."""
    return [(p, i) for i, name in enumerate(classes) for p in pngs(folder / name)]


def cell_seg_tiles(folder: Path) -> list[tuple[Path, list[Path]]]:
    """CELL-SEG: ``(images/<tile>.png, [masks/<tile>/<n>.png, ...])`` for one side, ``n`` order."""
    tiles = []
    for image in pngs(folder / "images"):
        masks = sorted((folder / "masks" / image.stem).glob("*.png"), key=lambda p: int(p.stem))
        tiles.append((image, masks))
    return tiles


def image_folder(folder: Path) -> list[tuple[Path, str]]:
    """CELL-CLS-LABELED: ``(crop, class key)`` for each crop in ``<class>/`` of one side."""
    if not folder.is_dir():
        return []
    return [
        (path, sub.name)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(sub.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def labelled_export(
    data: Path, *, img_size: int, seed: int
) -> tuple[LabelledCells, tuple[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]] | None:
    """A CELL-CLS-LABELED export's crops decoded at ``img_size`` with its split by slide:
    ``(cells, (train, val, test) indices, split provenance)``; ``None`` when ``data`` is not
    such an export (then it is a plain ImageFolder or a PBC folder)."""
    data = Path(data)
    if not ((data / LABELED).is_dir() or (data.name == LABELED and (data / "train").is_dir())):
        return None
    splits = read_splits(
        data, LABELED, image_folder, lambda item: tile_slide(item[0].stem), seed=seed
    )
    sides = (splits.train, splits.val, splits.test)
    items = [item for side in sides for item in side]
    classes = report_order([key for _, key in items])
    index = {key: i for i, key in enumerate(classes)}
    cells = LabelledCells(
        images=np.stack([resize_to(read_rgb(path), img_size) for path, _ in items]),
        labels=np.array([index[key] for _, key in items], dtype=np.int64),
        classes=classes,
        files=tuple(str(path) for path, _ in items),
        layout="export",
    )
    bounds = np.cumsum([0, *(len(side) for side in sides)])
    ranges = tuple(np.arange(bounds[i], bounds[i + 1]) for i in range(3))
    return cells, (ranges[0], ranges[1], ranges[2]), splits.provenance
