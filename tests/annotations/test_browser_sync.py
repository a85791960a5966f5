"""Never lose work, in a real browser: edits made while the server is unreachable survive a
reload (localStorage) and are saved when it answers again; a stale edit shows the conflict
with the server's current state instead of overwriting it.
"""

from __future__ import annotations

import pytest

from apps.annotations.models import Annotation
from tests.annotations.conftest import add_cell, own_set
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

CELL = [(1000, 1160), (1035, 1180), (1035, 1220), (1000, 1240), (965, 1220), (965, 1180)]


def refuse_creates(route) -> None:
    """Playwright route handler: new annotations cannot reach the server; the rest can."""
    if route.request.method == "POST":
        route.abort("connectionrefused")
    else:
        route.continue_()


def is_annotation_list(url: str) -> bool:
    return url.split("?")[0].endswith("/api/annotations/")


def test_a_cell_drawn_while_offline_survives_a_reload_and_is_saved_once_the_server_answers(
    browser_page, live_server, member, slide
):
    page = browser_page
    login(page, live_server, "member", "member-pass-123")
    page.route(is_annotation_list, refuse_creates)
    open_annotate(page, live_server, slide.pk, "cell")
    show_region(page, 850, 1050, 300, 300)
    draw_polygon(page, CELL)
    page.keyboard.press("l")  # lymphocyte, while the create is still waiting
    indicator = page.get_by_test_id("save-indicator")
    page.wait_for_selector("[data-testid=save-indicator][data-state=retrying]")
    assert "unsaved change" in indicator.inner_text()
    stored = page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('bmadcc:'))")
    assert len(stored) == 1
    assert not Annotation.objects.filter(set__slide=slide).exists()
    pending = indicator.get_attribute("data-pending")  # the create, and the label if apart

    page.reload()
    page.wait_for_selector("#annotate[data-state=ready]", timeout=30_000)
    assert page.get_by_test_id("visible-own").inner_text() == "1"
    assert indicator.get_attribute("data-pending") == pending
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sync-offline-unsaved.png"))

    page.get_by_test_id("retry-now").wait_for()  # offered while the server is unreachable
    page.unroute(is_annotation_list)
    # The backoff timer may retry first; otherwise the button does it now.
    page.evaluate("() => document.querySelector('[data-testid=retry-now]:not([hidden])')?.click()")
    wait_saved(page)
    (cell,) = Annotation.objects.filter(set__slide=slide)
    assert cell.label == "lymphocyte"
    assert len(cell.geometry["coordinates"][0]) == len(CELL) + 1
    assert page.evaluate("() => Object.keys(localStorage).length") == 0


def test_a_stale_edit_shows_the_current_state_and_history_keeps_both_attempts(
    browser_page, live_server, member, slide, as_user
):
    api = as_user(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 1000, 1200, "myeloblast")
    page = browser_page
    login(page, live_server, "member", "member-pass-123")
    open_annotate(page, live_server, slide.pk, "cell")
    show_region(page, 850, 1050, 300, 300)
    click_slide(page, 1000, 1200)
    assert page.get_by_test_id("selection").get_attribute("data-id") == str(cell["id"])

    # Meanwhile the same cell is changed elsewhere (another tab): version 1 -> 2.
    response = api.patch(
        f"/api/annotations/{cell['id']}/", {"version": 1, "label": "monocyte"}, format="json"
    )
    assert response.status_code == 200, response.content

    page.keyboard.press("l")  # lymphocyte, based on version 1
    conflict = page.get_by_test_id("conflict")
    conflict.wait_for()
    assert "version 2" in conflict.inner_text() and "Monocyte" in conflict.inner_text()
    assert page.get_by_test_id("save-indicator").get_attribute("data-state") == "conflict"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sync-conflict.png"))
    stored = Annotation.objects.get(pk=cell["id"])
    assert (stored.label, stored.version) == ("monocyte", 2)

    page.get_by_test_id("keep-mine").click()
    wait_saved(page)
    stored.refresh_from_db()
    assert (stored.label, stored.version) == ("lymphocyte", 3)
    actions = list(stored.events.order_by("id").values_list("action", flat=True))
    assert actions == ["create", "update", "conflict", "update"]
