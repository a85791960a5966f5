"""Cell stage: red cells filtered, tile ownership, and cells on tile borders counted once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.datasets.bccd import load_annotation, load_bccd
from ml.geometry import Tile
from ml.metrics import box_iou_matrix
from ml.models.sam_everything import SamMasks
from ml.pipeline import PipelineConfig, build_stages, run_stages
from ml.pyramid import convert_flat_image
from ml.slide import open_slide
from ml.stages.cells import (
    Cell,
    MaskCrop,
    NucleatedFilter,
    cells_in_window,
    dedup_across_tiles,
    label_image_to_crops,
    nucleus_prompts,
)
from ml.stages.reader import Window
from tests.ml.data import BCCD_DIR

BCCD_MPP = 0.075


def _ellipse(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[: y1 - y0, : x1 - x0] + 0.5
    rx, ry = (x1 - x0) / 2, (y1 - y0) / 2
    return ((xs - rx) / rx) ** 2 + ((ys - ry) / ry) ** 2 <= 1


def _as_sam_masks(boxes: np.ndarray) -> SamMasks:
    """Cell-shaped (elliptic) masks filling annotated boxes, as SAM would return them."""
    boxes = np.floor(boxes).astype(np.int64)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 2)
    n = len(boxes)
    return SamMasks(boxes.astype(np.float64), [_ellipse(b) for b in boxes], np.ones(n), np.ones(n))


def test_nucleated_filter_keeps_white_cells_and_drops_red_cells_and_platelets() -> None:
    kept = {"WBC": 0, "RBC": 0, "Platelets": 0}
    total = dict.fromkeys(kept, 0)
    cell_filter = NucleatedFilter()
    for sample in load_bccd(BCCD_DIR)[:30]:
        image = sample.image()
        for name in kept:
            boxes = sample.boxes[name]
            if len(boxes):
                kept[name] += len(cell_filter.keep(image, _as_sam_masks(boxes), BCCD_MPP))
                total[name] += len(boxes)
    assert kept["WBC"] == total["WBC"] > 20
    assert kept["RBC"] <= 0.02 * total["RBC"]
    assert kept["Platelets"] <= 0.05 * total["Platelets"]


def test_a_nucleus_mask_inside_its_cell_mask_is_dropped() -> None:
    sample = load_annotation(BCCD_DIR / "Annotations" / "BloodImage_00007.xml")
    cell = np.floor(sample.boxes["WBC"][0]).astype(np.int64)
    centre = (cell[:2] + cell[2:]) // 2
    nucleus = np.concatenate([centre - 40, centre + 40])
    found = _as_sam_masks(np.stack([cell, nucleus]))
    assert NucleatedFilter().keep(sample.image(), found, BCCD_MPP) == [0]


def test_label_image_to_crops_gives_one_tight_crop_per_label() -> None:
    labels = np.zeros((50, 60), dtype=np.int32)
    labels[5:10, 7:20] = 1
    labels[30:45, 40:42] = 3  # label 2 absent
    crops = label_image_to_crops(labels)
    assert [c.box.tolist() for c in crops] == [[7, 5, 20, 10], [40, 30, 42, 45]]
    assert all(c.mask.all() for c in crops)


def _crop(x0: int, y0: int, x1: int, y1: int) -> MaskCrop:
    return MaskCrop(np.array([x0, y0, x1, y1]), np.ones((y1 - y0, x1 - x0), dtype=bool), 1.0)


def test_a_tile_keeps_only_cells_whose_centroid_it_owns_and_no_partial_views() -> None:
    slide_wh = (10_000, 10_000)
    tile = Tile(col=1, row=1, x=1600, y=1600, w=1600, h=1600)
    window = Window(tile, 1400, 1400, 2000, 2000)  # the tile plus a 200 px margin
    crops = [
        _crop(300, 300, 400, 400),  # centroid (1750, 1750): owned
        _crop(150, 300, 240, 400),  # centroid (1595, 1750): left neighbour's
        _crop(0, 500, 80, 600),  # touches the window's left edge: a partial view
        _crop(1750, 1750, 1850, 1850),  # centroid (3200, 3200): the next tile's (half-open)
    ]
    cells = [cell for cell, _ in cells_in_window(window, tile, crops, slide_wh)]
    assert len(cells) == 1
    assert cells[0].centroid.tolist() == [1750.0, 1750.0]
    assert cells[0].box.tolist() == [1700.0, 1700.0, 1800.0, 1800.0]
    assert cells[0].tile == (1, 1)


def test_a_mask_on_the_slide_edge_is_not_a_partial_view() -> None:
    tile = Tile(col=0, row=0, x=0, y=0, w=1600, h=1600)
    window = Window(tile, 0, 0, 1800, 1800)
    cells = cells_in_window(window, tile, [_crop(0, 0, 50, 50)], (5000, 5000))
    assert len(cells) == 1


def test_dedup_across_tiles_keeps_the_better_of_two_views_of_one_cell() -> None:
    def cell(box: list[float], score: float, tile: tuple[int, int]) -> Cell:
        b = np.array(box)
        return Cell(np.zeros((4, 2)), b, (b[:2] + b[2:]) / 2, 1.0, score, tile)

    cells = [
        cell([1550, 100, 1650, 200], 0.8, (0, 0)),
        cell([1552, 101, 1651, 199], 0.9, (1, 0)),  # the same cell, seen by the next tile
        cell([1500, 150, 1580, 230], 0.7, (0, 0)),  # a touching neighbour in the first tile
    ]
    kept = dedup_across_tiles(cells, 0.5, 1600)
    assert [c.score for c in kept] == [0.7, 0.9]


@pytest.fixture(scope="module")
def bccd_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real smear photo as a pyramidal TIFF slide at its pixel size."""
    out = tmp_path_factory.mktemp("slide") / "bccd-00007.tiff"
    return convert_flat_image(BCCD_DIR / "JPEGImages" / "BloodImage_00007.jpg", out, mpp=BCCD_MPP)


