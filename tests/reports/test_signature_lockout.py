"""Repeated wrong signature passwords lock the user's signing for a while; each attempt is
audited (21 CFR Part 11 §11.300(d))."""

from __future__ import annotations

import pytest

from apps.reports.models import AuditEntry
from tests.reports.conftest import REVIEWER_PASSWORD, report_url
from tests.reports.test_api import review_all

pytestmark = pytest.mark.django_db


def _reasons(run) -> list[str]:
    return [
        e.detail.get("reason")
        for e in AuditEntry.objects.filter(report__run=run, action="sign_failed").order_by("id")
    ]


def test_three_wrong_passwords_lock_signing_even_with_the_right_one(
    finished_run, reviewer, as_user, settings
) -> None:
    settings.SIGN_FAILURE_LIMIT, settings.SIGN_LOCKOUT_MINUTES = 3, 30
    client = as_user(reviewer)
    review_all(client, finished_run)
    details = [
        client.post(report_url(finished_run, "sign/"), {"password": f"guess-{i}"}).json()
        for i in range(3)
    ]
    assert details[0]["detail"].endswith("(2 attempts left)")
    assert details[2]["detail"].endswith("signing is locked for 30 min")
    locked = client.post(report_url(finished_run, "sign/"), {"password": REVIEWER_PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("signing is locked after 3 wrong passwords")
    assert locked.json()["minutes"] == 30
    assert client.get(report_url(finished_run)).json()["signature"] is None
    assert _reasons(finished_run) == ["wrong password"] * 3 + ["locked out"]


def test_signing_opens_again_once_the_window_has_passed(
    finished_run, reviewer, as_user, settings
) -> None:
    settings.SIGN_FAILURE_LIMIT = 1
    client = as_user(reviewer)
    review_all(client, finished_run)
    assert client.post(report_url(finished_run, "sign/"), {"password": "x"}).status_code == 403
    right = {"password": REVIEWER_PASSWORD}
    assert client.post(report_url(finished_run, "sign/"), right).status_code == 429
    settings.SIGN_LOCKOUT_MINUTES = 0  # the failure is now older than the window
    response = client.post(report_url(finished_run, "sign/"), right)
    assert response.status_code == 200, response.content
    assert response.json()["signature"] is not None
