"""analyse(): baselines on a real SVS, tiny real-architecture models on a smear-photo TIFF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.cards import ModelCardError, Normalisation, save_model
from ml.classes import DEFAULT_CLASSES, class_keys
from ml.count import UNCLASSIFIED
from ml.models.build import build_model
from ml.pipeline import (
    ConfigError,
    FrontResult,
    PipelineConfig,
    analyse,
    assemble,
    build_stages,
    run_cells,
    run_front,
    stream_cells,
)
from ml.pyramid import build_mosaic_slide
from ml.slide import open_slide
from ml.stages.cells import BoxPromptSettings, Cell, NucleatedFilter
from tests.ml.data import BCCD_DIR, SLIDES_DIR

KEYS = class_keys(DEFAULT_CLASSES)
NORM = Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
BCCD_MPP = 0.075

# Random weights predict low confidence everywhere: open every threshold so each stage's model
# path really runs (the thresholds themselves are tested stage by stage). A random SAM returns
# one window-sized blob, which only survives as a "cell" when the window has no inner edge, so
# the slide is one tile here; tiling is covered by the baseline runs.
TINY_CONFIG = PipelineConfig(
    tile_size=2000,
    roi_threshold=0.0,
    toi_threshold=0.0,
    sam_points_per_side=8,
    sam_pred_iou_thresh=-1e9,
    sam_stability_thresh=0.0,
    cell_filter=NucleatedFilter(min_nucleus_fraction=0.0, max_area_um2=1e9),
)


ALL_TASKS = ("roi", "toi", "cell_segmentation", "cell_classification")


def write_tiny_models(
    directory: Path, *, tasks: tuple[str, ...] = ALL_TASKS, misclassification: float = 0.5
) -> Path:
    """Cards + random weights for the given stages, at test sizes, in ``directory``.

    The classifier's card says every class is mistaken for the next one ``misclassification``
    of the time.
    """
    torch.manual_seed(0)
    common = {"normalisation": NORM, "provenance": {"source": "random weights for a test"}}
    right = round(100 * (1 - misclassification))
    n = len(KEYS)
    confusion = [
        [right if i == j else (100 - right) * (j == (i + 1) % n) for j in range(n)]
        for i in range(n)
    ]
    specs = {
        "roi": ("texture_unet_tiny", {}, ("background", "roi"), 256, {}),
        "toi": ("tcnet_tiny", {}, ("non_toi", "toi"), 224, {}),
        "cell_segmentation": ("sam_tiny", {}, ("cell",), 256, {}),
        "cell_classification": (
            "mae_vit_tiny",
            {"num_classes": n},
            KEYS,
            224,
            {"confusion_matrix": confusion},
        ),
    }
    for task in tasks:
        architecture, config, classes, size, metrics = specs[task]
        save_model(
            build_model(architecture, config),
            directory,
            name=task,
            task=task,
            architecture=architecture,
            config=config,
            classes=classes,
            input_size=size,
            metrics=metrics,
            **common,
        )
    return directory


@pytest.fixture(scope="module")
def smear_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1,800 x 1,200 pyramidal JPEG TIFF tiled from real BCCD smear photos."""
    photos = sorted((BCCD_DIR / "JPEGImages").glob("*.jpg"))[:8]
    out = tmp_path_factory.mktemp("slides") / "bccd-mosaic.tiff"
    return build_mosaic_slide(photos, out, width=1800, height=1200, mpp=BCCD_MPP, block=3)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"))


