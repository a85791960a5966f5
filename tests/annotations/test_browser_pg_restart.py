"""PostgreSQL restarts while an annotator saves: the browser's save queue keeps the edits and
delivers them once the database is back, each exactly once.

The app runs as deployed: a daphne in its own process on a PostgreSQL of the test's own (a
shared one is never restarted), driven by Debian chromium. While the database is down every
save answers 5xx, which the queue (frontend/src/annotate/sync.js) treats as transient: it
keeps the edit in localStorage and retries with backoff.
"""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest

from tests.browser import *  # noqa: F403 (the browser fixtures)
from tests.browser import draw_polygon, login, open_annotate, show_region, wait_saved
from tests.conftest import SLIDE_FILE
from tests.live import PrivatePostgres, daphne, seed, server_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORLD = f"""
from pathlib import Path
from django.contrib.auth import get_user_model
from apps.accounts.models import Role
from apps.accounts.services import add_member, create_project
from apps.slides import services
User = get_user_model()
owner = User.objects.create_user("owner", password="owner-pass-123")
member = User.objects.create_user("member", password="member-pass-123")
project = create_project(name="Marrow study", created_by=owner)
add_member(project=project, user=member, role=Role.ANNOTATOR)
intake = services.register_path(project=project, path=Path({str(SLIDE_FILE)!r}), user=owner)
services.ingest(intake.slide.pk)
print(json.dumps({{"slide": intake.slide.pk}}))
"""


def hexagon(cx: float, cy: float) -> list[tuple[float, float]]:
    return [
        (cx, cy - 40),
        (cx + 35, cy - 20),
        (cx + 35, cy + 20),
        (cx, cy + 40),
        (cx - 35, cy + 20),
        (cx - 35, cy - 20),
    ]


@pytest.fixture
def server(tmp_path):
    pg = PrivatePostgres()
    try:
        pg.start()
        # DEBUG serves the built front end from frontend/dist without a collectstatic.
        env = server_env(tmp_path, DATABASE_URL=pg.url, DEBUG="true")
        world = seed(env, WORLD)
        with daphne(env, tmp_path / "daphne.log") as url:
            yield SimpleNamespace(url=url, pg=pg, **world)
    finally:
        pg.close()


def saved_cells(pg: PrivatePostgres) -> list[tuple[str, str]]:
    """(label, geometry as text) of every live annotation, in creation order."""
    with psycopg.connect(pg.url) as conn:
        rows = conn.execute(
            "select label, geometry::text from annotations_annotation "
            "where not is_deleted order by id"
        ).fetchall()
    return [(label, geometry) for label, geometry in rows]


def test_cells_drawn_while_postgres_restarts_are_saved_once_it_is_back(new_page, server):
    page = new_page()
    login(page, server, "member", "member-pass-123")
    open_annotate(page, server, server.slide, "cell")
    show_region(page, 800, 1000, 500, 500)
    draw_polygon(page, hexagon(900, 1100))
    wait_saved(page)
    assert len(saved_cells(server.pg)) == 1

    server.pg.stop()
    draw_polygon(page, hexagon(1050, 1100))
    draw_polygon(page, hexagon(1050, 1250))
    page.keyboard.press("l")  # the last one is a lymphocyte, also while the database is down
    page.wait_for_selector("[data-testid=save-indicator][data-state=retrying]", timeout=30_000)
    assert len(page.evaluate("() => Object.keys(localStorage)")) == 1  # kept across a reload
    server.pg.start()

    # The backoff timer may retry first; otherwise the button does it now.
    page.evaluate("() => document.querySelector('[data-testid=retry-now]:not([hidden])')?.click()")
    wait_saved(page, timeout=90_000)
    cells = saved_cells(server.pg)
    assert len(cells) == 3, cells
    assert len({geometry for _, geometry in cells}) == 3  # nothing saved twice
    assert cells[-1][0] == "lymphocyte"
    assert page.evaluate("() => Object.keys(localStorage).length") == 0
