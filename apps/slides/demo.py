"""The demo marrow smear: a pyramidal TIFF mosaic of real smear photos, stamped 0.1 µm/px."""

from __future__ import annotations

from pathlib import Path

from ml.pyramid import build_mosaic_slide

DEMO_SIZE = 24_000
DEMO_MPP = 0.1  # SPEC §1: 100x oil objective, about 0.1 µm per pixel


class NoSmearPhotos(FileNotFoundError):
    """The shared data folder has no smear photos to build the demo slide from."""


def smear_photos(shared_data: Path) -> list[Path]:
    """The BCCD photos the mosaic is built from; raises :class:`NoSmearPhotos` when none."""
    photos = sorted((shared_data / "smears" / "BCCD" / "JPEGImages").glob("*.jpg"))
    if not photos:
        raise NoSmearPhotos(f"no smear photos under {shared_data}/smears/BCCD/JPEGImages")
    return photos


def ensure_demo_slide(shared_data: Path, out_dir: Path, size: int = DEMO_SIZE) -> Path:
    """Build the demo slide once; later calls return the cached file.

    Raises :class:`NoSmearPhotos` when it must be built and ``shared_data`` has no photos.
    """
    out = out_dir / f"demo-marrow-smear-{size}.tiff"
    if not out.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        build_mosaic_slide(smear_photos(shared_data), out, width=size, height=size, mpp=DEMO_MPP)
    return out
