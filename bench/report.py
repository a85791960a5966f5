"""The DCC report with 5,000 cells: page, review gallery, one reclassification, the PDF.

Prints ONE JSON line. Each figure is the median of ``--repeat`` runs, measured in-process with
Django's test client (server time, no network):

- ``report_page_s``: the report page's HTML (target <= 0.3 s);
- ``gallery_page_s``: the first gallery page as the browser loads it: its JSON (200 cells) and
  its one sprite sheet of 200 crops with their outlines, decoded (target <= 0.5 s). The
  server's cache of rendered sheets is emptied before each repeat, so the crops are read from
  the slide each time (OpenSlide's own tile cache stays warm after the first);
- ``gallery_page_cached_s``: the same with the sheet already rendered (no target);
- ``reclassify_roundtrip_s``: one reclassification saved and the new DCC returned (<= 0.1 s);
- ``pdf_s``: the report's PDF (WeasyPrint; <= 2 s);
- ``gallery_list_s``: the gallery page's JSON alone, without the crops (no target).

The cells are real: the 517 cells ``ml.pipeline.analyse`` finds and classifies (a tiny random-
weight classifier, as tests/reports) on cmu-1-small-region.svs, repeated with small offsets to
5,000 (the slide is too small to hold 5,000 of its own). The report's review copy is made once,
before the timings.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bmadcc_web.settings")


def _timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 4)


def _cells(items: list[dict], n: int, width: int, height: int) -> list[dict]:
    """``n`` cells: ``items``, then copies shifted 3 px at a time, those inside the slide."""
    out, i = [], 0
    while len(out) < n:
        item = items[i % len(items)]
        shift = 3.0 * (i // len(items))
        i += 1
        ring = [[x + shift, y + shift] for x, y in item["geometry"]["coordinates"][0]]
        if max(x for x, _ in ring) < width and max(y for _, y in ring) < height:
            out.append(item | {"geometry": {"type": "Polygon", "coordinates": [ring]}})
    return out


def measure(n_cells: int, repeat: int, workdir: Path) -> dict[str, float]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from PIL import Image

    from apps.accounts.models import Role
    from apps.accounts.services import add_member, create_project
    from apps.reports.selectors import _SPRITES
    from apps.slides import services as slides
    from tests.conftest import SLIDE_FILE
    from tests.ml.test_pipeline import write_tiny_models
    from tests.reports.conftest import load_pipeline_output, store_run

    settings.SLIDE_STORAGE_DIR = workdir / "store"
    settings.SLIDE_STORAGE_DIR.mkdir()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    users = get_user_model().objects
    owner = users.create_user("owner", password="owner-pass-123")
    reviewer = users.create_user("reviewer", password="reviewer-pass-123")
    project = create_project(name="Bench", created_by=owner)
    add_member(project=project, user=reviewer, role=Role.REVIEWER)
    intake = slides.register_path(project=project, path=SLIDE_FILE, user=owner)
    slides.ingest(intake.slide.pk)
    intake.slide.refresh_from_db()
    output = load_pipeline_output(
        write_tiny_models(workdir / "models", tasks=("cell_classification",))
    )
    output = output | {
        "items": _cells(output["items"], n_cells, intake.slide.width, intake.slide.height)
    }
    run = store_run(output, project=project, slide=intake.slide, user=owner)
    client = Client()
    client.force_login(reviewer)
    base = f"/api/analyses/{run.pk}/report/"
    assert client.get(f"/analyses/{run.pk}/report/").status_code == 200  # makes version 1

    def gallery(*, cold: bool = True) -> None:
        """What the browser does for the first page: its JSON, then its one sprite sheet of
        200 crops, decoded. ``cold``: the server's rendered-sheet cache is emptied first, so
        the crops are read from the slide and drawn (a page no one has opened yet)."""
        if cold:
            _SPRITES.clear()
        body = client.get(f"{base}cells/").json()
        query = {"group": body["group"], "page": 1, "v": body["sprite"]["key"]}
        response = client.get(f"{base}cells/sprite.jpeg", query)
        assert response.status_code == 200, response.status_code
        sheet = Image.open(io.BytesIO(response.content))
        sheet.load()
        columns = body["sprite"]["columns"]
        rows = -(-len(body["cells"]) // columns)
        assert sheet.size == (columns * 128, rows * 128) and len(body["cells"]) == 200

    cells = client.get(f"{base}cells/").json()["cells"]
    state = {"i": 0}

    def reclassify() -> None:
        cell = cells[state["i"]]
        state["i"] += 1
        response = client.post(
            f"{base}cells/{cell['id']}/reclassify/",
            {
                "label": "monocyte" if cell["label"] != "monocyte" else "lymphocyte",
                "version": cell["version"],
            },
            content_type="application/json",
        )
        assert response.status_code == 200, response.content

    return {
        "cells": n_cells,
        "report_page_s": _timed(lambda: client.get(f"/analyses/{run.pk}/report/"), repeat),
        "gallery_page_s": _timed(gallery, repeat),
        "gallery_page_cached_s": _timed(lambda: gallery(cold=False), repeat),
        "gallery_list_s": _timed(lambda: client.get(f"{base}cells/"), repeat),
        "reclassify_roundtrip_s": _timed(reclassify, repeat),
        "pdf_s": _timed(lambda: client.get(f"/analyses/{run.pk}/report.pdf"), repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import django
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = "bench_report"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = {"database": connection.vendor, **measure(args.cells, args.repeat, Path(tmp))}
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    result |= {"load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
