"""The analysis in a real browser: "Analyse" on the slide list, then the run's cells overlaid.

The live server is WSGI (no websockets), so this covers the buttons, the REST state and the
overlay; the websocket's events are covered by test_progress.py with channels' communicator,
and in a real browser against daphne and a qcluster worker by test_browser_live.py.
"""

from __future__ import annotations

import pytest

from tests.browser import *  # noqa: F403
from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_analyse_from_the_slide_list_then_overlay_the_runs_cells(
    browser_page, live_server, owner, slide
) -> None:
    from apps.analysis.models import AnalysisRun

    page = browser_page
    login(page, live_server, "owner", "owner-pass-123")
    # django-q2 runs in sync mode here: the run completes inside the POST.
    page.click(f"button[data-analyse='{slide.pk}']")
    page.wait_for_url(f"**/slides/{slide.pk}/view/", timeout=120_000)
    run = AnalysisRun.objects.get(slide=slide)
    assert run.status == "done", run.error
    status = page.get_by_test_id("run-status")
    status.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-status]').textContent.includes('done')"
    )
    assert f"{run.summary['cells']} cells found" in page.get_by_test_id("run-cells").inner_text()
    bars = page.locator(".run-stages progress")
    assert bars.count() == 5
    page.get_by_test_id("show-cells").check()
    page.wait_for_function(
        f"() => document.getElementById('analysis').dataset.cellsShown === '{run.summary['cells']}'"
    )
    # No classifier is installed (baselines): no cell needs review, so the filter shows none.
    page.get_by_test_id("review-only").check()
    page.wait_for_function("() => document.getElementById('analysis').dataset.cellsShown === '0'")
