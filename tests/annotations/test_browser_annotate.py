"""The annotation workspace in a real browser (Debian chromium, Playwright, live server).

An annotator draws an ROI, walks and labels TOI tiles with the keyboard, outlines cells and
classifies them with class keys; after a reload everything is there, in the page and in the
database. The slide is the real Aperio file cmu-1-small-region.svs (2220 x 2967 px, 0.499 µm/px).
"""

from __future__ import annotations

import pytest

from apps.annotations.models import Annotation
from tests.browser import *  # noqa: F403 (the browser fixtures)
from tests.browser import (
    click_slide,
    draw_polygon,
    login,
    open_annotate,
    show_region,
    wait_saved,
)
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# An ROI around the smear's middle and two cells, in level-0 px of the 2220 x 2967 slide.
ROI = [(500, 700), (1700, 650), (1800, 2100), (600, 2300), (400, 1500)]
CELL_A = [
    (1000 + dx, 1200 + dy)
    for dx, dy in [(0, -40), (35, -20), (35, 20), (0, 40), (-35, 20), (-35, -20)]
]
CELL_C = [(1150, 1250), (1200, 1250), (1200, 1300), (1150, 1300)]
CELL_B = [(1300 + dx, 1500 + dy) for dx, dy in [(0, -50), (45, 0), (0, 50), (-45, 0)]]


# -- helpers ----------------------------------------------------------------------------------
def show_whole_slide(page) -> None:
    page.evaluate("() => window.bmadccAnnotate.parts.viewer.viewport.goHome(true)")


@pytest.fixture
def no_sam(settings, tmp_path):
    """An empty model directory and no SAM loaded in this process (the live server's too)."""
    from apps.annotations import sam

    settings.MODEL_DIR = tmp_path / "models"
    sam.forget()
    yield
    sam.forget()


def live(slide, stage: str):
    return Annotation.objects.filter(set__slide=slide, set__stage=stage, is_deleted=False)


# -- the whole workflow -------------------------------------------------------------------------
def test_annotator_draws_roi_labels_tiles_outlines_cells_and_finds_them_after_reload(
    browser_page, live_server, member, project, slide, no_sam
):
    page = browser_page
    project.toi_tile_size = 800
    project.save()
    login(page, live_server, "member", "member-pass-123")
    ARTIFACTS.mkdir(exist_ok=True)

    # ROI: click five vertices, close with Enter, then drag one vertex outwards.
    open_annotate(page, live_server, slide.pk, "roi")
    show_whole_slide(page)
    draw_polygon(page, ROI)
    wait_saved(page)
    assert page.get_by_test_id("roi-item").count() == 1
    assert "mm²" in page.get_by_test_id("roi-area").inner_text()
    (roi,) = live(slide, "roi")
    assert roi.version == 1 and len(roi.geometry["coordinates"][0]) == len(ROI) + 1
    handle = page.locator(".editor-handle[data-index='1']")
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 40, box["y"] - 20, steps=5)
    page.mouse.up()
    wait_saved(page)
    roi.refresh_from_db()
    assert roi.version == 2
    assert roi.geometry["coordinates"][0][1][0] > ROI[1][0] + 20  # moved right, in level-0 px
    page.screenshot(path=str(ARTIFACTS / "annotate-roi.png"))

    # TOI: the grid is restricted to the ROI; t, t, f label three tiles and move on.
    open_annotate(page, live_server, slide.pk, "toi")
    progress = page.get_by_test_id("toi-progress")
    total = int(progress.get_attribute("data-total"))
    assert 4 <= total < 12  # 3 x 4 tiles of 800 px over the slide, fewer under the ROI
    for key in ["t", "t", "f"]:
        page.keyboard.press(key)
    page.keyboard.press("n")  # skip one
    page.keyboard.press("t")
    wait_saved(page)
    assert progress.get_attribute("data-toi") == "3"
    assert progress.get_attribute("data-non-toi") == "1"
    labels = sorted(live(slide, "toi").values_list("label", flat=True))
    assert labels == ["non_toi", "toi", "toi", "toi"]
    show_whole_slide(page)
    page.wait_for_timeout(500)  # the overlay redraws the grid sharp once the view settles
    page.screenshot(path=str(ARTIFACTS / "annotate-toi.png"))

    # Cells: outline two; class keys l (lymphocyte) and s (segmented neutrophil) label them.
    open_annotate(page, live_server, slide.pk, "cell")
    assert page.get_by_test_id("sam-toggle").inner_text() == "SAM: model not installed"
    show_region(page, 850, 1050, 600, 600)
    draw_polygon(page, CELL_A)
    page.keyboard.press("l")
    draw_polygon(page, CELL_B)
    page.keyboard.press("s")
    wait_saved(page)
    assert page.get_by_test_id("selection").get_attribute("data-label") == "segmented_neutrophil"
    cells = {c.label: c for c in live(slide, "cell")}
    assert set(cells) == {"lymphocyte", "segmented_neutrophil"}
    # A third outline, saved, then deleted with x: soft-deleted, kept in history.
    draw_polygon(page, CELL_C)
    wait_saved(page)
    page.keyboard.press("x")
    wait_saved(page)
    (gone,) = Annotation.objects.filter(set__slide=slide, set__stage="cell", is_deleted=True)
    assert list(gone.events.order_by("id").values_list("action", flat=True)) == ["create", "delete"]
    page.screenshot(path=str(ARTIFACTS / "annotate-cells.png"))

    # Reload each stage: everything comes back from the server.
    page.reload()
    page.wait_for_selector("#annotate[data-state=ready]", timeout=30_000)
    assert (
        page.locator("[data-testid=class-count][data-key=lymphocyte]").get_attribute("data-count")
        == "1"
    )
    assert (
        page.locator("[data-testid=class-count][data-key=segmented_neutrophil]").get_attribute(
            "data-count"
        )
        == "1"
    )
    assert page.get_by_test_id("visible-own").inner_text() == "2"
    open_annotate(page, live_server, slide.pk, "toi")
    progress = page.get_by_test_id("toi-progress")
    assert (progress.get_attribute("data-toi"), progress.get_attribute("data-non-toi")) == (
        "3",
        "1",
    )
    open_annotate(page, live_server, slide.pk, "roi")
    assert page.get_by_test_id("roi-item").count() == 1
    assert page.get_by_test_id("save-indicator").inner_text() == "All changes saved"


