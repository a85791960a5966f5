"""COCO instance segmentation: one file per split, polygons in level-0 slide px.

Layout: ``coco/<split>.json``. Each slide is one ``image`` (``file_name`` the slide key,
``width``/``height`` level-0 px, plus ``sha256``); each labelled cell is one ``annotation``
with its exterior ring as a flat ``segmentation`` polygon ``[x0, y0, x1, y1, ...]``, ``bbox``
``[x, y, w, h]``, ``area`` (of the exterior, level-0 px^2) and ``category_id`` from the class map
(1-based, class-map order). COCO polygons have no holes: holes are dropped. Cells with no
label (or a label outside the class map, which the export refuses beforehand) are left out.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import shapely

from ml.datasets.export.context import Context, Format
from ml.datasets.export.samples import SlideExport
from ml.geojson import polygons_from_rings
from ml.slide import SlideReader


class Coco(Format):
    name = "coco"

    def __init__(self) -> None:
        self._images: dict[str, list[dict[str, Any]]] = {}
        # Annotations are kept JSON-encoded (one string each): a tenth of the memory of dicts
        # of floats, and encoded by the C encoder one at a time.
        self._annotations: dict[str, list[str]] = {}
        self._next_image = 1
        self._next_annotation = 1

    def add(self, slide: SlideExport, reader: SlideReader | None, split: str, ctx: Context) -> None:
        image_id = self._next_image
        self._next_image += 1
        self._images.setdefault(split, []).append(
            {
                "id": image_id,
                "file_name": slide.key,
                "width": slide.width,
                "height": slide.height,
                "sha256": slide.sha256,
            }
        )
        categories = ctx.category_ids
        kept = [c for c in slide.cells if c.label in categories]
        if not kept:
            return
        exteriors = [np.asarray(c.coordinates[0], dtype=np.float64)[:, :2] for c in kept]
        shapes = polygons_from_rings(
            np.concatenate(exteriors), [len(r) for r in exteriors], np.ones(len(kept), np.int64)
        )
        areas, bounds = shapely.area(shapes), shapely.bounds(shapes)
        out = self._annotations.setdefault(split, [])
        encode = json.JSONEncoder(separators=(",", ":")).encode
        for cell, ring, area, (x0, y0, x1, y1) in zip(kept, exteriors, areas, bounds, strict=True):
            if len(ring) > 1 and (ring[0] == ring[-1]).all():
                ring = ring[:-1]
            item = {
                "id": self._next_annotation,
                "image_id": image_id,
                "category_id": categories[cell.label],
                "segmentation": [ring.ravel().tolist()],
                "area": float(area),
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "iscrowd": 0,
            }
            if cell.annotation_id is not None:
                item["annotation_id"] = cell.annotation_id
            out.append(encode(item))
            self._next_annotation += 1

    def finish(self, ctx: Context) -> None:
        categories = [
            {"id": i, "name": key, "supercategory": "cell", "display_name": ctx.class_map[key].name}
            for key, i in ctx.category_ids.items()
        ]
        for split, images in self._images.items():
            head = {
                "info": {"description": "bmadcc cell instances, level-0 slide px"},
                "images": images,
                "categories": categories,
            }
            with ctx.sink.open(f"coco/{split}.json") as out:
                out.write(json.dumps(head)[:-1].encode() + b', "annotations": [')
                _write_joined(out, self._annotations.get(split, []))
                out.write(b"]}")


def _write_joined(out: Any, encoded: list[str], batch: int = 2000) -> None:
    """Write the encoded items comma-separated, ``batch`` at a time (bounded extra memory)."""
    for start in range(0, len(encoded), batch):
        prefix = "," if start else ""
        out.write((prefix + ",".join(encoded[start : start + batch])).encode())
