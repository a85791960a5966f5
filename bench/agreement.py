"""Inter-observer agreement on one slide: two annotators with 5,000 cell polygons each.

Prints ONE JSON line. ``agreement_s`` is the median wall time (of ``--repeats`` runs) to go from
the two stored sets (GeoJSON polygons in level-0 px plus class keys, as the app reads them) to
every cell figure of the report: the one-to-one matching, mean IoU / Dice, counts, detection F1,
class kappa, the 22 x 22 confusion, per-class agreement and every 95% bootstrap CI, serialised
to JSON. Target: <= 2 s. ``agreement_cpu_s`` is the CPU time of the same work (this process
only), which stays honest on a machine shared with other jobs.

The slide is synthetic but shaped like a real one: cells sit in 1600 px TOI tiles of a 100k px
slide, 7-20 µm across at 0.1 µm/px, many touching, outlines with 20-60 vertices and lumpy,
elongated contours. Annotator B redraws ~80% of A's cells (moved, rescaled, re-vertexed and
re-traced with a trembling hand) and adds cells A missed; classes agree ~85% of the time with
confusions between neighbouring classes, as between two haematopathologists.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml import agreement as ag  # noqa: E402
from ml.classes import DEFAULT_CLASSES  # noqa: E402

TILE = 1600
SLIDE = 100_000


def outline(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    radius: float,
    shape: dict[str, float],
    n: int,
    tremble: float,
) -> list[list[float]]:
    """A closed cell outline of ``n`` vertices, GeoJSON ring in level-0 px (0.1 px precision)."""
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * (
        1
        + shape["a2"] * np.cos(2 * (t - shape["p2"]))
        + shape["a3"] * np.cos(3 * (t - shape["p3"]))
    )
    r = r + rng.normal(0, tremble, n)
    ring = np.c_[cx + r * np.cos(t), cy + r * np.sin(t)].round(1)
    return np.vstack([ring, ring[:1]]).tolist()


def random_shape(rng: np.random.Generator) -> dict[str, float]:
    """Elongation and lumpiness of one cell: low harmonics of its radius."""
    return {
        "a2": rng.uniform(0, 0.15),
        "p2": rng.uniform(0, np.pi),
        "a3": rng.uniform(0, 0.06),
        "p3": rng.uniform(0, np.pi),
    }


def place_cells(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 3)`` centres and radii packed into TOI tiles, neighbours often touching."""
    tiles = rng.choice((SLIDE // TILE) ** 2, size=n // 60 + 1, replace=False)
    cells: list[tuple[float, float, float]] = []
    while len(cells) < n:
        tile = tiles[len(cells) // 60]
        x0, y0 = (tile % (SLIDE // TILE)) * TILE, (tile // (SLIDE // TILE)) * TILE
        radius = rng.uniform(35, 100)
        cx, cy = x0 + rng.uniform(radius, TILE - radius), y0 + rng.uniform(radius, TILE - radius)
        near = [c for c in cells[-60:] if np.hypot(c[0] - cx, c[1] - cy) < 0.95 * (c[2] + radius)]
        if not near:
            cells.append((cx, cy, radius))
    return np.array(cells)


def annotators(
    seed: int, n: int, shared: float
) -> tuple[list[Any], list[str], list[Any], list[str]]:
    """Cells and classes of annotators A and B on one slide."""
    rng = np.random.default_rng(seed)
    n_shared = int(round(shared * n))
    cells = place_cells(rng, 2 * n - n_shared)
    keys = [c.key for c in DEFAULT_CLASSES]
    prior = rng.dirichlet(np.full(len(keys), 0.8))
    truth = rng.choice(len(keys), size=len(cells), p=prior)
    poly_a, lab_a, poly_b, lab_b = [], [], [], []
    for i, (cx, cy, radius) in enumerate(cells):
        shape = random_shape(rng)
        if i < n:  # A drew cells 0 .. n-1
            poly_a.append(_geojson(outline(rng, cx, cy, radius, shape, rng.integers(20, 61), 0.8)))
            lab_a.append(keys[truth[i]])
        if i < n_shared or i >= n:  # B drew the shared ones and those A missed
            dx, dy = rng.normal(0, 0.05 * radius, 2)
            ring = outline(
                rng,
                cx + dx,
                cy + dy,
                radius * rng.normal(1, 0.05),
                shape,
                rng.integers(20, 61),
                1.5,
            )
            poly_b.append(_geojson(ring))
            label = (
                truth[i] if rng.random() < 0.85 else (truth[i] + rng.choice([-1, 1])) % len(keys)
            )
            lab_b.append(keys[label])
    return poly_a, lab_a, poly_b, lab_b


def _geojson(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring]}


def run_once(
    poly_a: list[Any], lab_a: list[str], poly_b: list[Any], lab_b: list[str], classes: list[str]
) -> dict[str, Any]:
    """Wall and CPU seconds for every cell figure of the report, and the figures themselves."""
    wall, cpu = time.perf_counter(), time.process_time()
    match = ag.match_cells(poly_a, poly_b, iou_threshold=0.5)
    match_s = time.perf_counter() - wall
    result = ag.cell_agreement(match, lab_a, lab_b, classes)
    figures = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "match_s": match_s,
        "figures": figures,
    }


def summary(runs: list[dict[str, Any]], n_classes: int) -> dict[str, Any]:
    """The JSON line: timings (median of runs) and the figures they produced, for context."""
    figures = runs[0]["figures"]
    kappa = figures["classes"]["kappa"]
    return {
        "agreement_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "agreement_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "runs_s": [round(r["wall_s"], 3) for r in runs],
        "match_s": round(statistics.median(r["match_s"] for r in runs), 3),
        "target_s": 2.0,
        **{k: figures[k] for k in ("n_a", "n_b", "matched", "a_only", "b_only")},
        **{k: round(figures[k]["value"], 4) for k in ("mean_iou", "mean_dice", "detection_f1")},
        "class_kappa": round(kappa["value"], 4),
        "class_kappa_ci": [round(x, 4) for x in kappa["ci"]],
        "n_classes": n_classes,
        "bootstrap_resamples": ag.N_RESAMPLES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=5000)
    parser.add_argument("--shared", type=float, default=0.8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    poly_a, lab_a, poly_b, lab_b = annotators(0, args.cells, args.shared)
    classes = [c.key for c in DEFAULT_CLASSES]
    runs = [run_once(poly_a, lab_a, poly_b, lab_b, classes) for _ in range(args.repeats)]
    started = time.perf_counter()
    items = ag.cell_disagreements(ag.match_cells(poly_a, poly_b), lab_a, lab_b)
    vertices = [len(p["coordinates"][0]) - 1 for p in poly_a + poly_b]
    line = summary(runs, len(classes)) | {
        "vertices_min_max": [min(vertices), max(vertices)],
        "disagreements": len(items),
        "match_plus_disagreements_s": round(time.perf_counter() - started, 3),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
