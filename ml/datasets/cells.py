"""Expert-labelled single-cell images for training a cell classifier, decoded once into memory.

Two layouts are read:

- **PBC** (``<root>/manifest.csv`` with ``file`` and ``class_key`` columns; images under
  ``<root>/images/`` or ``<root>/``): the layout of ``../shared/data/cells/PBC``. Its empty
  ``class_key`` on the ``ERB`` rows (erythroblast, stage not given) becomes
  :data:`ml.classes.ERYTHROBLAST_UNSTAGED`.
- **ImageFolder** (``<root>/<class_key>/<image>``): one folder per class key, as torchvision's
  ImageFolder and the CELL-CLS-LABELED export.

Every image is decoded and resized once to ``(S, S, 3)`` uint8 (the whole PBC subset at 128 px
is 135 MB), so JPEG decoding never runs inside the training loop.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.classes import ERYTHROBLAST_UNSTAGED, classifier_labels
from ml.datasets.bccd import load_rgb
from ml.models.predictors import resize_to

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})

#: Manifest rows whose ``class_key`` is empty, mapped by their ``source_label`` (PBC's SOURCE.md:
#: "ERB | erythroblast, stage not given | (empty: erythroid, stage unknown)").
UNSTAGED_SOURCE_LABELS: dict[str, str] = {"ERB": ERYTHROBLAST_UNSTAGED}

#: What a card trained on ``../shared/data/cells/PBC`` says about its data (from its SOURCE.md).
PBC_PROVENANCE: dict[str, str] = {
    "name": "PBC (peripheral blood cell images, normal subjects), 2,750-image subset",
    "citation": (
        "Acevedo A, Merino A, Alférez S, Molina Á, Boldú L, Rodellar J. A dataset of microscopic "
        "peripheral blood cell images for development of automatic recognition systems. "
        "Data in Brief 30 (2020) 105474. Mendeley Data doi:10.17632/snkd93bnjr.1"
    ),
    "licence": "CC BY 4.0",
    "tissue": "peripheral blood, NOT bone marrow",
    "stain": "May Grünwald-Giemsa, CellaVision DM96",
}


class CellDataError(ValueError):
    """A labelled-cell folder is missing, empty, or has a bad manifest row or image."""


@dataclass(frozen=True)
class LabelledCells:
    """Decoded cell images and their labels.

    Attributes:
        images: ``(N, S, S, 3)`` uint8 RGB, each source image (or its central square) resized
            to ``S``.
        labels: ``(N,)`` int64 indices into ``classes``.
        classes: class keys in report order (:func:`ml.classes.classifier_labels`, then any key
            the default set does not know, sorted).
        files: ``N`` file paths relative to the data root.
        layout: ``"pbc-manifest"`` or ``"image-folder"``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    files: tuple[str, ...]
    layout: str

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {key: int(n) for key, n in zip(self.classes, counts, strict=True)}


def list_labelled_cells(root: Path) -> tuple[list[tuple[Path, str]], str]:
    """``([(image path, class key)], layout)`` for a PBC-manifest or ImageFolder ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise CellDataError(f"cell data folder {root} does not exist")
    manifest = root / "manifest.csv"
    items = (
        (_manifest_items(manifest), "pbc-manifest")
        if manifest.is_file()
        else (_folder_items(root), "image-folder")
    )
    if not items[0]:
        raise CellDataError(f"no labelled cell images found in {root}")
    return items


def _manifest_items(manifest: Path) -> list[tuple[Path, str]]:
    images = manifest.parent / "images"
    base = images if images.is_dir() else manifest.parent
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"file", "class_key"} <= set(rows[0]):
        raise CellDataError(f"{manifest} needs 'file' and 'class_key' columns")
    items = []
    for line, row in enumerate(rows, start=2):
        key = row["class_key"].strip() or UNSTAGED_SOURCE_LABELS.get(row.get("source_label", ""))
        if not key:
            raise CellDataError(f"{manifest} line {line}: empty class_key for {row['file']}")
        items.append((base / row["file"], key))
    return items


def _folder_items(root: Path) -> list[tuple[Path, str]]:
    return [
        (path, folder.name)
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def report_order(keys: Sequence[str]) -> tuple[str, ...]:
    """``keys`` in the default class set's report order; keys it does not know go last, sorted."""
    reference = {key: i for i, key in enumerate(classifier_labels())}
    return tuple(sorted(set(keys), key=lambda k: (reference.get(k, len(reference)), k)))


