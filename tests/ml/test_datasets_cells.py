"""Labelled cell images (PBC manifest and ImageFolder) and the seeded stratified split."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.classes import ERYTHROBLAST_UNSTAGED
from ml.datasets.cells import (
    CellDataError,
    list_labelled_cells,
    load_labelled_cells,
    report_order,
    stratified_split,
)
from tests.ml.data import PBC_DIR


def _pbc_labels() -> np.ndarray:
    items, _ = list_labelled_cells(PBC_DIR)
    keys = report_order([k for _, k in items])
    return np.array([keys.index(k) for _, k in items])


def test_pbc_erythroblasts_without_a_stage_become_the_unstaged_erythroid_label() -> None:
    items, layout = list_labelled_cells(PBC_DIR)
    counts = Counter(key for _, key in items)
    assert layout == "pbc-manifest" and len(items) == 2750
    assert counts[ERYTHROBLAST_UNSTAGED] == 250 and counts["others"] == 250
    assert all(path.is_file() for path, _ in items[:5])


def test_images_are_decoded_once_into_a_uint8_array_in_report_order() -> None:
    cells = load_labelled_cells(PBC_DIR, img_size=24, limit_per_class=2, seed=3)
    assert cells.images.shape == (22, 24, 24, 3) and cells.images.dtype == np.uint8
    assert cells.classes[0] == "promyelocyte" and cells.classes[-1] == "others"
    assert cells.classes.index(ERYTHROBLAST_UNSTAGED) > cells.classes.index("basophil")
    assert set(cells.class_counts().values()) == {2}
    again = load_labelled_cells(PBC_DIR, img_size=24, limit_per_class=2, seed=3)
    assert again.files == cells.files  # the subset is drawn with the seed


def test_a_centre_crop_keeps_the_central_square_of_each_image_before_resizing(
    tmp_path: Path,
) -> None:
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[10:30, 20:40] = 200  # the central 20 px square of the shorter side (40)
    for key in ("lymphocyte", "monocyte"):
        (tmp_path / key).mkdir()
        Image.fromarray(image).save(tmp_path / key / "cell.png")
    whole = load_labelled_cells(tmp_path, img_size=20)
    centre = load_labelled_cells(tmp_path, img_size=20, centre_crop=0.5)
    assert (centre.images == 200).all()  # the crop is exactly the bright centre
    assert 0 < (whole.images == 200).mean() < 0.5  # the whole image is mostly background
    with pytest.raises(ValueError, match="centre_crop"):
        load_labelled_cells(tmp_path, img_size=20, centre_crop=0.0)


def test_an_image_folder_reads_one_class_per_folder(tmp_path: Path) -> None:
    items, _ = list_labelled_cells(PBC_DIR)
    for key in ("lymphocyte", "monocyte"):
        (tmp_path / key).mkdir()
        for path in [p for p, k in items if k == key][:3]:
            shutil.copy(path, tmp_path / key / path.name)
    (tmp_path / "monocyte" / "notes.txt").write_text("not an image")
    cells = load_labelled_cells(tmp_path, img_size=16)
    assert cells.layout == "image-folder" and cells.classes == ("lymphocyte", "monocyte")
    assert cells.class_counts() == {"lymphocyte": 3, "monocyte": 3}


def test_an_unreadable_image_is_an_error_naming_the_file(tmp_path: Path) -> None:
    for key in ("lymphocyte", "monocyte"):
        (tmp_path / key).mkdir()
    (tmp_path / "lymphocyte" / "a.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "monocyte" / "b.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CellDataError, match="a.jpg"):
        load_labelled_cells(tmp_path, img_size=16)


def test_a_manifest_row_without_a_class_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text("file,source_label,class_key\nx.jpg,XX,\n")
    with pytest.raises(CellDataError, match="line 2: empty class_key"):
        list_labelled_cells(tmp_path)


def test_the_split_is_70_15_15_within_every_class() -> None:
    labels = _pbc_labels()
    train, val, test = stratified_split(labels, seed=0)
    for part, expected in ((train, 174), (val, 38), (test, 38)):
        per_class = np.bincount(labels[part], minlength=11)
        assert per_class.tolist() == [expected] * 11  # 250 per class: 37.5 rounds to 38 (even)


def test_the_same_seed_gives_the_same_disjoint_split_and_another_seed_another() -> None:
    labels = _pbc_labels()
    first, again, other = (stratified_split(labels, seed=s) for s in (0, 0, 1))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2], other[2])
    joined = np.concatenate(first)
    assert len(joined) == len(labels) and len(np.unique(joined)) == len(labels)


def test_a_class_of_three_still_reaches_validation_and_test() -> None:
    train, val, test = stratified_split(np.array([0, 0, 0, 1, 1, 1, 1]), seed=5)
    assert len(val) == len(test) == 2 and len(train) == 3
