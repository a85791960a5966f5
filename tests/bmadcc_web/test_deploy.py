"""`manage.py check --deploy` is clean with production settings, and each protection it checks
is really in the answers: HSTS, secure HttpOnly cookies, the proxy's HTTPS header, the CSP."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.conftest import REPO


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "HTTPS"))}
    return env | {
        "DJANGO_SETTINGS_MODULE": "bmadcc_web.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "HTTPS": "true",
        "BEHIND_PROXY": "true",
        "ALLOWED_HOSTS": "bmadcc.example.org",
        "BMADCC_VAR_DIR": str(tmp_path),
        **extra,
    }


def _check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _check(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_without_https(tmp_path):
    result = _check(production_env(tmp_path, HTTPS="false"))
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stderr


@pytest.mark.django_db
def test_production_answers_carry_hsts_secure_cookies_and_the_csp(client, member, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/login/").status_code == 301  # plain HTTP goes to HTTPS
    response = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200  # the proxy said HTTPS
    assert response["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy
    client.force_login(member)
    page = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    cookie = page.cookies["sessionid"]
    assert cookie["secure"] and cookie["httponly"]