def test_class_keys_relabel_cells_in_the_gallery_without_the_viewer(
    browser_page, live_server, member, slide, as_user
):
    from tests.annotations.conftest import add_cell, own_set

    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    first = add_cell(api, set_id, 600, 800, "myeloblast")
    second = add_cell(api, set_id, 900, 800, "myeloblast")
    add_cell(api, set_id, 1200, 800, "monocyte")
    login(browser_page, live_server, "member", "member-pass-123")
    page = browser_page
    page.goto(f"{live_server.url}/slides/{slide.pk}/gallery/")
    page.wait_for_selector("#gallery[data-state=ready]", timeout=30_000)
    assert page.get_by_test_id("crop").count() == 3
    page.get_by_test_id("gallery-filter").select_option("myeloblast")
    assert page.get_by_test_id("crop").count() == 2
    # The crops are real JPEG cut-outs of the slide.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=crop] img')].every(i => i.complete && i.naturalWidth === 128)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "gallery-myeloblasts.png"))
    page.keyboard.press("ArrowRight")  # focus the first crop
    page.keyboard.press("l")  # lymphocyte; focus moves on
    page.keyboard.press("b")  # band neutrophil
    wait_saved(page)
    labels = dict(
        Annotation.objects.filter(pk__in=[first["id"], second["id"]]).values_list("id", "label")
    )
    assert labels == {first["id"]: "lymphocyte", second["id"]: "band_neutrophil"}
    assert page.get_by_test_id("crop").count() == 0  # none left under the myeloblast filter
    page.get_by_test_id("gallery-filter").select_option("")
    captions = page.locator("[data-testid=crop] figcaption").all_inner_texts()
    names = sorted(caption.split(" ", 1)[1] for caption in captions)
    assert names == ["Band neutrophil", "Lymphocyte", "Monocyte"]
    page.screenshot(path=str(ARTIFACTS / "gallery-relabelled.png"))


def test_sam_click_mode_proposes_an_outline_that_enter_accepts(
    browser_page, live_server, member, slide, no_sam, settings
):
    from ml.zoo import install_lite_medsam

    install_lite_medsam(settings.MODEL_DIR)  # as setup does: the real LiteMedSAM card
    page = browser_page
    login(page, live_server, "member", "member-pass-123")
    open_annotate(page, live_server, slide.pk, "cell")
    show_region(page, 900, 1300, 400, 400)
    toggle = page.get_by_test_id("sam-toggle")
    assert toggle.inner_text() == "SAM assist" and toggle.is_enabled()
    toggle.click()
    assert toggle.inner_text() == "SAM assist: on"
    click_slide(page, 1100, 1500)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=sam-note]').textContent.startsWith('Proposal')",
        timeout=60_000,
    )
    assert page.locator(".editor-handle").count() >= 3  # the proposal can be edited first
    page.keyboard.press("Enter")
    wait_saved(page)
    (cell,) = live(slide, "cell")
    assert cell.label == "myeloblast"  # the class of the next outline (the first class)
    assert cell.min_x <= 1100 + 2 and cell.max_x >= 1100 - 2
    assert cell.min_y <= 1500 + 2 and cell.max_y >= 1500 - 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "annotate-sam.png"))
