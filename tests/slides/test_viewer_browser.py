"""The viewer in a real browser: Debian chromium driven by Playwright against a live server."""

from __future__ import annotations

import pytest

from tests.browser import *  # noqa: F403
from tests.browser import login
from tests.conftest import ARTIFACTS, SLIDES_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _smear_pixel_share(page) -> dict:
    """Share of drawn canvas pixels that are stained (not white/transparent) and purple-ish."""
    return page.evaluate(
        """() => {
        const canvas = window.bmadccViewer.drawer.canvas;
        const ctx = canvas.getContext('2d');
        const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
        let stained = 0, purple = 0, n = 0;
        for (let i = 0; i < data.length; i += 16) {
            const [r, g, b, a] = [data[i], data[i+1], data[i+2], data[i+3]];
            n++;
            if (a > 0 && (r < 230 || g < 230 || b < 230)) stained++;
            if (a > 0 && b > g + 20 && r > g + 10) purple++;
        }
        return {stained: stained / n, purple: purple / n};
    }"""
    )


def test_demo_marrow_slide_renders_smear_pixels(
    browser_page, live_server, owner, ingest_path, demo_slide_file
):
    slide = ingest_path(demo_slide_file, name="demo marrow smear")
    page = browser_page
    login(page, live_server, "owner", "owner-pass-123")
    page.click("text=demo marrow smear")
    page.wait_for_url(f"**/slides/{slide.pk}/view/")
    page.wait_for_function(
        "() => window.bmadccViewer && window.bmadccViewer.world.getItemCount() === 1"
        " && window.bmadccViewer.world.getItemAt(0).getFullyLoaded()",
        timeout=30_000,
    )
    # Zoom towards the cells, as a pathologist would, and wait for the sharper tiles.
    page.evaluate(
        "() => window.bmadccViewer.viewport.zoomTo(window.bmadccViewer.viewport.getMaxZoom() / 4, null, true)"
    )
    page.wait_for_function(
        "() => window.bmadccViewer.world.getItemAt(0).getFullyLoaded()", timeout=30_000
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-demo-marrow.png"))
    share = _smear_pixel_share(page)
    assert share["stained"] > 0.5, share
    assert share["purple"] > 0.02, share
    assert page.locator(".navigator").count() == 1
    scalebar = page.get_by_test_id("scalebar")
    assert "µm" in scalebar.inner_text() or "mm" in scalebar.inner_text()


def test_slide_without_scale_says_no_scale(browser_page, live_server, owner, ingest_path):
    slide = ingest_path(SLIDES_DIR / "boxes.tiff")
    page = browser_page
    login(page, live_server, "owner", "owner-pass-123")
    page.goto(f"{live_server.url}/slides/{slide.pk}/view/")
    page.wait_for_function(
        "() => window.bmadccViewer && window.bmadccViewer.world.getItemCount() === 1"
    )
    assert page.get_by_test_id("scalebar").inner_text() == "no scale"


def test_slide_list_shows_failed_slides_with_their_reason(
    browser_page, live_server, owner, ingest_path
):
    ingest_path(SLIDES_DIR / "unopenable.tiff")
    ingest_path(SLIDES_DIR / "cmu-1-small-region.svs")
    page = browser_page
    login(page, live_server, "owner", "owner-pass-123")
    failed = page.locator("tr.status-failed")
    assert "not a slide OpenSlide can read: unsupported TIFF compression" in failed.inner_text()
    assert page.locator("tr.status-ready img").count() == 1
    page.screenshot(path=str(ARTIFACTS / "slide-list.png"), full_page=True)


def test_uploading_through_the_browser_adds_the_slide(browser_page, live_server, owner, project):
    page = browser_page
    login(page, live_server, "owner", "owner-pass-123")
    page.set_input_files("input[type=file]", str(SLIDES_DIR / "small.svs"))
    page.click("form.upload button[type=submit]")
    page.wait_for_load_state()
    assert "small.svs uploaded" in page.locator(".messages").inner_text()
    assert page.locator("tr.slide", has_text="small").count() == 1
