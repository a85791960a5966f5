"""Coordinate frames: masks, polygons and tiles move between thumbnail, tile and slide px."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.datasets.bccd import load_annotation
from ml.geometry import (
    Frame,
    LongestSidePad,
    Tile,
    coverage_fractions,
    mask_to_polygons,
    polygons_to_mask,
    square_box,
    thumbnail_frame,
    tile_grid,
)
from ml.slide import open_slide
from tests.ml.data import BCCD_DIR, SLIDES_DIR


def _wbc_mask(stem: str = "BloodImage_00007") -> np.ndarray:
    """A real cell-shaped mask: the dark (nuclear) pixels inside a BCCD white-cell box."""
    sample = load_annotation(BCCD_DIR / "Annotations" / f"{stem}.xml")
    image = sample.image()
    x0, y0, x1, y1 = sample.boxes["WBC"][0].astype(int)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    mask = np.zeros(grey.shape, dtype=bool)
    mask[y0:y1, x0:x1] = grey[y0:y1, x0:x1] < np.percentile(grey, 10)
    return mask


def _smear_thumbnail_mask() -> np.ndarray:
    """A real thumbnail mask with holes and islands: tissue pixels of the CMU-1 region."""
    with open_slide(SLIDES_DIR / "cmu-1-small-region.svs") as slide:
        thumb = slide.thumbnail_by_factor(20)
    return cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY) < 200


def test_mask_to_polygons_round_trips_a_real_cell_mask_exactly() -> None:
    mask = _wbc_mask()
    frame = Frame(sx=1.0, sy=1.0, ox=51_200.0, oy=3_200.0)  # tile at (51200, 3200) in the slide
    polygons = mask_to_polygons(mask, frame)
    assert polygons, "the nuclear mask should trace into polygons"
    assert np.array_equal(polygons_to_mask(polygons, frame, mask.shape), mask)


def test_polygons_follow_pixel_edges_so_a_scaled_mask_keeps_its_outline() -> None:
    mask = _smear_thumbnail_mask()
    assert mask.any() and not mask.all()
    polygons = mask_to_polygons(mask, Frame(sx=7.0, sy=7.0))
    # Rasterised on a grid 7x finer, the outline must match the nearest-neighbour upsampling.
    upsampled = np.kron(mask, np.ones((7, 7), dtype=bool))
    assert np.array_equal(polygons_to_mask(polygons, Frame(), upsampled.shape), upsampled)


def test_holes_survive_the_round_trip() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:35, 5:35] = True
    mask[15:20, 15:20] = False  # a hole
    mask[25, 25] = False  # a one-pixel hole
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 1 and len(polygons[0]) == 3
    assert np.array_equal(polygons_to_mask(polygons, Frame(), mask.shape), mask)


def test_coordinates_round_trip_thumbnail_to_tile_to_slide() -> None:
    """A thumbnail-px mask, traced to level-0 polygons, lands on the right pixels of any tile."""
    mask = _smear_thumbnail_mask()
    slide_wh = (2220, 2967)
    thumb_frame = thumbnail_frame(mask.shape, slide_wh)
    polygons = mask_to_polygons(mask, thumb_frame)  # level-0 px
    tile = Tile(col=1, row=1, x=1000, y=1000, w=600, h=500)
    tile_mask = polygons_to_mask(polygons, Frame(ox=tile.x, oy=tile.y), (tile.h, tile.w))
    # Ground truth: the thumbnail pixel under each tile pixel's centre.
    xs = (np.arange(tile.w) + tile.x + 0.5) / thumb_frame.sx
    ys = (np.arange(tile.h) + tile.y + 0.5) / thumb_frame.sy
    expected = mask[ys.astype(int)[:, None], xs.astype(int)[None, :]]
    assert np.array_equal(tile_mask, expected)
    # And a tile-px point maps to the slide and back unchanged.
    tile_frame = Frame(ox=tile.x, oy=tile.y)
    point = np.array([[123.5, 456.25]])
    assert np.allclose(tile_frame.from_parent(tile_frame.to_parent(point)), point)


def test_composed_frames_equal_applying_each_in_turn() -> None:
    model_to_thumb = LongestSidePad((300, 200), 256).frame()
    thumb_to_slide = thumbnail_frame((300, 200), (20_000, 30_000))
    composed = model_to_thumb.then(thumb_to_slide)
    points = np.array([[0.0, 0.0], [170.5, 256.0], [10.0, 99.0]])
    assert np.allclose(
        composed.to_parent(points), thumb_to_slide.to_parent(model_to_thumb.to_parent(points))
    )
    # The resized image's far corner is the slide's far corner.
    nh, nw = LongestSidePad((300, 200), 256).resized_hw
    assert np.allclose(composed.to_parent(np.array([nw, nh])), [20_000, 30_000])


def test_longest_side_pad_maps_a_map_back_to_the_thumbnail_shape() -> None:
    transform = LongestSidePad((30, 23), 256)
    assert transform.resized_hw == (256, 196)
    image = np.zeros((30, 23, 3), dtype=np.uint8)
    assert transform.resize(image).shape == (256, 196, 3)
    back = transform.unapply_map(np.ones((256, 256), dtype=np.float32))
    assert back.shape == (30, 23) and np.allclose(back, 1.0)


def test_tile_grid_covers_the_slide_once_with_clipped_edge_tiles() -> None:
    tiles = tile_grid((3500, 1700), 1600)
    assert [(t.col, t.row) for t in tiles] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert sum(t.w * t.h for t in tiles) == 3500 * 1700
    assert tiles[2].w == 300 and tiles[3].h == 100


def test_each_point_has_exactly_one_owning_tile() -> None:
    tiles = tile_grid((3200, 3200), 1600)
    points = np.array([[1600.0, 1600.0], [1599.999, 0.0], [0.0, 3199.5]])
    owners = np.stack([t.contains(points) for t in tiles])
    assert (owners.sum(axis=0) == 1).all()


def test_coverage_fractions_are_exact_for_fractional_boxes() -> None:
    mask = _smear_thumbnail_mask()
    frame = Frame(sx=20.0, sy=20.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x0, y0 = rng.uniform(0, 1500, size=2)
        box = np.array([x0, y0, x0 + rng.uniform(30, 700), y0 + rng.uniform(30, 700)])
        # Brute force: rasterise the box on a grid 20x finer than the mask (one level-0 px each).
        xs = np.arange(np.floor(box[0]), np.ceil(box[2])) + 0.5
        ys = np.arange(np.floor(box[1]), np.ceil(box[3])) + 0.5
        wx = np.clip(np.minimum(xs + 0.5, box[2]) - np.maximum(xs - 0.5, box[0]), 0, 1)
        wy = np.clip(np.minimum(ys + 0.5, box[3]) - np.maximum(ys - 0.5, box[1]), 0, 1)
        rows = np.clip((ys // 20).astype(int), 0, mask.shape[0] - 1)
        cols = np.clip((xs // 20).astype(int), 0, mask.shape[1] - 1)
        inside = (
            mask[rows[:, None], cols[None, :]]
            & (ys[:, None] < mask.shape[0] * 20)
            & (xs[None, :] < mask.shape[1] * 20)
        )
        expected = (inside * wy[:, None] * wx[None, :]).sum() / (
            (box[2] - box[0]) * (box[3] - box[1])
        )
        assert coverage_fractions(mask, frame, box[None])[0] == pytest.approx(expected, abs=1e-9)


def test_square_box_adds_the_offset_around_the_longer_side() -> None:
    assert square_box([10, 20, 30, 60], 0.25) == (-10, 10, 50, 70)
    x0, y0, x1, y1 = square_box([0, 0, 7, 3], 0.0)
    assert x1 - x0 == y1 - y0 == 7