def load_labelled_cells(
    root: Path | str,
    *,
    img_size: int,
    limit_per_class: int | None = None,
    seed: int = 0,
    centre_crop: float = 1.0,
) -> LabelledCells:
    """Decode every labelled image under ``root`` (or ``limit_per_class`` per class, drawn with
    ``seed``) into a :class:`LabelledCells` at ``img_size`` px.

    ``centre_crop`` keeps the central square of that fraction of each image's shorter side
    before resizing (1.0: the whole image). Single-cell images such as PBC's centre the cell
    with a wide margin; a crop near the cell's extent frames it as the pipeline's box-offset
    crop does, and spends the pixels on the cell.
    """
    if not 0.0 < centre_crop <= 1.0:
        raise ValueError(f"centre_crop must be in (0, 1], got {centre_crop}")
    root = Path(root)
    items, layout = list_labelled_cells(root)
    classes = report_order([key for _, key in items])
    if len(classes) < 2:
        raise CellDataError(f"{root} holds only the class {classes}; a classifier needs two")
    if limit_per_class is not None:
        items = _limited(items, limit_per_class, seed)
    images = np.stack([_decoded(path, img_size, centre_crop) for path, _ in items])
    index = {key: i for i, key in enumerate(classes)}
    return LabelledCells(
        images=images,
        labels=np.array([index[key] for _, key in items], dtype=np.int64),
        classes=classes,
        files=tuple(str(path.relative_to(root)) for path, _ in items),
        layout=layout,
    )


def _limited(items: list[tuple[Path, str]], n: int, seed: int) -> list[tuple[Path, str]]:
    rng = np.random.default_rng(seed)
    chosen = []
    for key in sorted({k for _, k in items}):
        of_class = [item for item in items if item[1] == key]
        keep = rng.permutation(len(of_class))[:n]
        chosen += [of_class[i] for i in sorted(keep)]
    return chosen


def _decoded(path: Path, size: int, centre_crop: float) -> np.ndarray:
    try:
        return resize_to(central_square(load_rgb(path), centre_crop), size)
    except (OSError, ValueError) as exc:  # Pillow: missing file, or not an image
        raise CellDataError(f"cannot read cell image {path}: {exc}") from exc


def central_square(image: np.ndarray, fraction: float) -> np.ndarray:
    """The centred square of side ``fraction`` x the shorter side of an ``(H, W, 3)`` image."""
    h, w = image.shape[:2]
    side = max(round(fraction * min(h, w)), 1)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, validation, test)`` with each class split by ``fractions``.

    Each class is shuffled with ``seed`` and cut; a class with at least three items gets at least
    one in validation and one in test. The same labels and seed always give the same split, and
    the three parts are disjoint and cover every index. Each part is sorted.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1: {fractions}")
    rng = np.random.default_rng(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)[
            rng.permutation(np.count_nonzero(labels == label))
        ]
        n = len(members)
        n_val, n_test = (round(f * n) for f in fractions[1:])
        if n >= 3:
            n_val, n_test = max(n_val, 1), max(n_test, 1)
        parts[1].extend(members[:n_val].tolist())
        parts[2].extend(members[n_val : n_val + n_test].tolist())
        parts[0].extend(members[n_val + n_test :].tolist())
    train, val, test = (np.array(sorted(p), dtype=np.int64) for p in parts)
    return train, val, test
