"""Annotation test helpers. The cast and the slide come from tests/conftest.py: ``member`` is
annotator A, ``partner`` annotator B, ``owner`` the project admin, ``reviewer`` the signing
pathologist, and ``slide`` the real Aperio file cmu-1-small-region.svs (2220 x 2967 px).
"""

from __future__ import annotations

import math

import pytest


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
