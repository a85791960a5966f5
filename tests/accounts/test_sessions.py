"""Accounts and sessions (21 CFR Part 11 §11.300): login lockout with an audit row for every
failure, password validators, and sessions that end after an idle time."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth import password_validation
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError

from apps.accounts.sessions import RENEW_EVERY

pytestmark = pytest.mark.django_db


def _log_in(client, username: str, password: str):
    return client.post("/login/", {"username": username, "password": password})


def test_five_failed_logins_lock_the_account_even_for_the_right_password(client, member):
    for _ in range(4):
        assert _log_in(client, "member", "not-the-password").status_code == 200
    assert _log_in(client, "member", "not-the-password").status_code == 429  # the fifth
    locked = _log_in(client, "member", "member-pass-123")
    assert locked.status_code == 429
    assert b"Account locked" in locked.content
    assert "_auth_user_id" not in client.session
    # Every failure has its audit row, with where it came from.
    failures = AccessFailureLog.objects.filter(username="member")
    assert failures.count() >= 5 and failures.first().ip_address == "127.0.0.1"
    assert AccessAttempt.objects.get(username="member").failures_since_start >= 5


def test_a_success_before_the_limit_resets_the_count(client, member):
    for _ in range(4):
        _log_in(client, "member", "nope")
    assert _log_in(client, "member", "member-pass-123").status_code == 302
    client.logout()
    for _ in range(4):
        _log_in(client, "member", "nope")
    assert _log_in(client, "member", "member-pass-123").status_code == 302


def test_the_admin_login_is_locked_out_too(client, django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 2
    django_user_model.objects.create_superuser("root", password="root-pass-123456")
    for _ in range(2):
        client.post("/admin/login/", {"username": "root", "password": "x"})
    response = client.post("/admin/login/", {"username": "root", "password": "root-pass-123456"})
    assert response.status_code == 429


@pytest.mark.parametrize(
    "password, reason",
    [
        ("short-1", "too short"),
        ("password123456", "too common"),
        ("83920174650192", "entirely numeric"),
        ("rosalind.pathologist", "too similar to the email address"),
    ],
)
def test_weak_passwords_are_refused(member, password, reason):
    member.email = "rosalind.pathologist@example.org"
    with pytest.raises(ValidationError, match=reason):
        password_validation.validate_password(password, member)


def test_a_good_password_passes(member):
    password_validation.validate_password("marrow smear at 100x oil", member)


def _expiry(key: str):
    return Session.objects.get(session_key=key).expire_date


def test_a_session_ends_after_the_idle_time_and_use_renews_it(client, member, settings):
    client.force_login(member)
    key = client.session.session_key
    assert client.get("/").status_code == 200  # the first use stamps the session
    first = _expiry(key)
    # The cookie and the row carry the idle time, not Django's two weeks.
    assert client.cookies["sessionid"]["max-age"] == settings.SESSION_COOKIE_AGE == 30 * 60
    assert client.get("/").status_code == 200
    assert _expiry(key) == first  # used again within the minute: no write
    session = client.session
    session["_renewed_at"] -= RENEW_EVERY  # as if that use was a minute ago
    session.save()
    assert client.get("/").status_code == 200
    assert _expiry(key) > first  # renewed from now
    Session.objects.filter(session_key=key).update(expire_date=first.replace(year=2000))
    response = client.get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]
