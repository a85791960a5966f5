"""Saving and listing 5,000 cell polygons through the real annotations API. Prints ONE JSON line.

- bulk_create_s: ``POST /api/annotations/bulk/`` with 5,000 cells of 20-60 vertices (target <= 2 s),
  the median of ``--repeat`` saves into an emptied set (each run listed in ``bulk_create_runs_s``).
- list_s: ``GET /api/annotations/?slide=&stage=cell`` returning all 5,000 (target <= 0.3 s);
  the median of ``--list-runs`` requests, the first one reported apart as ``list_first_s``.
- viewer_fps: from ``bench/viewer_fps.py: measure_viewer_fps`` when that module exists.

Requests go through Django's test client (the full middleware, DRF and database path, no
socket). The database is the configured one (``DATABASE_URL``; PostgreSQL in CI), in a
throwaway database named ``bench_annotations`` that is created, migrated and dropped here.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/annotations.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.world import SLIDE_SIZE, cell_polygons, demo_world, logged_in_client  # noqa: E402


def setup_world():
    """A user, a project and the 20k demo smear, ingested; returns (client, slide)."""
    user, _, slide = demo_world("bench", "bench-pass-123", "bench")
    return logged_in_client(user), slide


def post_json(client, url: str, body: dict):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def own_set(client, slide_id: int, stage: str) -> int:
    response = post_json(client, "/api/annotation-sets/", {"slide": slide_id, "stage": stage})
    return response.json()["id"]


def measure(n: int, list_runs: int, seed: int, repeat: int) -> dict:
    from apps.annotations.models import Annotation

    client, slide = setup_world()
    # Warm the code paths (imports, first queries) on another stage, so the figure is the
    # steady-state cost of a save, not of Python's first import of shapely.
    warm = own_set(client, slide.pk, "roi")
    post_json(
        client,
        "/api/annotations/bulk/",
        {
            "set": warm,
            "items": [
                {
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[10, 10], [90, 10], [90, 90], [10, 10]]],
                    }
                }
            ],
        },
    )
    set_id = own_set(client, slide.pk, "cell")
    items = cell_polygons(n, seed, SLIDE_SIZE)
    body = json.dumps({"set": set_id, "items": items})

    bulk_times, bulk_cpu = [], []
    for run in range(repeat):
        if run:  # start each run from an empty set; the deletion is not timed
            Annotation.objects.filter(set_id=set_id).delete()
        started, cpu = time.perf_counter(), time.process_time()
        response = client.post("/api/annotations/bulk/", data=body, content_type="application/json")
        bulk_times.append(time.perf_counter() - started)
        bulk_cpu.append(time.process_time() - cpu)
        if response.status_code != 201:
            raise SystemExit(
                f"bulk create failed: {response.status_code} {response.content[:500]!r}"
            )

    url = f"/api/annotations/?slide={slide.pk}&stage=cell"
    times, size = [], 0
    for _ in range(list_runs):
        started = time.perf_counter()
        listed = client.get(url)
        times.append(time.perf_counter() - started)
        size = len(listed.content)
    if len(json.loads(listed.content)) != n:
        raise SystemExit("the list did not return every cell")
    return {
        "n": n,
        "vertices_mean": round(
            statistics.mean(len(i["geometry"]["coordinates"][0]) - 1 for i in items), 1
        ),
        "bulk_create_s": round(statistics.median(bulk_times), 3),
        "bulk_create_runs_s": [round(t, 3) for t in bulk_times],
        # CPU seconds of this (Django) process alone; PostgreSQL's work is in the wall time.
        "bulk_create_app_cpu_s": round(statistics.median(bulk_cpu), 3),
        "list_s": round(statistics.median(times[1:] or times), 3),
        "list_first_s": round(times[0], 3),
        "list_mb": round(size / 1e6, 2),
        "request_mb": round(len(body) / 1e6, 2),
    }


def viewer_fps() -> float | None:
    try:
        from bench.viewer_fps import measure_viewer_fps
    except ImportError:
        return None
    return measure_viewer_fps()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=5000)
    parser.add_argument("--list-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="bulk saves; the median is reported")
    parser.add_argument("--no-viewer", action="store_true", help="skip viewer_fps (chromium)")
    args = parser.parse_args()

    import django
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()  # lets the test client's "testserver" host through
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = "bench_annotations"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        result = {
            "database": connection.vendor,
            **measure(args.cells, args.list_runs, args.seed, args.repeat),
        }
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    # Figures from a shared machine mean little without its load during the run.
    result |= {"load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    if not args.no_viewer:
        fps = viewer_fps()
        if fps is not None:
            result["viewer_fps"] = round(fps, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
