"""A small real export for the training tests: BCCD photos as slides, their cells as outlines.

Each BCCD photo (640 x 480, :mod:`ml.datasets.bccd`) becomes a pyramidal TIFF slide
(:func:`ml.pyramid.convert_flat_image`); its ground-truth WBC and RBC boxes become the cells,
as the ellipse inscribed in each box (WBCs labelled ``neutrophil``, RBCs ``others``). The
export is written by the real writers (:func:`ml.datasets.export.write_export`) with the TOI
grid at 320 px (four tiles per photo, alternately TOI and not), CELL-SEG tiles resized to 256
(the tiny SAM's input), crops at 64 px and the thumbnail at factor 8 (80 x 60 px).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ml.datasets.bccd import load_bccd
from ml.datasets.export import (
    NON_TOI,
    TOI,
    CellSample,
    ClassInfo,
    ExportOptions,
    FolderSink,
    SlideExport,
    TileSample,
    write_export,
)
from ml.geometry import tile_grid
from ml.pyramid import convert_flat_image
from tests.ml.data import BCCD_DIR

CLASS_MAP = {
    "neutrophil": ClassInfo("neutrophil", "Neutrophil", "#1f77b4"),
    "others": ClassInfo("others", "Others", "#7f7f7f"),
}
OPTIONS = ExportOptions(tile_size=320, cell_seg_size=256, crop_size=64, thumbnail_factor=8.0)
FORMATS = ("roi_seg", "toi_cls", "cell_seg", "cell_cls_labeled", "cell_cls_unlabeled")


def ellipse(box: np.ndarray, n: int = 20) -> list[list[list[float]]]:
    """The ellipse inscribed in an XYXY box, as one closed GeoJSON ring."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    ring = [
        [cx + rx * math.cos(2 * math.pi * i / n), cy + ry * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return [ring + [ring[0]]]


def bccd_slides(folder: Path, n: int = 8) -> list[SlideExport]:
    """``n`` BCCD photos as slides with their ground-truth cells, ROI and TOI decisions."""
    slides = []
    for i, sample in enumerate(load_bccd(BCCD_DIR)[:n]):
        path = convert_flat_image(sample.image_path, folder / f"{sample.stem}.tiff")
        cells = [
            CellSample(ellipse(box), label)
            for key, label in (("WBC", "neutrophil"), ("RBC", "others"))
            for box in sample.boxes[key]
        ]
        tiles = [
            TileSample(tile, TOI if (tile.col + tile.row + i) % 2 == 0 else NON_TOI)
            for tile in tile_grid((sample.width, sample.height), OPTIONS.tile_size)
        ]
        # The ROI: the WBCs' neighbourhood, so masks differ from slide to slide.
        wbc = sample.boxes["WBC"][0] if len(sample.boxes["WBC"]) else np.array([200, 150, 440, 330])
        x0, y0 = max(0.0, wbc[0] - 120), max(0.0, wbc[1] - 90)
        x1, y1 = min(sample.width, wbc[2] + 120), min(sample.height, wbc[3] + 90)
        roi = [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]
        slides.append(
            SlideExport(
                key=sample.stem.replace("BloodImage_", "bccd"),
                path=str(path),
                sha256=f"{i:064x}",
                width=sample.width,
                height=sample.height,
                name=sample.image_path.name,
                roi=[roi],
                tiles=tiles,
                cells=cells,
            )
        )
    return slides


def write_bccd_export(root: Path, n: int = 8) -> Path:
    """Write the export into ``root / "export"`` and return that folder."""
    slides_dir = root / "slides"
    slides_dir.mkdir(parents=True, exist_ok=True)
    out = root / "export"
    with FolderSink(out) as sink:
        write_export(
            bccd_slides(slides_dir, n), formats=FORMATS, sink=sink, class_map=CLASS_MAP,
            options=OPTIONS,
        )  # fmt: skip
    return out
