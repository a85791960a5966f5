"""ml.slide: thumbnails come from the nearest pyramid level, errors read like sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.slide import SlideOpenError, SlideReader, SlideReadError, rgba_to_rgb
from tests.ml.data import SHARED_DATA as SHARED
from tests.ml.data import SLIDES_DIR as SLIDES


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory) -> Path:
    from ml.pyramid import build_mosaic_slide

    photos = sorted((SHARED / "smears/BCCD/JPEGImages").glob("*.jpg"))[:8]
    out = tmp_path_factory.mktemp("pyr") / "mosaic.tiff"
    return build_mosaic_slide(photos, out, width=12_000, height=9_000, mpp=0.1, block=4)


def test_factor_100_thumbnail_reads_a_coarse_level_never_level_0(pyramid, monkeypatch):
    with SlideReader(pyramid) as reader:
        levels_read = []
        original = reader._osr.read_region

        def spy(location, level, size):
            levels_read.append(level)
            return original(location, level, size)

        monkeypatch.setattr(reader._osr, "read_region", spy)
        thumb = reader.thumbnail_by_factor(100)
        downsamples = reader.level_downsamples
    assert thumb.shape == (90, 120, 3) and thumb.dtype == np.uint8
    assert levels_read and min(levels_read) >= 5  # downsample 32 or coarser, not 1
    assert downsamples[min(levels_read)] <= 100


def test_thumbnail_fits_the_requested_box_and_keeps_the_aspect(pyramid):
    with SlideReader(pyramid) as reader:
        assert reader.thumbnail(400).shape == (300, 400, 3)
        assert reader.mpp == (pytest.approx(0.1), pytest.approx(0.1))


def test_thumbnail_shows_stained_smear_not_blank(pyramid):
    with SlideReader(pyramid) as reader:
        thumb = reader.thumbnail(256).astype(int)
    assert thumb.std() > 5 and thumb.mean() < 245


def test_unsupported_file_raises_a_readable_open_error():
    with pytest.raises(SlideOpenError, match="not a slide OpenSlide can read: unsupported TIFF"):
        SlideReader(SLIDES / "unopenable.tiff")


def test_damaged_pixels_raise_a_read_error():
    with SlideReader(SLIDES / "unreadable.svs") as reader, pytest.raises(SlideReadError):
        reader.read_region((0, 0), 0, (16, 16))


def test_transparent_pixels_become_white_glass():
    rgba = np.array([[[10, 20, 30, 0], [10, 20, 30, 255]]], dtype=np.uint8)
    assert rgba_to_rgb(rgba).tolist() == [[[255, 255, 255], [10, 20, 30]]]


def test_an_opaque_region_keeps_its_colours_exactly():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (37, 41, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgb = rgba_to_rgb(rgba)
    assert rgb.shape == (37, 41, 3) and rgb.flags.c_contiguous
    assert np.array_equal(rgb, rgba[..., :3])


def test_one_transparent_pixel_sends_the_region_through_the_composite():
    rgba = np.full((4, 4, 4), 255, dtype=np.uint8)
    rgba[..., :3] = 40
    rgba[2, 3, 3] = 0
    rgb = rgba_to_rgb(rgba)
    assert rgb[2, 3].tolist() == [255, 255, 255] and rgb[0, 0].tolist() == [40, 40, 40]
