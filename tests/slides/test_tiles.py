"""Deep zoom: the DZI and tiles agree with openslide.deepzoom, bad requests get 404, scoping holds."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import openslide
import pytest
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image

from apps.slides import deepzoom
from tests.conftest import SLIDES_DIR

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("orm_async_checks")]


@pytest.fixture
def cmu(ingest_path):
    return ingest_path(SLIDES_DIR / "cmu-1-small-region.svs")


@pytest.fixture
def reference():
    with openslide.OpenSlide(str(SLIDES_DIR / "cmu-1-small-region.svs")) as osr:
        yield DeepZoomGenerator(osr, tile_size=254, overlap=1)


def test_dzi_descriptor_matches_openslide_deepzoom(client, owner, cmu, reference):
    client.force_login(owner)
    response = client.get(f"/slides/{cmu.pk}.dzi")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    ours, theirs = ET.fromstring(response.content), ET.fromstring(reference.get_dzi("jpeg"))
    assert ours.attrib == theirs.attrib
    assert ours[0].attrib == theirs[0].attrib == {"Width": "2220", "Height": "2967"}


@pytest.mark.parametrize("level_from_top", [0, 1, 3, 6])
def test_tiles_decode_as_jpeg_of_the_reference_size(client, owner, cmu, reference, level_from_top):
    client.force_login(owner)
    level = reference.level_count - 1 - level_from_top
    cols, rows = reference.level_tiles[level]
    for col, row in {(0, 0), (cols - 1, rows - 1), (cols // 2, rows // 2)}:
        response = client.get(f"/slides/{cmu.pk}_files/{level}/{col}_{row}.jpeg")
        assert response.status_code == 200
        image = Image.open(io.BytesIO(response.content))
        assert image.format == "JPEG"
        assert image.size == reference.get_tile_dimensions(level, (col, row))


def test_tile_pixels_match_the_reference_tile(client, owner, cmu, reference):
    client.force_login(owner)
    level = reference.level_count - 1
    response = client.get(f"/slides/{cmu.pk}_files/{level}/3_4.jpeg")
    ours = Image.open(io.BytesIO(response.content)).convert("RGB")
    buf = io.BytesIO()
    reference.get_tile(level, (3, 4)).convert("RGB").save(
        buf, "JPEG", quality=deepzoom.JPEG_QUALITY
    )
    theirs = Image.open(buf).convert("RGB")
    diff = sum(abs(a - b) for a, b in zip(ours.tobytes(), theirs.tobytes(), strict=True))
    assert diff / len(ours.tobytes()) < 0.5


@pytest.mark.parametrize(
    "path",
    ["99/0_0.jpeg", "12/999_0.jpeg", "12/0_999.jpeg", "-1/0_0.jpeg", "12/0_0.png"],
)
def test_out_of_range_tiles_are_404_not_500(client, owner, cmu, path):
    client.force_login(owner)
    assert client.get(f"/slides/{cmu.pk}_files/{path}").status_code == 404


def test_outsider_gets_404_for_dzi_tiles_and_api(client, outsider, cmu):
    client.force_login(outsider)
    assert client.get(f"/slides/{cmu.pk}.dzi").status_code == 404
    assert client.get(f"/slides/{cmu.pk}_files/12/0_0.jpeg").status_code == 404
    assert client.get(f"/api/slides/{cmu.pk}/").status_code == 404
    assert client.get(f"/api/slides/{cmu.pk}/thumbnail/").status_code == 404
    assert client.get(f"/slides/{cmu.pk}/view/").status_code == 404


def test_anonymous_users_are_sent_to_log_in(client, cmu):
    response = client.get(f"/slides/{cmu.pk}_files/12/0_0.jpeg")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_tiles_carry_an_etag_and_answer_304_when_unchanged(client, owner, cmu):
    client.force_login(owner)
    first = client.get(f"/slides/{cmu.pk}_files/12/1_1.jpeg")
    assert "private" in first["Cache-Control"] and first["ETag"]
    again = client.get(f"/slides/{cmu.pk}_files/12/1_1.jpeg", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_second_request_for_a_tile_is_served_from_the_cache(client, owner, cmu, monkeypatch):
    client.force_login(owner)
    url = f"/slides/{cmu.pk}_files/12/2_2.jpeg"
    first = client.get(url).content
    monkeypatch.setattr(deepzoom.handles, "get", _fail_if_called)
    assert client.get(url).content == first


def test_failed_slide_has_no_tiles(client, owner, ingest_path):
    broken = ingest_path(SLIDES_DIR / "unreadable.svs")
    client.force_login(owner)
    assert client.get(f"/slides/{broken.pk}.dzi").status_code == 404
    detail = client.get(f"/api/slides/{broken.pk}/").json()
    assert detail["status"] == "failed" and "Bogus marker length" in detail["error"]


def test_handle_cache_keeps_at_most_its_capacity(demo_slide_file):
    cache = deepzoom.SlideHandleCache(capacity=2)
    paths = [SLIDES_DIR / "cmu-1-small-region.svs", SLIDES_DIR / "small.svs", demo_slide_file]
    for path in paths:
        cache.get(path)
    assert list(cache._items) == paths[1:]
    assert cache.get(paths[2]) is cache.get(paths[2])


def _fail_if_called(*args, **kwargs):
    raise AssertionError("the slide was opened although the tile was cached")
