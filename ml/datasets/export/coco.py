"""COCO instance segmentation: one file per split, polygons in level-0 slide px.

Layout: ``coco/<split>.json``. Each slide is one ``image`` (``file_name`` the slide key,
``width``/``height`` level-0 px, plus ``sha256``); each labelled cell is one ``annotation``
with its exterior ring as a flat ``segmentation`` polygon ``[x0, y0, x1, y1, ...]``, ``bbox``
``[x, y, w, h]``, ``area`` (shoelace, level-0 px^2) and ``category_id`` from the class map
(1-based, class-map order). COCO polygons have no holes: holes are dropped. Cells with no
label (or a label outside the class map, which the export refuses beforehand) are left out.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ml.datasets.export.context import Context, Format
from ml.datasets.export.samples import SlideExport
from ml.slide import SlideReader


class Coco(Format):
    name = "coco"

    def __init__(self) -> None:
        self._images: dict[str, list[dict[str, Any]]] = {}
        self._annotations: dict[str, list[dict[str, Any]]] = {}
        self._next_annotation = 1

    def add(self, slide: SlideExport, reader: SlideReader | None, split: str, ctx: Context) -> None:
        images = self._images.setdefault(split, [])
        image_id = sum(len(v) for v in self._images.values()) + 1
        images.append(
            {
                "id": image_id,
                "file_name": slide.key,
                "width": slide.width,
                "height": slide.height,
                "sha256": slide.sha256,
            }
        )
        categories = ctx.category_ids
        out = self._annotations.setdefault(split, [])
        for cell in slide.cells:
            category = categories.get(cell.label)
            if category is None:
                continue
            ring = np.asarray(cell.coordinates[0], dtype=np.float64).reshape(-1, 2)[:, :2]
            if len(ring) > 1 and (ring[0] == ring[-1]).all():
                ring = ring[:-1]
            out.append(_annotation(self._next_annotation, image_id, category, ring, cell))
            self._next_annotation += 1

    def finish(self, ctx: Context) -> None:
        categories = [
            {"id": i, "name": key, "supercategory": "cell", "display_name": ctx.class_map[key].name}
            for key, i in ctx.category_ids.items()
        ]
        for split, images in self._images.items():
            document = {
                "info": {"description": "bmadcc cell instances, level-0 slide px"},
                "images": images,
                "annotations": self._annotations.get(split, []),
                "categories": categories,
            }
            with ctx.sink.open(f"coco/{split}.json") as out:
                _write_json(out, document)


def _annotation(
    ann_id: int, image_id: int, category: int, ring: np.ndarray, cell: Any
) -> dict[str, Any]:
    x, y = ring[:, 0], ring[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    x0, y0 = float(x.min()), float(y.min())
    out = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category,
        "segmentation": [ring.reshape(-1).tolist()],
        "area": area,
        "bbox": [x0, y0, float(x.max()) - x0, float(y.max()) - y0],
        "iscrowd": 0,
    }
    if cell.annotation_id is not None:
        out["annotation_id"] = cell.annotation_id
    return out


def _write_json(out: Any, document: Any, buffer_chars: int = 1 << 20) -> None:
    """Encode in ~1 MB pieces, so a 50,000-polygon file is never held whole as bytes."""
    pending: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(separators=(",", ":")).iterencode(document):
        pending.append(chunk)
        size += len(chunk)
        if size >= buffer_chars:
            out.write("".join(pending).encode())
            pending, size = [], 0
    if pending:
        out.write("".join(pending).encode())
