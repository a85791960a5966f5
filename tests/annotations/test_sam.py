"""SAM assist through model cards: the real LiteMedSAM card outlines the cell at a click; no card
means 503 with the install command; a damaged weights file is reported, never used."""

from __future__ import annotations

import pytest
from shapely.geometry import Point, shape

from apps.annotations import sam
from apps.annotations.validation import clean_polygon
from ml.zoo import install_lite_medsam

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_sam(settings, tmp_path):
    """An empty model directory, and no model loaded in this process."""
    settings.MODEL_DIR = tmp_path / "models"
    sam.forget()
    yield settings.MODEL_DIR
    sam.forget()


@pytest.fixture
def lite_medsam(no_sam):
    """The LiteMedSAM card, installed as setup installs it."""
    return install_lite_medsam(no_sam)


def _click(api, slide, x, y):
    return api.post(f"/api/slides/{slide.pk}/sam/", {"x": x, "y": y}, format="json")


def test_without_a_card_the_endpoint_says_how_to_install_one(as_user, member, slide, no_sam):
    api = as_user(member)
    response = _click(api, slide, 1100, 1500)
    assert response.status_code == 503
    body = response.json()
    assert body["installed"] is False
    assert "install-models" in body["detail"] and str(no_sam) in body["detail"]
    assert api.get("/api/sam/status/").json() == {"installed": False, "model": None}


def test_a_card_whose_weights_fail_their_sha256_is_reported_not_used(
    as_user, member, slide, no_sam, tmp_path
):
    import json

    from ml.zoo import lite_medsam_card, lite_medsam_weights

    damaged = tmp_path / "lite_medsam.pth"
    data = bytearray(lite_medsam_weights().read_bytes())
    data[1000:1010] = bytes(10)
    damaged.write_bytes(bytes(data))
    card = lite_medsam_card() | {"weights": str(damaged)}
    no_sam.mkdir(parents=True)
    (no_sam / "lite.json").write_text(json.dumps(card))
    api = as_user(member)
    assert api.get("/api/sam/status/").json() == {"installed": True, "model": card["name"]}
    response = _click(api, slide, 1100, 1500)
    detail = response.json()["detail"]
    assert response.status_code == 503 and "cannot be loaded" in detail
    assert "lite.json" in detail and "weights_sha256" in detail


@pytest.mark.slow
def test_lite_medsam_outlines_the_nucleus_under_the_click(as_user, member, slide, lite_medsam):
    api = as_user(member)
    assert api.get("/api/sam/status/").json() == {"installed": True, "model": lite_medsam.name}
    response = _click(api, slide, 1100, 1500)
    assert response.status_code == 200, response.content
    body = response.json()
    clean = clean_polygon(body["polygon"], width=slide.width, height=slide.height)
    outline = shape(clean.geometry)
    assert outline.distance(Point(1100, 1500)) <= 4.0
    # A cell of a 0.5 µm/px slide: a few µm across, inside the 48 µm window embedded around it.
    side = sam.get_assist().assist.window_px(0.499)
    assert clean.min_x >= 1100 - side and clean.max_x <= 1100 + side
    assert 20 <= outline.area <= (side / 2) ** 2
    assert 0.0 <= body["score"] <= 1.5 and body["cached"] is False


@pytest.mark.slow
def test_a_nearby_click_reuses_the_cached_embedding(as_user, member, slide, lite_medsam):
    api = as_user(member)
    assert _click(api, slide, 1100, 1500).json()["cached"] is False
    assert _click(api, slide, 1110, 1490).json()["cached"] is True
    assert _click(api, slide, 200, 200).json()["cached"] is False  # far away: a new region


def test_a_click_outside_the_slide_is_refused(as_user, member, slide, lite_medsam):
    response = _click(as_user(member), slide, 5000, 100)
    assert response.status_code == 422 and "outside the slide" in response.json()["detail"]


def test_region_around_stays_inside_the_slide():
    assert sam.region_around(10, 10, (2220, 2967), 1024) == (0, 0, 1024, 1024)
    assert sam.region_around(2200, 2900, (2220, 2967), 1024) == (1196, 1943, 1024, 1024)
    assert sam.region_around(50, 50, (600, 400), 1024) == (0, 0, 600, 400)
