"""A report job followed by the slide page in a real browser (Debian chromium, Playwright)."""

from __future__ import annotations

import pytest

from apps.agreement import services
from apps.agreement.models import AgreementJob, JobKind
from tests.browser import *  # noqa: F403
from tests.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_slide_page_follows_a_report_job_and_shows_the_figures_when_it_ends(
    browser_page, live_server, cell_study, member
):
    # The row as a request leaves it for the worker (here the worker is this test).
    job = AgreementJob.objects.create(
        slide=cell_study, stage="cell", kind=JobKind.REPORT, requested_by=member
    )
    page = browser_page
    login(page, live_server, "member", "member-pass-123")
    page.goto(f"{live_server.url}/slides/{cell_study.pk}/agreement/")
    waiting = page.locator("#stage-cell [data-job-status=queued]")
    waiting.wait_for(timeout=20_000)
    assert "Queued" in waiting.inner_text()
    assert page.locator("#stage-cell button", has_text="Compute the figures").count() == 0
    assert services.run_job(job.pk).status == "done"
    # jobs.js sees the job end and reloads the page, which now shows the stored report.
    page.wait_for_selector("#stage-cell h3:has-text('member (A) vs partner (B)')", timeout=20_000)
    assert page.locator("#stage-cell [data-job-url]").count() == 0
