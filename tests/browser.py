"""Shared helpers for browser tests: Debian chromium driven by Playwright's sync API.

Use from a test module (the star import brings the fixtures; pytest finds them by name)::

    from tests.browser import *  # noqa: F403
    from tests.browser import login

    pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

    def test_something(browser_page, live_server, owner):
        login(browser_page, live_server, "owner", "owner-pass-123")

``browser_page`` is a fresh page (its own context: cookies, localStorage) of a 1400 x 900
window; errors thrown by the page's scripts fail the test at teardown, so a broken bundle
cannot pass unnoticed. ``new_page(browser_context_factory)`` gives a second person their own
window in the same test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
__all__ = ["browser_page", "chromium", "new_page"]  # the fixtures; import helpers by name
REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "frontend" / "dist" / "bmadcc"


@pytest.fixture(scope="module")
def chromium():
    """One chromium per test module; each test gets new contexts.

    Module scope, not session: modules that import these fixtures each own a copy, and
    Playwright's sync API allows one running instance per thread.
    """
    if not CHROMIUM.exists():
        # A failure, not a skip: CI must never pass with its browser tests silently missing.
        pytest.fail(
            "Debian chromium is not installed: scripts/test.sh installs it (apt-get install chromium)"
        )
    if not (BUNDLE / "annotate.js").exists():
        pytest.fail("the front end is not built: run `npm run build` in frontend/")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in the test thread for the whole module, and the
    # tests still use Django's ORM synchronously there. Allow that only while chromium runs:
    # every other test keeps Django's guard, so a sync ORM call slipped into async code (the
    # ASGI tile path) fails there as it would under daphne.
    with pytest.MonkeyPatch.context() as env, sync_playwright() as pw:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium) -> Iterator[Callable]:
    """A factory of pages, each in its own browser context (one per person)."""
    contexts = []
    errors: list[str] = []

    def _new():
        context = chromium.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        # The Content-Security-Policy is on in every browser test: anything it blocks (an
        # inline script or style, a foreign host) is logged by chromium and fails the test.
        page.on("console", lambda m: _csp_violation(m.text) and errors.append(m.text))
        page.add_init_script(CSP_LISTENER)
        return page

    yield _new
    for context in contexts:
        context.close()
    assert not errors, f"the page threw: {errors}"


#: Also record each violation event, so a test can ask the page itself (``csp_violations``).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
  window.__cspSamples = (window.__cspSamples || []).concat([e.sample]);
  console.error(
    `Content Security Policy violation on ${location.pathname}: ${e.violatedDirective} ` +
      `${e.blockedURI} ${e.sourceFile || ""}:${e.lineNumber || ""}`,
  );
});
"""


def _csp_violation(text: str) -> bool:
    return "Content Security Policy" in text


def csp_violations(page) -> list[str]:
    """The CSP violations this page has seen since it loaded."""
    return page.evaluate("window.__cspViolations || []")


@pytest.fixture
def browser_page(new_page, live_server):
    """A page ready to visit ``live_server``."""
    return new_page()


def login(page, live_server, username: str, password: str) -> None:
    """Log in through the login form; the page ends on the slide list."""
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


# -- the annotation workspace (/slides/<id>/annotate/) ----------------------------------------
def open_annotate(page, live_server, slide_id: int, stage: str) -> None:
    """Open one stage of the workspace and wait until its data is loaded."""
    page.goto(f"{live_server.url}/slides/{slide_id}/annotate/?stage={stage}")
    page.wait_for_selector("#annotate[data-state=ready]", timeout=30_000)


def slide_to_page(page, x: float, y: float) -> tuple[float, float]:
    """Level-0 slide px -> page px, through the viewer's current view."""
    px, py = page.evaluate(
        """([x, y]) => {
            const app = window.bmadccAnnotate;
            const viewer = app.parts.viewer;
            const p = viewer.viewport.imageToViewerElementCoordinates(new app.OpenSeadragon.Point(x, y));
            const r = viewer.element.getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""",
        [x, y],
    )
    return px, py


def show_region(page, x: float, y: float, w: float, h: float) -> None:
    """Fit the level-0 rectangle (x, y, w, h) in the viewer, without animation."""
    page.evaluate(
        """([x, y, w, h]) => {
            const viewer = window.bmadccAnnotate.parts.viewer;
            const rect = viewer.world.getItemAt(0).imageToViewportRectangle(x, y, w, h);
            viewer.viewport.fitBounds(rect, true);
        }""",
        [x, y, w, h],
    )


def click_slide(page, x: float, y: float) -> None:
    """A click at level-0 (x, y); clicks are spaced past OpenSeadragon's 300 ms double-click."""
    page.mouse.click(*slide_to_page(page, x, y))
    page.wait_for_timeout(320)


def draw_polygon(page, ring) -> None:
    """Draw tool (d), one click per vertex (level-0 px), Enter closes."""
    page.keyboard.press("d")
    for x, y in ring:
        click_slide(page, x, y)
    page.keyboard.press("Enter")


def wait_saved(page, timeout: int = 20_000) -> None:
    """Until the save indicator says nothing is unsaved."""
    page.wait_for_selector(
        "[data-testid=save-indicator][data-state=saved][data-pending='0']", timeout=timeout
    )
