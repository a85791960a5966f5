"""Fixtures for the slide tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def orm_async_checks(monkeypatch):
    """Django's guard against synchronous ORM calls inside an event loop, switched back on.

    The suite sets ``DJANGO_ALLOW_ASYNC_UNSAFE`` for the browser tests; the async tile paths
    must pass without it, as they run under daphne.
    """
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)
