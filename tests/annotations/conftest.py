"""Annotation fixtures: a real slide, two annotators of one project, a reviewer.

``member`` (from tests/conftest.py) is annotator A; ``partner`` is annotator B; ``owner`` is
the project admin. The slide is the real Aperio file cmu-1-small-region.svs (2220 x 2967 px).
"""

from __future__ import annotations

import math

import pytest

from tests.conftest import SLIDES_DIR

SLIDE_FILE = SLIDES_DIR / "cmu-1-small-region.svs"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Users are created in every test here; PBKDF2's deliberate slowness buys nothing in them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def partner(django_user_model, project):
    from apps.accounts.models import Role
    from apps.accounts.services import add_member

    user = django_user_model.objects.create_user("partner", password="partner-pass-123")
    add_member(project=project, user=user, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def reviewer(django_user_model, project):
    from apps.accounts.models import Role
    from apps.accounts.services import add_member

    user = django_user_model.objects.create_user("reviewer", password="reviewer-pass-123")
    add_member(project=project, user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def slide(ingest_path):
    slide = ingest_path(SLIDE_FILE)
    assert slide.status == "ready", slide.error
    return slide


@pytest.fixture
def as_user():
    """A fresh API client authenticated as ``user`` (one client per person, as in a browser)."""
    from rest_framework.test import APIClient

    def _as(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return _as


def polygon(cx: float, cy: float, r: float = 40.0, n: int = 24) -> dict:
    """A closed regular ``n``-gon of radius ``r`` around (cx, cy), level-0 px."""
    ring = [
        [
            round(cx + r * math.cos(2 * math.pi * i / n), 3),
            round(cy + r * math.sin(2 * math.pi * i / n), 3),
        ]
        for i in range(n)
    ]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def own_set(api, slide, stage: str) -> int:
    response = api.post("/api/annotation-sets/", {"slide": slide.pk, "stage": stage}, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()["id"]


def add_cell(api, set_id: int, cx: float, cy: float, label: str = "myeloblast") -> dict:
    response = api.post(
        "/api/annotations/",
        {"set": set_id, "geometry": polygon(cx, cy), "label": label},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()
