"""The 100,000 x 100,000 px benchmark slide, generated once from real smear photos.

Cached under ``var/bench/``; the benchmarks reuse it. Tiled pyramidal JPEG TIFF at 0.1 µm/px.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml.paths import shared_data_dir  # noqa: E402
from ml.pyramid import build_mosaic_slide  # noqa: E402

#: ``$BMADCC_SHARED_DATA`` or ``<repo>/../shared/data``, as settings and the tests read it.
SHARED = shared_data_dir()
BENCH_DIR = REPO / "var" / "bench"


def ensure_bench_slide(size: int = 100_000) -> Path:
    """Path to the ``size`` x ``size`` benchmark slide, building it on first use."""
    out = BENCH_DIR / f"smear-{size}.tiff"
    if out.exists():
        return out
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    photos = sorted((SHARED / "smears" / "BCCD" / "JPEGImages").glob("*.jpg"))
    started = time.perf_counter()
    print(f"building {out} (first run only)…", file=sys.stderr)
    build_mosaic_slide(photos, out, width=size, height=size, mpp=0.1, block=10, quality=80)
    print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


if __name__ == "__main__":
    print(ensure_bench_slide())
