"""SAM assist: a tiny randomly initialised SAM proves the real path; no checkpoint means 503."""

from __future__ import annotations

import pytest
import torch
from shapely.geometry import Point, shape

from apps.annotations import sam
from apps.annotations.validation import clean_polygon
from ml.models.sam import build_sam_tiny

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_sam(settings, tmp_path):
    """An empty model directory, and no model installed in this process."""
    settings.MODEL_DIR = tmp_path / "models"
    sam.use_model(None)
    yield settings.MODEL_DIR
    sam.use_model(None)


@pytest.fixture
def tiny_sam(no_sam):
    torch.manual_seed(2)  # a seed whose random SAM outlines a compact region at the click
    sam.use_model(build_sam_tiny(), name="sam_tiny (random)")
    return sam


def _click(api, slide, x, y):
    return api.post(f"/api/slides/{slide.pk}/sam/", {"x": x, "y": y}, format="json")


def test_without_a_checkpoint_the_endpoint_says_how_to_install_one(as_user, member, slide, no_sam):
    api = as_user(member)
    response = _click(api, slide, 1100, 1500)
    assert response.status_code == 503
    body = response.json()
    assert body["installed"] is False
    assert "sam_vit_b_01ec64.pth" in body["detail"] and str(no_sam / "sam") in body["detail"]
    assert api.get("/api/sam/status/").json() == {"installed": False, "model": None}


def test_a_damaged_official_checkpoint_is_reported_not_used(as_user, member, slide, no_sam):
    (no_sam / "sam").mkdir(parents=True)
    (no_sam / "sam" / "sam_vit_b_01ec64.pth").write_bytes(b"not a checkpoint")
    api = as_user(member)
    assert api.get("/api/sam/status/").json() == {
        "installed": True,
        "model": "sam_vit_b_01ec64.pth",
    }
    response = _click(api, slide, 1100, 1500)
    assert response.status_code == 503 and "cannot be loaded" in response.json()["detail"]


def test_tiny_sam_returns_a_valid_polygon_at_the_click(as_user, member, slide, tiny_sam):
    api = as_user(member)
    response = _click(api, slide, 1100, 1500)
    assert response.status_code == 200, response.content
    body = response.json()
    clean = clean_polygon(body["polygon"], width=slide.width, height=slide.height)
    assert shape(clean.geometry).distance(Point(1100, 1500)) <= 2.0
    # The proposal lies in the 1024 px region embedded around the click.
    assert clean.min_x >= 1100 - 512 and clean.max_x <= 1100 + 512
    assert clean.min_y >= 1500 - 512 and clean.max_y <= 1500 + 512
    assert 0.0 <= body["score"] <= 1.5 and body["cached"] is False
    assert api.get("/api/sam/status/").json() == {"installed": True, "model": "sam_tiny (random)"}


def test_a_nearby_click_reuses_the_cached_embedding(as_user, member, slide, tiny_sam):
    api = as_user(member)
    assert _click(api, slide, 1100, 1500).json()["cached"] is False
    assert _click(api, slide, 1180, 1450).json()["cached"] is True
    assert _click(api, slide, 200, 200).json()["cached"] is False  # far away: a new region


def test_a_click_outside_the_slide_is_refused(as_user, member, slide, tiny_sam):
    response = _click(as_user(member), slide, 5000, 100)
    assert response.status_code == 422 and "outside the slide" in response.json()["detail"]


def test_region_around_stays_inside_the_slide():
    assert sam.region_around(10, 10, (2220, 2967)) == (0, 0, 1024, 1024)
    assert sam.region_around(2200, 2900, (2220, 2967)) == (1196, 1943, 1024, 1024)
    assert sam.region_around(50, 50, (600, 400)) == (0, 0, 600, 400)
