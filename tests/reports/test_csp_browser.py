"""Every page works under the Content-Security-Policy: no violation on any of them.

tests/browser.py fails every browser test on a CSP violation; this one walks the pages a
lab uses in one sitting (viewer, workspace, gallery, agreement, adjudication, report with its
review gallery, counter, API docs) and checks the header is there.
"""

from __future__ import annotations

import pytest

from tests.browser import *  # noqa: F403
from tests.browser import csp_violations, login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_every_page_works_under_the_csp(browser_page, live_server, owner, finished_run):
    page = browser_page
    slide, project = finished_run.slide, finished_run.slide.project
    login(page, live_server, "owner", "owner-pass-123")
    pages = {
        "/": "main",
        f"/slides/{slide.pk}/view/": "#viewer .openseadragon-canvas",
        f"/slides/{slide.pk}/annotate/?stage=cell": "#annotate[data-state=ready]",
        f"/slides/{slide.pk}/gallery/": "main",
        f"/slides/{slide.pk}/agreement/": "main",
        f"/slides/{slide.pk}/adjudicate/": "main",
        f"/projects/{project.pk}/agreement/": "main",
        f"/analyses/{finished_run.pk}/report/": "#review .remaining",
        f"/slides/{slide.pk}/manual-count/": "main",
        "/api/docs/": ".swagger-ui .info",
    }
    for path, ready in pages.items():
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "object-src 'none'" in policy, path
        page.wait_for_selector(ready, timeout=30_000)
        page.wait_for_load_state("networkidle")
        assert csp_violations(page) == [], path
