"""Frames per second of the annotation workspace while panning and zooming over 5,000 cells.

Headless Debian chromium opens ``/slides/<id>/annotate/?stage=cell`` with every cell drawn,
then a script pans and zooms continuously (one new view per animation frame, zoom 0.4x-1.6x
of the whole-slide view, where all cells are on screen) and counts ``requestAnimationFrame``
callbacks. The same loop with the annotation overlay hidden gives the viewer's own ceiling on
the same machine at the same moment (``viewer_fps_without_overlay``).

Two ways to run it:

- against a running server: ``measure_viewer_fps(base_url, session_cookie, slide_id)``;
- self-contained (no arguments): a throwaway database, the 20k demo smear, 5,000 cells of
  20-60 vertices, and Django's live server thread. ``bench/annotations.py`` calls it this way.

Usage: .venv/bin/python bench/viewer_fps.py [--seconds 5] [--cells 5000]
       .venv/bin/python bench/viewer_fps.py --base-url http://127.0.0.1:8000 --cookie <sessionid> --slide 3
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.world import SLIDE_SIZE, cell_polygons, demo_world, logged_in_client  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WINDOW = {"width": 1400, "height": 900}

# One new view per animation frame: zoom swings between 0.4x and 1.6x of the home zoom while
# the centre circles; `immediately` so that every frame is a fresh pan/zoom, the worst case.
PAN_ZOOM_JS = """
async (seconds) => {
  const app = window.bmadccAnnotate;
  const viewer = app.parts.viewer;
  const vp = viewer.viewport;
  const home = vp.getHomeZoom();
  const centre = vp.getCenter();
  const renders0 = app.parts.overlay.renders;
  return await new Promise((resolve) => {
    let frames = 0, t0 = null, last = null, worst = 0;
    const step = (t) => {
      if (t0 === null) { t0 = t; last = t; }
      const s = (t - t0) / 1000;
      frames += 1;
      worst = Math.max(worst, t - last);
      last = t;
      vp.zoomTo(home * (1 + 0.6 * Math.sin(s * 1.3)), null, true);
      vp.panTo(new app.OpenSeadragon.Point(centre.x + 0.1 * Math.sin(s * 2), centre.y + 0.1 * Math.cos(s * 2)), true);
      if (s < seconds) { requestAnimationFrame(step); return; }
      vp.goHome(true);
      resolve({ frames, seconds: s, worst_ms: worst, renders: app.parts.overlay.renders - renders0 });
    };
    requestAnimationFrame(step);
  });
}
"""


def measure_viewer_fps(
    base_url: str | None = None,
    session_cookie: str | None = None,
    slide_id: int | None = None,
    seconds: float = 5.0,
) -> float:
    """Frames per second while panning and zooming with every cell of the slide drawn.

    With ``base_url`` (e.g. ``http://127.0.0.1:8000``), ``session_cookie`` (a logged-in
    ``sessionid``) and ``slide_id``, measures that server's slide; with none of them, builds a
    throwaway world of 5,000 cells first (see the module docstring).
    """
    return measure(base_url, session_cookie, slide_id, seconds)["viewer_fps"]


def measure(
    base_url: str | None,
    session_cookie: str | None,
    slide_id: int | None,
    seconds: float,
    cells: int = 5000,
) -> dict:
    if base_url is None:
        with served_world(cells) as (url, cookie, slide):
            return drive(url, cookie, slide, seconds)
    if not session_cookie or slide_id is None:
        raise ValueError("base_url needs session_cookie and slide_id too")
    return drive(base_url, session_cookie, slide_id, seconds)


# -- the browser side -------------------------------------------------------------------------
def drive(base_url: str, session_cookie: str, slide_id: int, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=WINDOW)
            context.add_cookies([{"name": "sessionid", "value": session_cookie, "url": base_url}])
            page = context.new_page()
            cells = open_workspace(page, base_url, slide_id)
            with_overlay = page.evaluate(PAN_ZOOM_JS, seconds)
            page.wait_for_timeout(500)
            page.evaluate("() => { window.bmadccAnnotate.parts.overlay.canvas.hidden = true; }")
            without = page.evaluate(PAN_ZOOM_JS, seconds)
            version = browser.version
        finally:
            browser.close()
    return {
        "viewer_fps": round(with_overlay["frames"] / with_overlay["seconds"], 1),
        "viewer_fps_without_overlay": round(without["frames"] / without["seconds"], 1),
        "cells_drawn": cells,
        "worst_frame_ms": round(with_overlay["worst_ms"], 1),
        "overlay_redraws": with_overlay["renders"],
        "seconds": seconds,
        "chromium": version,
    }


def open_workspace(page, base_url: str, slide_id: int) -> int:
    """Open the cell stage and wait until every cell is drawn; returns how many there are."""
    page.goto(f"{base_url}/slides/{slide_id}/annotate/?stage=cell")
    page.wait_for_selector("#annotate[data-state=ready]", timeout=120_000)
    page.wait_for_function(
        """() => { const a = window.bmadccAnnotate;
          return a.parts.overlay.renders > 0 && !a.parts.overlay.inFlight
            && a.parts.viewer.world.getItemAt(0).getFullyLoaded(); }""",
        timeout=120_000,
    )
    page.wait_for_timeout(1000)
    return page.evaluate("() => window.bmadccAnnotate.parts.overlay.shapes.size")


# -- the self-contained world -----------------------------------------------------------------
@contextmanager
def served_world(cells: int) -> Iterator[tuple[str, str, int]]:
    """A throwaway database with one user, the demo slide and ``cells`` cells, served live.

    Yields (base_url, sessionid, slide_id).
    """
    import django
    from django.conf import settings
    from django.db import connection

    django.setup()
    _allow_test_client()
    dist = REPO / "frontend" / "dist" / "bmadcc" / "annotate.js"
    if not dist.exists():
        raise SystemExit("the front end is not built: run `npm run build` in frontend/")
    storage = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    old_storage = settings.SLIDE_STORAGE_DIR
    settings.SLIDE_STORAGE_DIR = storage
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = "bench_viewer"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        cookie, slide_id = _populate(cells)
        with _live_server() as base_url:
            yield base_url, cookie, slide_id
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        settings.SLIDE_STORAGE_DIR = old_storage
        shutil.rmtree(storage, ignore_errors=True)


def _allow_test_client() -> None:
    from django.test.utils import setup_test_environment

    # Lets the test client's "testserver" host through; bench/annotations.py may have already.
    with contextlib.suppress(RuntimeError):
        setup_test_environment()


def _populate(cells: int) -> tuple[str, int]:
    """User, project, the 20k demo smear and ``cells`` labelled cells; (sessionid, slide id)."""
    from apps.annotations import services as annotations
    from apps.annotations.errors import BulkInvalid
    from apps.annotations.models import LabelClass

    user, project, slide = demo_world("viewer-bench", "viewer-bench-pass", "viewer bench")
    # Every class of the schema in turn: the overlay draws one path per colour.
    keys = list(LabelClass.objects.filter(project=project).values_list("key", flat=True))
    items = cell_polygons(cells, 0, SLIDE_SIZE)
    for index, item in enumerate(items):
        item["label"] = keys[index % len(keys)]
    aset = annotations.get_or_create_annotator_set(slide=slide, stage="cell", user=user)
    try:
        annotations.bulk_create_annotations(aset=aset, user=user, items=items)
    except BulkInvalid as exc:
        raise SystemExit(f"the bench cells were refused: {exc.errors[:3]}") from exc
    return logged_in_client(user).cookies["sessionid"].value, slide.pk


@contextmanager
def _live_server() -> Iterator[str]:
    """Django's live server thread with static files, as LiveServerTestCase starts it."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.db import connections
    from django.test.testcases import LiveServerThread

    shared = {
        conn.alias: conn
        for conn in connections.all()
        if conn.vendor == "sqlite" and conn.is_in_memory_db()
    }
    for conn in shared.values():
        conn.inc_thread_sharing()
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override=shared)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.terminate()
        for conn in shared.values():
            conn.dec_thread_sharing()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running server; default: a throwaway one")
    parser.add_argument("--cookie", help="sessionid of a logged-in user (with --base-url)")
    parser.add_argument("--slide", type=int, help="slide id (with --base-url)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cells", type=int, default=5000, help="cells of the throwaway world")
    args = parser.parse_args()
    result = measure(args.base_url, args.cookie, args.slide, args.seconds, cells=args.cells)
    # Figures from a shared machine mean little without its load during the run.
    result |= {"load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
