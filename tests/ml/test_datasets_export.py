"""Every export format written from a real slide and read back; the sinks; the split by slide.

The slide is the real Aperio file cmu-1-small-region.svs (2220 x 2967 px): a 2 x 2 grid of
1600 px tiles. Cells are hand-made circles, in level-0 px.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from ml.datasets.export import (
    FORMATS,
    ClassInfo,
    ClassMapIncomplete,
    ExportOptions,
    FolderSink,
    SlideExport,
    SourceSet,
    TileSample,
    ZipFileSink,
    ZipSink,
    split_by_slide,
    write_export,
)
from ml.geometry import Frame, polygons_to_mask, tile_grid
from ml.interchange import parse_file
from ml.models.predictors import crop_square
from ml.slide import open_slide
from tests.ml.data import SLIDES_DIR

SLIDE = SLIDES_DIR / "cmu-1-small-region.svs"
W, H = 2220, 2967
CLASSES = {
    "myeloblast": ClassInfo("myeloblast", "Myeloblast", "#be0032"),
    "lymphocyte": ClassInfo("lymphocyte", "Lymphocyte", "#0067a5"),
}
#: Small crops keep the test quick; the default is the classifier's 224.
OPTIONS = ExportOptions(crop_size=64)


def circle(cx: float, cy: float, r: float = 30.0, n: int = 24) -> list[list[list[float]]]:
    ring = [
        [
            round(cx + r * math.cos(2 * math.pi * i / n), 2),
            round(cy + r * math.sin(2 * math.pi * i / n), 2),
        ]
        for i in range(n)
    ]
    return [ring + [ring[0]]]


def cells() -> list[dict]:
    """Seven cells: five in tile (0, 0), one on the (0, 0)/(1, 0) border, one in (0, 1)."""
    spots = [(300, 300), (500, 420), (800, 900), (1200, 300), (400, 1300), (1590, 800), (500, 2000)]
    labels = [
        "myeloblast",
        "lymphocyte",
        "myeloblast",
        "",
        "lymphocyte",
        "myeloblast",
        "lymphocyte",
    ]
    return [
        {"coordinates": circle(x, y), "label": label, "annotation_id": 100 + i}
        for i, ((x, y), label) in enumerate(zip(spots, labels, strict=True))
    ]


def slide_export(key: str = "cmu1") -> SlideExport:
    from ml.datasets.export import CellSample

    grid = {(t.col, t.row): t for t in tile_grid((W, H), 1600)}
    return SlideExport(
        key=key,
        name=f"{key}.svs",
        path=str(SLIDE),
        sha256="ab" * 32,
        width=W,
        height=H,
        roi=[[[[100, 100], [1700, 100], [1700, 2500], [100, 2500], [100, 100]]]],
        tiles=[
            TileSample(grid[(0, 0)], "toi"),
            TileSample(grid[(1, 0)], "non_toi"),
            TileSample(grid[(0, 1)], "toi"),
        ],
        cells=[CellSample(**c) for c in cells()],
        sources=[SourceSet(stage="cell", set_id=7, source="consensus", version=12, annotations=7)],
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("export") / "out"
    with FolderSink(root) as sink:
        manifest = write_export(
            [slide_export()], formats=FORMATS, sink=sink, class_map=CLASSES, options=OPTIONS
        )
    return root, manifest


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def test_manifest_lists_every_file_with_its_checksum(exported):
    root, manifest = exported
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(manifest["files"]) | {"manifest.json"}
    for name, record in manifest["files"].items():
        data = (root / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert len(data) == record["bytes"]
    written = json.loads((root / "manifest.json").read_text())
    assert written["slides"][0]["sha256"] == "ab" * 32
    assert written["slides"][0]["sources"][0] == {
        "stage": "cell",
        "set_id": 7,
        "source": "consensus",
        "annotator": None,
        "version": 12,
        "annotations": 7,
    }
    assert [c["key"] for c in written["class_map"]] == ["myeloblast", "lymphocyte"]
    assert written["split"]["by"] == "slide" and written["split"]["slides"] == {"cmu1": "train"}
    assert written["software"]["bmadcc"] == "0.1.0"


def test_roi_seg_is_a_factor_100_thumbnail_and_a_mask_of_the_same_size(exported):
    root, _ = exported
    image = read_png(root / "roi_seg/train/images/cmu1.png")
    mask = read_png(root / "roi_seg/train/masks/cmu1.png")
    assert image.shape == (30, 23, 3) and mask.shape == (30, 23)
    assert set(np.unique(mask)) == {0, 255}
    # The ROI spans level-0 x 100..1700, y 100..2500: thumbnail columns 1..16, rows 1..24.
    assert mask[12, 8] == 255 and mask[0, 0] == 0 and mask[12, 20] == 0 and mask[27, 8] == 0


def test_toi_cls_files_full_tiles_by_label(exported):
    root, _ = exported
    toi = sorted(p.name for p in (root / "toi_cls/train/toi").iterdir())
    non_toi = sorted(p.name for p in (root / "toi_cls/train/non_toi").iterdir())
    assert toi == ["cmu1_c0_r0.png", "cmu1_c0_r1.png"] and non_toi == ["cmu1_c1_r0.png"]
    tile = read_png(root / "toi_cls/train/toi/cmu1_c0_r0.png")
    with open_slide(SLIDE) as reader:
        assert np.array_equal(tile, reader.read_region((0, 0), 0, (1600, 1600)))
    edge = read_png(root / "toi_cls/train/non_toi/cmu1_c1_r0.png")
    assert edge.shape == (1600, 1600, 3) and (edge[:, 700:] == 255).all()  # glass past the edge


def test_cell_seg_resizes_tiles_to_1024_with_one_mask_per_cell(exported):
    root, _ = exported
    image = read_png(root / "cell_seg/train/images/cmu1_c0_r0.png")
    instances = read_png(root / "cell_seg/train/instances/cmu1_c0_r0.png")
    masks = sorted((root / "cell_seg/train/masks/cmu1_c0_r0").iterdir(), key=lambda p: int(p.stem))
    assert image.shape == (1024, 1024, 3) and instances.dtype == np.uint16
    assert len(masks) == 6  # five inside and the one cut by the right edge
    assert instances.max() == 6
    frame = Frame(sx=1600 / 1024, sy=1600 / 1024)
    first = read_png(masks[0]) > 0
    expected = polygons_to_mask([[np.array(circle(300, 300)[0])]], frame, (1024, 1024))
    assert np.array_equal(first, expected)
    assert np.array_equal(instances == 1, first)
    assert (root / "cell_seg/train/masks/cmu1_c0_r1").is_dir()
    assert not (root / "cell_seg/train/images/cmu1_c1_r0.png").exists()  # not a TOI


def test_labelled_crops_are_the_classifiers_crops_in_class_folders(exported):
    root, _ = exported
    folders = {
        p.name: sorted(q.name for q in p.iterdir())
        for p in (root / "cell_cls_labeled/train").iterdir()
    }
    assert folders == {
        "myeloblast": ["cmu1_100.png", "cmu1_102.png", "cmu1_105.png"],
        "lymphocyte": ["cmu1_101.png", "cmu1_104.png", "cmu1_106.png"],
    }
    crop = read_png(root / "cell_cls_labeled/train/myeloblast/cmu1_102.png")
    with open_slide(SLIDE) as reader:
        tile = reader.read_region((0, 0), 0, (1600, 1600))
    box = (
        np.array(circle(800, 900)[0]).min(axis=0).tolist()
        + np.array(circle(800, 900)[0]).max(axis=0).tolist()
    )
    assert np.array_equal(crop, crop_square(tile, box, OPTIONS.box_offset, 64))


def test_unlabelled_crops_hold_every_cell(exported):
    root, _ = exported
    names = sorted(p.name for p in (root / "cell_cls_unlabeled/train").iterdir())
    assert names == [f"cmu1_{100 + i}.png" for i in range(7)]
    assert read_png(root / "cell_cls_unlabeled/train" / names[0]).shape == (64, 64, 3)


def test_coco_loads_in_pycocotools_and_round_trips_to_the_outlines(exported):
    root, _ = exported
    coco = COCO(str(root / "coco/train.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["myeloblast", "lymphocyte"]
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len(annotations) == 6  # the unlabelled cell is left out
    by_id = {c["annotation_id"]: c for c in cells()}
    for ann in annotations:
        source = by_id[ann["annotation_id"]]
        ring = np.array(ann["segmentation"][0]).reshape(-1, 2)
        assert np.allclose(ring, np.array(source["coordinates"][0][:-1]))
        assert coco.loadCats(ann["category_id"])[0]["name"] == source["label"]
        assert ann["area"] == pytest.approx(math.pi * 30**2, rel=0.02)
    image = coco.loadImgs(annotations[0]["image_id"])[0]
    assert (image["width"], image["height"]) == (W, H)
    # pycocotools rasterises at level 0; the mask covers the cell's circle.
    mask = coco.annToMask(annotations[0])
    assert mask.shape == (H, W) and mask.sum() == pytest.approx(math.pi * 30**2, rel=0.05)


def test_labelme_tiles_read_back_to_level_0_outlines(exported):
    root, _ = exported
    document = (root / "labelme/train/cmu1_c0_r1.json").read_bytes()
    assert (root / "labelme/train/cmu1_c0_r1.png").exists()
    assert json.loads(document)["imagePath"] == "cmu1_c0_r1.png"
    items = parse_file(document, "labelme", offset=(0, 1600))
    assert [i["label"] for i in items] == ["lymphocyte"]
    ring = np.array(items[0]["geometry"]["coordinates"][0])
    assert np.allclose(ring, np.array(circle(500, 2000)[0][:-1]))


def test_qupath_geojson_holds_roi_tiles_and_classified_detections(exported):
    root, _ = exported
    document = json.loads((root / "qupath/train/cmu1.geojson").read_text())
    kinds = [
        (f["properties"]["objectType"], f["properties"].get("class_key"))
        for f in document["features"]
    ]
    assert kinds[:4] == [
        ("annotation", "roi"),
        ("annotation", "toi"),
        ("annotation", "non_toi"),
        ("annotation", "toi"),
    ]
    cells_out = [f for f in document["features"] if f["properties"]["objectType"] == "detection"]
    assert len(cells_out) == 7
    assert cells_out[0]["properties"]["classification"] == {
        "name": "Myeloblast",
        "color": [190, 0, 50],
    }
    assert cells_out[0]["properties"]["measurements"]["Area px^2"] == pytest.approx(
        math.pi * 900, rel=0.02
    )
    assert "classification" not in cells_out[3]["properties"]  # not classified yet
    items = parse_file(json.dumps(document).encode(), "geojson")
    assert [i["label"] for i in items][-7:] == [c["label"] for c in cells()]


class Unseekable(io.RawIOBase):
    """A write-only stream that cannot seek or tell, like a socket; keeps what it got."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def test_a_zip_streams_into_a_stream_that_cannot_seek():
    stream = Unseekable()
    with ZipSink(stream) as sink:
        manifest = write_export(
            [slide_export()],
            formats=["coco", "qupath", "cell_cls_unlabeled"],
            sink=sink,
            class_map=CLASSES,
            options=OPTIONS,
        )
    archive = zipfile.ZipFile(io.BytesIO(b"".join(stream.chunks)))
    assert archive.testzip() is None
    assert set(archive.namelist()) == set(manifest["files"]) | {"manifest.json"}
    for name, record in manifest["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == record["sha256"]


class FillsUp(io.RawIOBase):
    """A file that raises ENOSPC once ``room`` bytes are written, as a full disk does."""

    def __init__(self, path: Path, room: int) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.room < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()
        super().close()


def test_a_full_disk_leaves_no_zip_and_no_partial_file(tmp_path):
    target = tmp_path / "export.zip"
    opener = lambda path, mode: FillsUp(path, 20_000)  # noqa: E731
    with pytest.raises(OSError) as raised, ZipFileSink(target, opener=opener) as sink:
        write_export(
            [slide_export()],
            formats=["cell_cls_unlabeled"],
            sink=sink,
            class_map=CLASSES,
            options=OPTIONS,
        )
    assert raised.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_a_finished_zip_file_appears_only_at_the_end(tmp_path):
    target = tmp_path / "export.zip"
    with ZipFileSink(target) as sink:
        write_export([slide_export()], formats=["coco"], sink=sink, class_map=CLASSES)
        assert not target.exists() and (tmp_path / "export.zip.partial").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["export.zip"]
    assert zipfile.ZipFile(target).read("coco/train.json")


def test_labels_outside_the_class_map_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ClassMapIncomplete) as raised, FolderSink(tmp_path / "out") as sink:
        write_export(
            [slide_export()],
            formats=["coco"],
            sink=sink,
            class_map={"myeloblast": CLASSES["myeloblast"]},
        )
    assert raised.value.data == {"labels": ["lymphocyte"]}
    assert list(tmp_path.iterdir()) == []


def test_the_split_is_by_slide_seeded_and_never_shares_a_slide(tmp_path):
    keys = [f"slide{i:02d}" for i in range(10)]
    split = split_by_slide(keys, seed=3)
    assert split == split_by_slide(list(reversed(keys)), seed=3)
    assert sorted(split.values()).count("train") == 8  # 10 x (0.7, 0.15, 0.15), rounded down
    assert {"val", "test"} <= set(split.values())
    slides = [slide_export(k) for k in keys]
    with FolderSink(tmp_path / "out") as sink:
        manifest = write_export(
            slides, formats=["coco", "qupath"], sink=sink, class_map=CLASSES, seed=3
        )
    assert manifest["split"]["slides"] == split
    for side in ("train", "val", "test"):
        coco = COCO(str(tmp_path / "out" / "coco" / f"{side}.json"))
        names = {image["file_name"] for image in coco.dataset["images"]}
        assert names == {k for k, s in split.items() if s == side}
        assert {p.stem for p in (tmp_path / "out/qupath" / side).iterdir()} == names