def test_baselines_analyse_a_real_svs_slide_end_to_end() -> None:
    calls: list[tuple[str, int, int]] = []
    result = analyse(
        SLIDES_DIR / "cmu-1-small-region.svs",
        models_dir=None,
        device="cpu",
        progress=lambda *a: calls.append(a),
    )
    assert {k: v.kind for k, v in result.stages.items()} == dict.fromkeys(
        ("roi", "toi", "cells", "classification"), "baseline"
    )
    assert list(dict.fromkeys(stage for stage, _, _ in calls)) == [
        "thumbnail",
        "roi",
        "toi",
        "cells",
    ]
    last = {stage: (done, total) for stage, done, total in calls}
    assert all(done == total for done, total in last.values())  # every stage ends reported done
    assert calls[0] == ("thumbnail", 0, 1)  # and starts reported before it works
    assert result.roi.polygons and result.tiles and result.cells
    width, height = result.slide["dimensions"]
    for cell in result.cells:
        assert cell.label == UNCLASSIFIED and cell.probabilities is None
        assert cell.polygon[:, 0].min() >= 0 and cell.polygon[:, 0].max() <= width
        assert cell.polygon[:, 1].min() >= 0 and cell.polygon[:, 1].max() <= height
    # The count never invents classes: it says plainly that no classifier is installed.
    assert not result.dcc.classifier_installed and result.dcc.total_counted == 0
    assert "No cell classifier is installed" in result.dcc.message
    out = json.loads(json.dumps(result.to_dict()))
    assert out["count"]["unclassified"] == len(result.cells) == len(out["cells"])
    assert {"thumbnail", "roi", "toi", "cells", "total"} <= set(out["timings_s"])


def test_tiny_models_analyse_a_pyramidal_tiff_of_smear_photos(
    smear_slide: Path, tiny_models: Path
) -> None:
    result = analyse(smear_slide, models_dir=tiny_models, device="cpu", config=TINY_CONFIG)
    assert {k: v.name for k, v in result.stages.items()} == {
        "roi": "roi",
        "toi": "toi",
        "cells": "cell_segmentation",
        "classification": "cell_classification",
    }
    assert all(v.kind == "model" for v in result.stages.values())
    assert result.slide["mpp"] == pytest.approx(BCCD_MPP)
    assert result.segmented_tiles == 1 and result.cells
    for cell in result.cells:
        assert (
            cell.label in KEYS and cell.probabilities is not None and len(cell.probabilities) == 22
        )
        assert cell.review == (cell.probabilities.max() < 0.60)
    counted = {c.key for c in DEFAULT_CLASSES if c.counted}
    assert result.dcc.total_counted == sum(c.label in counted for c in result.cells)
    present = {c.label for c in result.cells}
    kinds = [a.kind for a in result.alerts]
    # Every class misclassifies 50% of the time in the card, so two present classes trigger it.
    assert ("automatic_rescreening" in kinds) == (len(present) >= 2)
    assert ("review_required" in kinds) == any(c.review for c in result.cells)
    out = json.loads(json.dumps(result.to_dict()))
    assert out["classifier_classes"] == list(KEYS)


def test_max_tiles_bounds_the_segmented_tiles_and_says_so(smear_slide: Path) -> None:
    config = PipelineConfig(tile_size=600, max_tiles=2)
    result = analyse(smear_slide, models_dir=None, device="cpu", config=config)
    assert result.segmented_tiles == 2
    assert any("max_tiles" in note for note in result.notes)
    assert {c.tile for c in result.cells} <= {
        (d.tile.col, d.tile.row) for d in sorted(result.tiles, key=lambda d: -d.score)[:2]
    }


