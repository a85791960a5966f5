"""Per-stage throughput of the analysis pipeline on the generated 100,000 px slide.

Run from the repository root: ``python -m bench.pipeline``. Prints ONE JSON line:

- ``stages``: for each stage, the baseline's and the real-size architecture's (random weights)
  throughput on real tiles of the 100k slide (``bench/synthetic.py``): thumbnail and ROI in
  seconds, TOI in tiles/s, cells in tiles/s and cells/s, classification in cells/s;
- ``bounded``: how many tiles each measurement used. On a CPU these are small so the bench
  ends in a few minutes (SAM ViT-B takes tens of seconds per tile there); a GPU gets more;
- ``estimate_full_slide_s``: the per-stage rates extrapolated to every candidate tile of the
  slide, labelled as an estimate (it is not a measured full run); the models' figure uses SAM
  with nucleus prompts;
- ``peak_rss_mb``: the process's peak resident memory, all models loaded, and
  ``peak_rss_mb_by_step`` (SAM ViT-B's image encoder on a CPU alone holds ~2.5 GB of attention
  maps: four global-attention layers over 4,096 tokens);
- with ``--analyse``, ``stages.analyse_baselines``: a real :func:`ml.pipeline.analyse` run with
  the baselines: every ROI tile through TOI, the 8 best TOIs segmented (a few CPU minutes);
- ``bccd``: the baseline cell segmenter's recall50 / recall75 / false detections per image on
  the 74 BCCD photos (the issue's bar: >= 0.95, >= 0.70, <= 0.3).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.synthetic import SHARED, ensure_bench_slide  # noqa: E402
from ml.baselines.cells import segment_cells  # noqa: E402
from ml.baselines.roi import glass_od  # noqa: E402
from ml.cards import ModelCard, Normalisation  # noqa: E402
from ml.classes import DEFAULT_CLASSES, class_keys  # noqa: E402
from ml.datasets.bccd import load_bccd, score_wbc_detection  # noqa: E402
from ml.device import pick_device  # noqa: E402
from ml.geometry import Tile  # noqa: E402
from ml.models.build import build_model  # noqa: E402
from ml.models.predictors import CellClassifier, RoiPredictor, TilePredictor  # noqa: E402
from ml.models.sam_everything import SamEverything  # noqa: E402
from ml.pipeline import PipelineConfig, analyse  # noqa: E402
from ml.slide import SlideReader, open_slide  # noqa: E402
from ml.stages.cells import (  # noqa: E402
    BaselineSegmenter,
    Cell,
    MaskCrop,
    NucleatedFilter,
    cells_in_window,
    nucleus_prompts,
)
from ml.stages.reader import clipped_window, stream_windows  # noqa: E402
from ml.stages.roi import RoiResult, RoiStage  # noqa: E402
from ml.stages.toi import ToiStage, candidate_tiles  # noqa: E402

BCCD_DIR = SHARED / "smears" / "BCCD"
IMAGENET = Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TILE = 1600
MARGIN = 200  # 20 µm at the bench slide's 0.1 µm/px
T = TypeVar("T")


def _bounds(device: torch.device) -> dict[str, int]:
    if device.type == "cuda":
        return {"toi_tiles": 512, "cell_tiles": 32, "sam_tiles": 16, "crops": 1024}
    return {"toi_tiles": 48, "cell_tiles": 4, "sam_tiles": 1, "crops": 64}


def _card(task: str, architecture: str, classes: Sequence[str], size: int) -> ModelCard:
    """An in-memory card for a random-weight model (nothing is read from disk)."""
    return ModelCard(
        path=REPO / "unsaved.json",
        name=f"random-{architecture}",
        task=task,
        architecture=architecture,
        config={},
        weights=REPO / "unsaved.pt",
        classes=tuple(classes),
        input_size=size,
        normalisation=IMAGENET,
        provenance={"source": "random weights (bench)"},
        metrics={},
    )


def _rss_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def _spread(items: Sequence[T], n: int) -> list[T]:
    """``n`` items evenly spread over the sequence (tiles from the whole slide, not one corner)."""
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).astype(int)]


def bench_roi(
    thumbnail: np.ndarray, slide_wh: tuple[int, int], device: torch.device
) -> tuple[RoiResult, dict]:
    baseline, t_base = _timed(lambda: RoiStage(None).run(thumbnail, slide_wh), device)
    model = build_model("texture_unet").to(device)
    predictor = RoiPredictor(
        model, _card("roi", "texture_unet", ("background", "roi"), 256), device
    )
    predictor.predict(thumbnail)  # warm-up (cudnn autotune, lazy init)
    _, t_model = _timed(lambda: predictor.predict(thumbnail), device)
    return baseline, {"baseline_s": round(t_base, 3), "texture_unet_s": round(t_model, 3)}


def bench_toi(
    slide: SlideReader, tiles: Sequence[tuple[Tile, float]], glass: float, device: torch.device
) -> dict:
    baseline = ToiStage(None)
    _, t_base = _timed(lambda: baseline.run(slide, tiles, glass_level=glass, mpp=0.1), device)
    predictor = TilePredictor(
        build_model("tcnet"), _card("toi", "tcnet", ("non_toi", "toi"), 224), device
    )
    tcnet = ToiStage(predictor, batch_size=64 if device.type == "cuda" else 16)
    tcnet.run(slide, tiles[:2])  # warm-up
    _, t_model = _timed(lambda: tcnet.run(slide, tiles), device)
    return {
        "baseline_tiles_per_s": round(len(tiles) / t_base, 2),
        "tcnet_tiles_per_s": round(len(tiles) / t_model, 2),
    }


def bench_cells_baseline(
    slide: SlideReader, tiles: Sequence[Tile], device: torch.device
) -> tuple[list[tuple[np.ndarray, list[tuple[Cell, MaskCrop]]]], dict]:
    windows = [clipped_window(t, t.box, MARGIN, slide.dimensions) for t in tiles]
    segmenter = BaselineSegmenter()
    found = []
    start = time.perf_counter()
    for window, image in stream_windows(slide, windows):
        crops = segmenter.segment([image], 0.1)[0]
        found.append((image, cells_in_window(window, window.key, crops, slide.dimensions)))
    seconds = time.perf_counter() - start
    n_cells = sum(len(cells) for _, cells in found)
    return found, {
        "baseline_tiles_per_s": round(len(tiles) / seconds, 3),
        "baseline_cells_per_s": round(n_cells / seconds, 1),
        "baseline_cells_per_tile": round(n_cells / max(len(tiles), 1), 1),
    }


def bench_sam(slide: SlideReader, tiles: Sequence[Tile], device: torch.device) -> dict:
    """SAM ViT-B on level-0 tiles: image embedding, then the mask decoder for two prompt modes.

    Nucleus prompts are decoded in full. The 32 x 32 grid of everything mode costs ~1,000
    decoder passes per tile (minutes on a CPU), so on a CPU an 8 x 8 grid is timed and scaled
    by 16 (the decoder's cost is linear in the number of prompts); a GPU decodes the full grid.
    """
    gpu = device.type == "cuda"
    generator = SamEverything(build_model("sam_vit_b"), device, points_per_batch=256 if gpu else 16)
    windows = [clipped_window(t, t.box, MARGIN, slide.dimensions) for t in tiles]
    images = [image for _, image in stream_windows(slide, windows)]
    hws = [i.shape[:2] for i in images]
    if gpu:
        generator.generate(images[:1])  # warm-up
    embeddings, t_embed = _timed(lambda: generator.embed(images), device)
    prompts = [nucleus_prompts(i, NucleatedFilter(), 0.1) for i in images]
    _, t_nuclei = _timed(lambda: generator.decode(embeddings, hws, prompts), device)
    generator.points_per_side = 32 if gpu else 8
    _, t_grid = _timed(lambda: generator.decode(embeddings, hws), device)
    grid_scale = (32 / generator.points_per_side) ** 2
    n = len(images)
    return {
        "sam_vit_b_embed_s_per_tile": round(t_embed / n, 3),
        "sam_vit_b_nuclei_prompts_per_tile": round(sum(len(p) for p in prompts) / n, 1),
        "sam_vit_b_nuclei_decode_s_per_tile": round(t_nuclei / n, 3),
        "sam_vit_b_nuclei_tiles_per_s": round(n / (t_embed + t_nuclei), 4),
        "sam_vit_b_grid1024_decode_s_per_tile": round(t_grid * grid_scale / n, 3),
        "sam_vit_b_grid1024_decode_measured": not grid_scale > 1,
        "sam_vit_b_grid1024_tiles_per_s": round(n / (t_embed + t_grid * grid_scale), 4),
    }


def bench_classifier(
    found: Sequence[tuple[np.ndarray, list[tuple[Cell, MaskCrop]]]], n: int, device: torch.device
) -> dict:
    keys = class_keys(DEFAULT_CLASSES)
    model = build_model("mae_vit_b", {"num_classes": len(keys)})
    classifier = CellClassifier(
        model, _card("cell_classification", "mae_vit_b", keys, 224), device, box_offset=0.15
    )
    crops = [classifier.crop(image, crop.box) for image, cells in found for _, crop in cells]
    if not crops:
        return {"mae_vit_b_cells_per_s": None}
    batch = np.stack([crops[i % len(crops)] for i in range(n)])
    classifier.predict(batch[:8])  # warm-up
    _, t_crop = _timed(
        lambda: [classifier.crop(image, crop.box) for image, cells in found for _, crop in cells],
        device,
    )
    step = 256 if device.type == "cuda" else 32
    _, t_pred = _timed(
        lambda: [classifier.predict(batch[i : i + step]) for i in range(0, n, step)], device
    )
    return {
        "mae_vit_b_cells_per_s": round(n / t_pred, 2),
        "crop_cells_per_s": round(len(crops) / t_crop, 1),
    }


def bench_analyse(path: Path, device: torch.device) -> dict[str, Any]:
    """``analyse()`` end to end with the baselines: every ROI tile through TOI, 8 segmented."""
    result, seconds = _timed(
        lambda: analyse(path, models_dir=None, device=device, config=PipelineConfig(max_tiles=8)),
        device,
    )
    out = result.to_dict()
    return {
        "wall_s": round(seconds, 1),
        "timings_s": out["timings_s"],
        "throughput": out["throughput"],
    }


def bench_bccd() -> dict[str, Any]:
    scores = score_wbc_detection(load_bccd(BCCD_DIR), segment_cells).to_dict()
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}


def _estimate(n_candidates: int, stages: dict[str, Any]) -> dict[str, float | None]:
    """Seconds for every candidate tile, from the measured rates (an extrapolation)."""
    toi = stages["toi"]
    cells = stages["cells"]
    per_tile_cells = cells["baseline_cells_per_tile"]
    mae = stages["classification"]["mae_vit_b_cells_per_s"]
    return {
        "candidate_tiles": n_candidates,
        "baselines_s": round(
            stages["thumbnail_s"]
            + n_candidates / toi["baseline_tiles_per_s"]
            + n_candidates / cells["baseline_tiles_per_s"],
            1,
        ),
        "models_s": round(
            stages["thumbnail_s"]
            + n_candidates / toi["tcnet_tiles_per_s"]
            + n_candidates / cells["sam_vit_b_nuclei_tiles_per_s"]
            + (n_candidates * per_tile_cells / mae if mae else 0.0),
            1,
        ),
    }


def main() -> None:
    device = pick_device(None)
    bounds = _bounds(device)
    torch.manual_seed(0)
    path = ensure_bench_slide()
    stages: dict[str, Any] = {}
    rss: dict[str, float] = {}
    with open_slide(path) as slide:
        thumbnail, t_thumb = _timed(lambda: slide.thumbnail_by_factor(100), device)
        stages["thumbnail_s"] = round(t_thumb, 3)
        roi, stages["roi"] = bench_roi(thumbnail, slide.dimensions, device)
        candidates = candidate_tiles(roi, slide.dimensions, TILE, 0.5)
        toi_tiles = _spread(candidates, bounds["toi_tiles"])
        stages["toi"] = bench_toi(slide, toi_tiles, glass_od(thumbnail), device)
        cell_tiles = [t for t, _ in _spread(candidates, bounds["cell_tiles"])]
        found, stages["cells"] = bench_cells_baseline(slide, cell_tiles, device)
        rss["after_roi_toi_and_baseline_cells"] = _rss_mb()
        stages["classification"] = bench_classifier(found, bounds["crops"], device)
        rss["after_mae_vit_b"] = _rss_mb()
        stages["cells"].update(bench_sam(slide, cell_tiles[: bounds["sam_tiles"]], device))
        rss["after_sam_vit_b"] = _rss_mb()
        slide_info = {
            "path": str(path.relative_to(REPO)),
            "dimensions": list(slide.dimensions),
            "mpp": slide.mpp[0],
        }
    if "--analyse" in sys.argv:
        stages["analyse_baselines"] = bench_analyse(path, device)
        rss["after_analyse"] = _rss_mb()
    figures = {
        "bench": "pipeline",
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "slide": slide_info,
        "bounded": {
            **bounds,
            "note": "per-stage rates on tiles spread over the slide, not a full run",
        },
        "stages": stages,
        "estimate_full_slide_s": _estimate(len(candidates), stages),
        "peak_rss_mb": _rss_mb(),
        "peak_rss_mb_by_step": rss,
        "bccd": bench_bccd(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
