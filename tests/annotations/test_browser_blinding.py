"""Blinding in the UI: annotator B's workspace shows none of annotator A's cells until both
have submitted the stage, and shows them afterwards (Debian chromium, Playwright, live server).
"""

from __future__ import annotations

import pytest

from apps.annotations import services
from tests.annotations.conftest import add_cell, own_set
from tests.browser import *  # noqa: F403 (the browser fixtures)
from tests.browser import login, open_annotate
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def shown(page) -> tuple[str, str]:
    """(own, others) cell counts the workspace says it shows."""
    return (
        page.get_by_test_id("visible-own").inner_text(),
        page.get_by_test_id("visible-others").inner_text(),
    )


def shown_in_store(page) -> dict:
    return page.evaluate(
        """() => { const items = window.bmadccAnnotate.parts.store.all();
        return {own: items.filter(i => i.own).length, others: items.filter(i => !i.own).length}; }"""
    )


def test_annotator_b_sees_annotator_a_cells_only_after_both_submit(
    new_page, live_server, owner, member, partner, slide, as_user
):
    tasks = {
        user.username: services.assign_task(
            slide=slide, stage="cell", annotator=user, assigned_by=owner
        )
        for user in (member, partner)
    }
    annotator_a = as_user(member)
    set_a = own_set(annotator_a, slide, "cell")
    add_cell(annotator_a, set_a, 700, 900, "myeloblast")
    add_cell(annotator_a, set_a, 1000, 900, "lymphocyte")
    annotator_b = as_user(partner)
    add_cell(annotator_b, own_set(annotator_b, slide, "cell"), 1300, 900, "monocyte")
    ARTIFACTS.mkdir(exist_ok=True)

    page_b = new_page()
    login(page_b, live_server, "partner", "partner-pass-123")
    open_annotate(page_b, live_server, slide.pk, "cell")
    assert shown(page_b) == ("1", "0")
    assert shown_in_store(page_b) == {"own": 1, "others": 0}
    assert page_b.get_by_test_id("blinded").count() == 1
    assert (
        page_b.locator("[data-testid=class-count][data-key=myeloblast]").get_attribute("data-count")
        == "0"
    )
    page_b.screenshot(path=str(ARTIFACTS / "blinding-b-before-submit.png"))

    # A submits; B still sees nothing of A's until B submits too.
    response = annotator_a.post(f"/api/tasks/{tasks['member'].pk}/submit/")
    assert response.status_code == 200, response.content
    page_b.get_by_test_id("refresh").click()
    page_b.wait_for_timeout(500)
    assert shown(page_b) == ("1", "0")

    page_b.get_by_test_id("submit-task").click()
    page_b.wait_for_selector("[data-testid=task-state][data-state=submitted]")
    page_b.wait_for_function(
        "() => document.querySelector('[data-testid=visible-others]').textContent === '2'"
    )
    assert shown_in_store(page_b) == {"own": 1, "others": 2}
    assert page_b.get_by_test_id("tool-draw").count() == 1
    page_b.screenshot(path=str(ARTIFACTS / "blinding-b-after-submit.png"))

    # A's own workspace now shows B's cell as well.
    page_a = new_page()
    login(page_a, live_server, "member", "member-pass-123")
    open_annotate(page_a, live_server, slide.pk, "cell")
    assert shown(page_a) == ("2", "1")