def test_a_bad_card_stops_the_run_with_the_field_named(tmp_path: Path, tiny_models: Path) -> None:
    for path in tiny_models.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    card = json.loads((tmp_path / "cell_classification.json").read_text())
    card["classes"][0] = "megakaryocyte"  # not in the project's class set
    (tmp_path / "cell_classification.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError) as caught:
        analyse(SLIDES_DIR / "small.svs", models_dir=tmp_path, device="cpu")
    assert caught.value.field == "classes"


def test_a_missing_models_folder_is_an_error_not_a_silent_baseline(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        analyse(SLIDES_DIR / "small.svs", models_dir=tmp_path / "absent", device="cpu")


def test_the_geojson_is_a_feature_collection_of_closed_level0_polygons() -> None:
    result = analyse(SLIDES_DIR / "cmu-1-small-region.svs", models_dir=None, device="cpu")
    geojson = result.to_geojson()
    assert geojson["type"] == "FeatureCollection" and len(geojson["features"]) == len(result.cells)
    for feature, cell in zip(geojson["features"], result.cells, strict=True):
        ring = np.array(feature["geometry"]["coordinates"][0])
        assert feature["geometry"]["type"] == "Polygon" and (ring[0] == ring[-1]).all()
        assert np.allclose(ring[:-1], np.round(cell.polygon, 1))
        assert feature["properties"]["objectType"] == "detection"
        assert "classification" not in feature["properties"]  # unclassified, as QuPath writes it


def test_a_run_split_into_chunks_through_json_equals_one_run() -> None:
    """run_front -> run_cells per chunk -> assemble, every hand-over through JSON, as the app does."""
    path = SLIDES_DIR / "cmu-1-small-region.svs"
    config = PipelineConfig(tile_size=1200).for_device(torch.device("cpu"))
    whole = analyse(path, models_dir=None, device="cpu", config=config)
    stages = build_stages({}, torch.device("cpu"), config)
    with open_slide(path) as slide:
        front = FrontResult.from_dict(
            json.loads(json.dumps(run_front(slide, stages, config).to_dict()))
        )
        assert len(front.tois) >= 2  # so the chunks below really split the tiles
        cells = []
        for tile in front.tois:
            chunk = run_cells(slide, stages, config, [tile])
            cells += [Cell.from_dict(json.loads(json.dumps(c.to_dict(exact=True)))) for c in chunk]
    result = assemble(front, cells, stages, config, device="cpu")
    assert len(result.cells) == len(whole.cells) > 0
    assert [c.to_dict() for c in result.cells] == [c.to_dict() for c in whole.cells]
    assert [d.to_dict() for d in result.tiles] == [d.to_dict() for d in whole.tiles]
    assert result.roi.to_dict() == whole.roi.to_dict()
    assert result.dcc.to_dict() == whole.dcc.to_dict()


def test_streaming_tile_groups_finds_the_cells_of_each_group_alone() -> None:
    """stream_cells (one warm read-ahead over chunk after chunk) == run_cells per chunk."""
    path = SLIDES_DIR / "cmu-1-small-region.svs"
    config = PipelineConfig(tile_size=600).for_device(torch.device("cpu"))
    stages = build_stages({}, torch.device("cpu"), config)
    with open_slide(path) as slide:
        tois = run_front(slide, stages, config).tois
        groups = [(i, tois[i : i + 2]) for i in range(0, len(tois), 2)]
        assert len(groups) >= 3
        alone = [run_cells(slide, stages, config, tiles) for _, tiles in groups]
        progress: list[tuple[int, int, int]] = []
        streamed = list(
            stream_cells(slide, stages, config, groups, progress=lambda *a: progress.append(a))
        )
    assert [key for key, _, _ in streamed] == [key for key, _ in groups]
    for (_, cells, clock), expected in zip(streamed, alone, strict=True):
        assert [c.to_dict() for c in cells] == [c.to_dict() for c in expected]
        assert set(clock) == {"segmentation", "classification", "read_wait"}
    for key, tiles in groups:
        counts = [(done, total) for k, done, total in progress if k == key]
        assert counts[0] == (0, len(tiles)) and counts[-1] == (len(tiles), len(tiles))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tile_sise": 800}, "tile_sise"),
        ({"roi_threshold": 1.5}, "roi_threshold"),
        ({"tile_size": "big"}, "tile_size"),
        ({"tile_size": 800.5}, "tile_size"),
        ({"sam_prompts": "boxes"}, "sam_prompts"),
        ({"cell_filter": {"min_area": 3}}, "cell_filter.min_area"),
        ({"classes": ["blast", "dragon"]}, "classes"),
        ({"box_prompts": {"multimask": 1}}, "box_prompts.multimask"),
        ({"box_prompts": {"growth": True}}, "box_prompts.growth"),
    ],
)
def test_a_bad_config_override_names_its_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_dict(overrides)
    assert caught.value.field == field


def test_a_config_round_trips_through_its_dict() -> None:
    config = PipelineConfig(
        tile_size=800,
        max_tiles=3,
        cell_filter=NucleatedFilter(min_area_px=10),
        box_prompts=BoxPromptSettings(growth=0.3, multimask=True),
    )
    assert PipelineConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_cells_round_trip_through_their_dict() -> None:
    result = analyse(SLIDES_DIR / "cmu-1-small-region.svs", models_dir=None, device="cpu")
    for cell in result.cells[:50]:
        exact = Cell.from_dict(json.loads(json.dumps(cell.to_dict(exact=True))))
        assert exact.to_dict(exact=True) == cell.to_dict(exact=True)
        assert np.array_equal(exact.polygon, cell.polygon)
        assert Cell.from_dict(cell.to_dict()).to_dict() == cell.to_dict()
