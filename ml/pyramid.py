"""Pyramidal TIFF writing with libvips: flat images made viewable, and mosaic slides.

A flat JPEG/PNG/TIFF from a cytology scanner has no pyramid; converting it once into a tiled,
JPEG-compressed pyramidal TIFF lets OpenSlide serve it as fast as a native slide. Resolution is
written only when known (``mpp``), so a slide without a scale never gets an invented one.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path

import pyvips

from ml import limits

limits.apply()

FLAT_LOADERS = {"jpegload", "pngload", "tiffload", "webpload"}


class FlatImageError(Exception):
    """The file is not a flat image libvips can convert; ``message`` is fit to show a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def flat_image_loader(path: str | Path) -> str | None:
    """The libvips loader for a flat image file (e.g. ``jpegload``), or None if none knows it."""
    try:
        image = pyvips.Image.new_from_file(str(path))
        loader = image.get("vips-loader")
    except pyvips.Error:
        return None
    return str(loader).removesuffix("_source").removesuffix("_file") or None


def _save_pyramid(image: pyvips.Image, out: Path, *, mpp: float | None, quality: int) -> None:
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands == 1:
        image = image.colourspace("srgb")
    image = image.cast("uchar")
    options: dict[str, object] = {
        "tile": True,
        "tile_width": 256,
        "tile_height": 256,
        "pyramid": True,
        "compression": "jpeg",
        "Q": quality,
        "bigtiff": True,
    }
    if mpp:
        # libvips takes resolution in pixels per millimetre.
        options.update(xres=1000.0 / mpp, yres=1000.0 / mpp, resunit="cm")
    tmp = out.with_name(f".partial-{out.name}")
    try:
        image.tiffsave(str(tmp), **options)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def convert_flat_image(
    source: str | Path, out: str | Path, *, mpp: float | None = None, quality: int = 90
) -> Path:
    """Write ``source`` (flat JPEG/PNG/TIFF) as a tiled pyramidal TIFF at ``out``.

    Streams through libvips (sequential access), so the whole image never sits in memory.
    Raises :class:`FlatImageError` for an undecodable image or one declaring more than
    :data:`ml.limits.MAX_IMAGE_PIXELS`, checked from the header before any pixel is decoded.
    """
    out = Path(out)
    try:
        # fail_on: a truncated or corrupt stream is an error, not an image padded with black.
        image = pyvips.Image.new_from_file(str(source), access="sequential", fail_on="error")
        if image.width * image.height > limits.MAX_IMAGE_PIXELS:
            raise FlatImageError(
                f"the image declares {image.width:,} x {image.height:,} px, more than the "
                f"{limits.MAX_IMAGE_PIXELS:,} px a flat image may have"
            )
        _save_pyramid(image, out, mpp=mpp, quality=quality)
    except pyvips.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
        raise FlatImageError(f"the image could not be decoded: {first_line}") from exc
    return out


def build_mosaic_slide(
    photos: Sequence[str | Path],
    out: str | Path,
    *,
    width: int,
    height: int,
    mpp: float | None,
    seed: int = 0,
    block: int = 8,
    quality: int = 85,
) -> Path:
    """A pyramidal TIFF of ``width`` x ``height`` px tiled from real smear ``photos``.

    A ``block`` x ``block`` patch of randomly chosen, randomly flipped photos is built once and
    repeated (libvips ``replicate`` is lazy), so even a 100,000 px square slide streams to disk
    without holding more than the patch in memory.
    """
    rng = random.Random(seed)
    images = [pyvips.Image.new_from_file(str(p)).extract_band(0, n=3) for p in photos]
    tiles = []
    for _ in range(block * block):
        image = rng.choice(images)
        if rng.random() < 0.5:
            image = image.fliphor()
        if rng.random() < 0.5:
            image = image.flipver()
        tiles.append(image)
    patch = pyvips.Image.arrayjoin(tiles, across=block).copy_memory()
    across = -(-width // patch.width)
    down = -(-height // patch.height)
    mosaic = patch.replicate(across, down).crop(0, 0, width, height)
    _save_pyramid(mosaic, Path(out), mpp=mpp, quality=quality)
    return Path(out)
