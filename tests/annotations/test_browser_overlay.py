"""The canvas overlay draws thousands of cells and, while the user pans and zooms, moves one
bitmap instead of redrawing shapes (STYLE: never redraw every shape on each frame).

Debian chromium, Playwright, live server; 5,000 cells of 20-60 vertices on the real Aperio
file cmu-1-small-region.svs (2220 x 2967 px).
"""

from __future__ import annotations

import math
import random

import pytest

from apps.annotations import services
from tests.browser import *  # noqa: F403 (the browser fixtures)
from tests.browser import login, open_annotate, show_region
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CELLS = 5000

# A new view on every animation frame for `seconds`; counts frames and overlay redraws.
PAN_ZOOM = """
async (seconds) => {
  const app = window.bmadccAnnotate;
  const vp = app.parts.viewer.viewport;
  const home = vp.getHomeZoom();
  const c = vp.getCenter();
  const renders0 = app.parts.overlay.renders;
  return await new Promise((resolve) => {
    let frames = 0, t0 = null;
    const step = (t) => {
      if (t0 === null) t0 = t;
      const s = (t - t0) / 1000;
      frames += 1;
      vp.zoomTo(home * (1 + 0.6 * Math.sin(s * 3)), null, true);
      vp.panTo(new app.OpenSeadragon.Point(c.x + 0.05 * Math.sin(s * 4), c.y), true);
      if (s < seconds) requestAnimationFrame(step);
      else resolve({ frames, redraws: app.parts.overlay.renders - renders0 });
    };
    requestAnimationFrame(step);
  });
}
"""


def cell_items(n: int, width: int, height: int) -> list[dict]:
    """``n`` simple cell outlines of 20-60 vertices on a jittered grid, labelled in turn."""
    rng = random.Random(3)
    side = math.ceil(math.sqrt(n))
    pitch_x, pitch_y = (width - 40) / side, (height - 40) / side
    labels = ["myeloblast", "lymphocyte", "monocyte", "segmented_neutrophil", "others"]
    items = []
    for i in range(n):
        cx = 20 + pitch_x * (i % side + 0.5)
        cy = 20 + pitch_y * (i // side + 0.5)
        k = rng.randint(20, 60)
        radii = [9 * rng.uniform(0.85, 1) for _ in range(k)]  # one radius per vertex: star-shaped
        ring = [
            [
                round(cx + r * math.cos(2 * math.pi * j / k), 2),
                round(cy + r * math.sin(2 * math.pi * j / k), 2),
            ]
            for j, r in enumerate(radii)
        ]
        ring.append(ring[0])
        items.append(
            {"geometry": {"type": "Polygon", "coordinates": [ring]}, "label": labels[i % 5]}
        )
    return items


def overlay_pixels_differ(page, clip: dict) -> float:
    """Share of pixels in `clip` that change when the overlay is hidden."""
    with_overlay = page.screenshot(clip=clip)
    page.evaluate("() => { window.bmadccAnnotate.parts.overlay.canvas.hidden = true; }")
    without = page.screenshot(clip=clip)
    page.evaluate("() => { window.bmadccAnnotate.parts.overlay.canvas.hidden = false; }")
    from io import BytesIO

    from PIL import Image, ImageChops

    diff = ImageChops.difference(
        Image.open(BytesIO(with_overlay)).convert("L"), Image.open(BytesIO(without)).convert("L")
    )
    changed = sum(1 for v in diff.getdata() if v > 12)
    return changed / (clip["width"] * clip["height"])


def test_panning_over_5000_cells_moves_one_bitmap_instead_of_redrawing_every_frame(
    browser_page, live_server, member, slide
):
    aset = services.get_or_create_annotator_set(slide=slide, stage="cell", user=member)
    services.bulk_create_annotations(
        aset=aset, user=member, items=cell_items(CELLS, slide.width, slide.height)
    )
    page = browser_page
    login(page, live_server, "member", "member-pass-123")
    open_annotate(page, live_server, slide.pk, "cell")
    assert page.get_by_test_id("visible-own").inner_text() == str(CELLS)
    page.wait_for_function(
        "() => { const o = window.bmadccAnnotate.parts.overlay; return o.renders > 0 && !o.inFlight"
        " && o.shapes.size === 5000; }"
    )

    result = page.evaluate(PAN_ZOOM, 2)
    assert result["frames"] >= 10, result
    # Snapshots are redrawn only when the zoom drifts past 1.6x (or the view leaves them):
    # a handful in two seconds, against one per frame for a naive overlay.
    assert result["redraws"] <= max(4, result["frames"] // 5), result

    # And the cells are really drawn: hiding the overlay changes the picture around them.
    show_region(page, 1000, 1300, 400, 300)
    page.wait_for_function("() => !window.bmadccAnnotate.parts.overlay.inFlight")
    page.wait_for_timeout(400)  # the settle redraw, sharp at this zoom
    box = page.locator("[data-role=viewer]").bounding_box()
    clip = {"x": box["x"] + 100, "y": box["y"] + 100, "width": 400, "height": 300}
    assert overlay_pixels_differ(page, clip) > 0.05
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overlay-5000-cells.png"))
