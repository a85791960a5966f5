"""Oversized annotation requests get a 4xx that says why, and never cost the server its memory.

The body-size limit itself (a 100 MB JSON body, under daphne and WSGI) is tested in
tests/bmadcc_web/test_body_limit.py.
"""

from __future__ import annotations

import io
import time

import orjson
import pytest
from PIL import Image

from apps.annotations.models import Annotation
from apps.annotations.validation import MAX_VERTICES
from tests.annotations.conftest import own_set
from tests.slides.crafted import tiled_tiff

pytestmark = pytest.mark.django_db


def square(x: float, y: float, side: float = 4.0) -> dict:
    ring = [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_a_bulk_save_of_50000_cells_is_refused_whole_with_the_limit(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    items = [
        {"geometry": square(5 * (i % 400), 5 * (i // 400)), "label": "lymphocyte"}
        for i in range(50_000)
    ]
    body = orjson.dumps({"set": set_id, "items": items})
    assert len(body) < 16 * 1024 * 1024  # small cells: under the body limit, so the count decides
    started = time.monotonic()
    response = api.post("/api/annotations/bulk/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == "at most 5000 items per request, got 50000"
    assert time.monotonic() - started < 10  # refused by the count, before any item is checked
    assert not Annotation.objects.exists()


def test_a_bulk_save_of_50000_full_cells_is_refused_by_its_size(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    cell = {"type": "Polygon", "coordinates": [[[100.123, 200.456]] * 60]}
    body = orjson.dumps({"set": set_id, "items": [{"geometry": cell}] * 50_000})
    response = api.post("/api/annotations/bulk/", body, content_type="application/json")
    assert response.status_code == 413
    assert (
        "over the 16,777,216 byte limit (DATA_UPLOAD_MAX_MEMORY_SIZE)" in response.json()["detail"]
    )


def test_a_polygon_of_a_million_vertices_is_refused_with_the_vertex_limit(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "roi")
    # Integer vertices keep the million under the body limit, so the vertex count decides.
    ring = [[1000 + i % 500, 1000 + i % 2] for i in range(1_000_000)] + [[1000, 1000]]
    body = orjson.dumps({"set": set_id, "geometry": {"type": "Polygon", "coordinates": [ring]}})
    assert len(body) < 16 * 1024 * 1024
    started = time.monotonic()
    response = api.post("/api/annotations/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert f"at most {MAX_VERTICES}" in str(response.json()), response.json()
    assert time.monotonic() - started < 10
    assert not Annotation.objects.exists()


@pytest.fixture
def slide_100k(ingest_path, tmp_path):
    """A 100,000 px square slide with one reduced level (4096 px), crafted to a few MB."""
    path = tiled_tiff(tmp_path / "huge.tiff", [(100_000, 100_000), (4096, 4096)])
    slide = ingest_path(path)
    assert slide.status == "ready", slide.error
    return slide


def test_a_crop_of_a_100k_px_region_reads_a_coarse_level_and_a_huge_size_is_400(
    as_user, owner, slide_100k
):
    api = as_user(owner)
    set_id = own_set(api, slide_100k, "roi")
    whole = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [100_000, 0], [100_000, 100_000], [0, 100_000], [0, 0]]],
    }
    created = api.post("/api/annotations/", {"set": set_id, "geometry": whole}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    refused = api.get(f"/api/annotations/{pk}/crop.jpeg?size=100000")
    assert refused.status_code == 400
    assert "512" in str(refused.json()["size"])
    started = time.monotonic()
    crop = api.get(f"/api/annotations/{pk}/crop.jpeg?size=512")
    assert crop.status_code == 200
    assert Image.open(io.BytesIO(crop.content)).size == (512, 512)
    assert time.monotonic() - started < 20


def test_a_level_0_read_of_100k_px_is_refused_before_decoding(slide_100k):
    from ml.slide import SlideReader, SlideReadError

    with (
        SlideReader(slide_100k.viewable_file) as reader,
        pytest.raises(SlideReadError, match="more than the 67,108,864 px read at once"),
    ):
        reader.read_region((0, 0), 0, (100_000, 100_000))