def test_a_white_cell_cut_by_a_tile_border_is_counted_once(bccd_slide: Path) -> None:
    sample = load_annotation(BCCD_DIR / "Annotations" / "BloodImage_00007.xml")
    wbc = sample.boxes["WBC"]  # x 192..387: the 300 px grid line cuts through it
    config = PipelineConfig(tile_size=300, min_roi_fraction=0.0, thumbnail_factor=10).for_device(
        torch.device("cpu")
    )
    stages = build_stages({}, torch.device("cpu"), config)
    with open_slide(bccd_slide) as slide:
        result = run_stages(slide, stages, config, device=torch.device("cpu"))
    assert result.segmented_tiles == 6
    boxes = np.array([c.box for c in result.cells])
    matches = (box_iou_matrix(wbc, boxes) >= 0.5).sum(axis=1)
    assert matches.tolist() == [1] * len(wbc)
    owner = [c for c in result.cells if box_iou_matrix(wbc, c.box[None])[0, 0] >= 0.5][0]
    assert Tile(*owner.tile, x=owner.tile[0] * 300, y=owner.tile[1] * 300, w=300, h=300).contains(
        owner.centroid
    )[0]


def test_nucleus_prompts_fall_on_white_cells_and_never_on_red_cells() -> None:
    on_wbc = total = 0
    for sample in load_bccd(BCCD_DIR)[:20]:
        points = nucleus_prompts(sample.image(), NucleatedFilter(), BCCD_MPP)
        inside = [
            (
                (points[:, 0] >= b[0])
                & (points[:, 0] < b[2])
                & (points[:, 1] >= b[1])
                & (points[:, 1] < b[3])
            )
            for b in sample.boxes["WBC"]
        ]
        assert all(hit.any() for hit in inside), f"a white cell of {sample.stem} got no prompt"
        on_wbc += int(np.any(inside, axis=0).sum()) if inside else 0
        total += len(points)
    assert on_wbc / total > 0.9
