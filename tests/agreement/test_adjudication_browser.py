"""Adjudication in a real browser: Debian chromium driven by Playwright against a live server."""

from __future__ import annotations

import pytest
from shapely.geometry import shape

from apps.agreement.models import Adjudication
from apps.annotations.models import Annotation
from tests.browser import *  # noqa: F403
from tests.browser import login
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _decided(page, n: int) -> None:
    page.wait_for_function(
        f"() => document.getElementById('progress-text').textContent.startsWith('{n} of 3')",
        timeout=20_000,
    )


def test_reviewer_adjudicates_disagreements_into_the_consensus_set(
    browser_page, live_server, cell_study, reviewer
):
    page = browser_page
    login(page, live_server, "reviewer", "reviewer-pass-123")
    page.goto(f"{live_server.url}/slides/{cell_study.pk}/agreement/")
    page.click("text=Adjudicate disagreements")
    page.wait_for_url(f"**/slides/{cell_study.pk}/adjudicate/?stage=cell")
    page.wait_for_selector("#adjudication[data-loaded=true]", timeout=20_000)
    _decided(page, 0)
    # Reading order along the row of cells: the class difference at x=700 comes first.
    assert "classes differ" in page.inner_text("#current")
    page.wait_for_function(
        "() => document.querySelectorAll('svg.adj-overlay path').length >= 2", timeout=20_000
    )
    centre = page.evaluate(
        "() => { const v = window.bmadccViewer; const c = v.viewport.getCenter();"
        " return v.viewport.viewportToImageCoordinates(c); }"
    )
    assert abs(centre["x"] - 701) < 40 and abs(centre["y"] - 299) < 40  # the viewer jumped
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "adjudication-cell.png"))

    page.click("#pick-b")  # B's promyelocyte
    _decided(page, 1)
    assert "only A drew" in page.inner_text("#current")
    page.select_option("#edit-label", "band_neutrophil")  # A's basophil, reclassified
    page.click("#edit-apply")
    _decided(page, 2)
    assert "only B drew" in page.inner_text("#current")
    page.keyboard.press("a")  # A drew nothing here: B's extra cell is left out
    _decided(page, 3)

    adjudication = Adjudication.objects.get(slide=cell_study, stage="cell")
    live = Annotation.objects.filter(set=adjudication.consensus, is_deleted=False)
    cells = sorted((a.label, round(shape(a.geometry).centroid.x)) for a in live)
    assert cells == [
        ("band_neutrophil", 900),
        ("lymphocyte", 500),
        ("myeloblast", 300),
        ("promyelocyte", 702),
    ]
    assert adjudication.completed_at is not None
