"""Crops of a real slide: grouped reads give the crops one-by-one reads give, white past the
slide's edge, with outlines drawn where the cell is, laid out in a sprite sheet."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.crops import draw_outline, jpeg, slide_crops, sprite_sheet
from ml.slide import SlideReader
from tests.conftest import SLIDE_FILE


class CountingReader:
    """A real :class:`SlideReader` that counts its region reads."""

    def __init__(self) -> None:
        self.reader = SlideReader(SLIDE_FILE)
        self.reads = 0
        self.dimensions = self.reader.dimensions
        self.level_downsamples = self.reader.level_downsamples
        self.best_level_for_downsample = self.reader.best_level_for_downsample

    def read_region(self, location, level, size):
        self.reads += 1
        return self.reader.read_region(location, level, size)


def neighbours(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` 40 x 35 px cell boxes 6 px apart in a row: overlapping crops."""
    return [(1100 + 6 * i, 1100, 1140 + 6 * i, 1135) for i in range(n)]


def test_neighbouring_cells_are_read_once_and_cropped_as_one_by_one() -> None:
    grouped = CountingReader()
    crops = slide_crops(grouped, neighbours(30), 0.25, 64)
    assert grouped.reads == 1
    single = CountingReader()
    alone = [slide_crops(single, [box], 0.25, 64)[0] for box in neighbours(30)]
    assert single.reads == 30
    assert all(
        a.shape == (64, 64, 3) and np.array_equal(a, b) for a, b in zip(crops, alone, strict=False)
    )


def test_scattered_cells_are_read_one_by_one() -> None:
    reader = CountingReader()
    boxes = [(50, 50, 90, 90), (2000, 2800, 2040, 2840), (1000, 100, 1040, 140)]
    crops = slide_crops(reader, boxes, 0.25, 32, group_px=4096)
    assert reader.reads == 3 and len(crops) == 3


def test_past_the_slide_edge_a_crop_is_white_glass() -> None:
    reader = SlideReader(SLIDE_FILE)
    corner, outside = slide_crops(reader, [(0, 0, 30, 30), (-500, -500, -400, -400)], 0.25, 64)
    assert (corner[0, 0] == 255).all() and corner.std() > 0
    assert (outside == 255).all()


def test_the_outline_is_drawn_where_the_cell_is() -> None:
    box = (1000.0, 1200.0, 1040.0, 1240.0)
    ring = [[1000, 1200], [1040, 1200], [1040, 1240], [1000, 1240], [1000, 1200]]
    (crop,) = slide_crops(SlideReader(SLIDE_FILE), [box], 0.25, 120)
    drawn = draw_outline(crop.copy(), ring, box, 0.25, colour=(0, 255, 0))
    changed = np.argwhere((drawn != crop).any(axis=2))
    # The square is 60 px for a 40 px box: the outline is 10 px in, at 2x scale 20 px.
    assert changed.min(axis=0) == pytest.approx([20, 20], abs=2)
    assert changed.max(axis=0) == pytest.approx([100, 100], abs=2)


def test_a_sprite_sheet_places_crop_i_at_its_column_and_row() -> None:
    crops = [np.full((8, 8, 3), i, np.uint8) for i in range(5)]
    sheet = sprite_sheet(crops, columns=2)
    assert sheet.shape == (24, 16, 3)
    assert sheet[16, 0, 0] == 4 and sheet[8, 8, 0] == 3 and (sheet[16:, 8:] == 255).all()
    decoded = cv2.imdecode(np.frombuffer(jpeg(sheet), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (24, 16, 3)
