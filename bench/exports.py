"""Training-data export on one slide with 50,000 annotated cells. Prints ONE JSON line.

- ``coco_50k_s``: COCO JSON (level-0 polygons) of every cell, written to a folder. Target <= 10.
- ``crops_50k_s``: CELL-CLS-LABELED as a ZIP, every crop read from the slide, cut by the
  classifier's ``crop_square`` and PNG-encoded, streamed into a non-seekable writer (a file on
  disk behind it). Target <= 120 on 2 cores.
- ``zip_stream_first_byte_s``: from the start of that export to the first byte reaching the
  writer. Target <= 1.
- ``export_peak_rss_mb``: the process's peak resident memory over the whole run (inputs
  included). Target <= 1,024.

Cells are generated as the agreement bench generates them (``bench/agreement.py``: 7-20 µm
outlines of 20-60 vertices packed into 1600 px tiles) on the 100k bench slide
(``bench/synthetic.py``, built once into var/bench/), with classes drawn from the 22 defaults.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.agreement import SLIDE, outline, place_cells, random_shape  # noqa: E402
from bench.synthetic import BENCH_DIR, ensure_bench_slide  # noqa: E402
from ml.classes import DEFAULT_CLASSES  # noqa: E402
from ml.datasets.export import (  # noqa: E402
    CellSample,
    ClassInfo,
    FolderSink,
    SlideExport,
    ZipSink,
    compact,
    write_export,
)
from ml.slide import open_slide  # noqa: E402


def cells(n: int, seed: int) -> list[CellSample]:
    rng = np.random.default_rng(seed)
    keys = [c.key for c in DEFAULT_CLASSES]
    out = []
    for i, (cx, cy, radius) in enumerate(place_cells(rng, n)):
        ring = outline(rng, cx, cy, radius, random_shape(rng), int(rng.integers(20, 61)), 0.8)
        out.append(CellSample(compact([ring]), keys[int(rng.integers(len(keys)))], i))
    return out


class FirstByteWriter(io.RawIOBase):
    """A non-seekable writer onto a file that notes when its first byte arrived."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.first_byte_at: float | None = None
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
        self.bytes += len(data)
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()
        super().close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--skip-crops", action="store_true")
    args = parser.parse_args()
    path = ensure_bench_slide(SLIDE)
    with open_slide(path) as reader:
        width, height = reader.dimensions
    started = time.perf_counter()
    sample = SlideExport(
        key="bench",
        path=str(path),
        sha256="0" * 64,
        width=width,
        height=height,
        cells=cells(args.cells, 0),
    )
    generate_s = time.perf_counter() - started
    class_map = {c.key: ClassInfo(c.key, c.name, c.colour) for c in DEFAULT_CLASSES}
    work = BENCH_DIR / "exports-tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        with FolderSink(work / "coco") as sink:
            write_export([sample], formats=["coco"], sink=sink, class_map=class_map)
        coco_s, coco_cpu_s = time.perf_counter() - started, time.process_time() - cpu
        coco_mb = (work / "coco" / "coco" / "train.json").stat().st_size / 2**20
        line: dict[str, Any] = {
            "coco_50k_s": round(coco_s, 2),
            "coco_cpu_s": round(coco_cpu_s, 2),
            "coco_json_mb": round(coco_mb, 1),
        }
        if not args.skip_crops:
            writer = FirstByteWriter(work / "crops.zip")
            started, cpu = time.perf_counter(), time.process_time()
            with ZipSink(writer) as sink:
                write_export([sample], formats=["cell_cls_labeled"], sink=sink, class_map=class_map)
            crops_s, crops_cpu_s = time.perf_counter() - started, time.process_time() - cpu
            writer.close()
            line |= {
                "crops_50k_s": round(crops_s, 1),
                # CPU seconds of this process (all threads): honest on a machine shared with
                # other jobs, where wall time mostly measures the queue for the two cores.
                "crops_cpu_s": round(crops_cpu_s, 1),
                "zip_stream_first_byte_s": round((writer.first_byte_at or 0) - started, 3),
                "crops_zip_mb": round(writer.bytes / 2**20, 1),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    line |= {
        "export_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cells": args.cells,
        "slide_px": [width, height],
        "generate_cells_s": round(generate_s, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "targets": {
            "coco_50k_s": 10,
            "crops_50k_s": 120,
            "export_peak_rss_mb": 1024,
            "zip_stream_first_byte_s": 1,
        },
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
