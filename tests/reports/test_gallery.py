"""The review gallery's pages on a real run: one sprite sheet of crops per page, the same
square as the annotation crop with the outline drawn, ETagged by the cells' versions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.reports.conftest import report_url

pytestmark = pytest.mark.django_db


def first_page(client, run) -> dict:
    return client.get(report_url(run, "cells/")).json()


def sheet_of(client, run, body) -> Image.Image:
    query = {"group": body["group"], "page": body["page"], "v": body["sprite"]["key"]}
    response = client.get(report_url(run, "cells/sprite.jpeg"), query)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["ETag"] == f'"{body["sprite"]["key"]}"'
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def test_a_page_sends_its_crops_as_one_sheet_each_the_annotation_crop_outlined(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    body = first_page(client, finished_run)
    tile, columns = body["sprite"]["tile"], body["sprite"]["columns"]
    sheet = sheet_of(client, finished_run, body)
    rows = -(-len(body["cells"]) // columns)
    assert sheet.size == (columns * tile, rows * tile)
    for i, cell in enumerate(body["cells"][:5]):
        x, y = cell["at"]
        assert (x, y) == (i % columns * tile, i // columns * tile)
        crop = np.asarray(sheet.crop((x, y, x + tile, y + tile)), np.int16)
        alone = client.get(f"/api/annotations/{cell['id']}/crop.jpeg?size={tile}")
        plain = np.asarray(Image.open(io.BytesIO(alone.content)).convert("RGB"), np.int16)
        # The same square of the slide, but for the outline drawn over it (cyan).
        diff = np.abs(crop - plain).max(axis=2)
        assert np.median(diff) < 12
        cyan = (crop[..., 1] + crop[..., 2]) / 2 - crop[..., 0] > 100
        assert 0.01 < cyan.mean() < 0.25 and 0.01 < (diff > 40).mean() < 0.25
        x0, y0, x1, y1 = cell["box"]
        assert x1 > x0 and y1 > y0


def test_the_sheet_is_etagged_and_a_changed_page_gets_a_new_key(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    body = first_page(client, finished_run)
    key = body["sprite"]["key"]
    query = {"group": body["group"], "page": 1, "v": key}
    again = client.get(
        report_url(finished_run, "cells/sprite.jpeg"), query, HTTP_IF_NONE_MATCH=f'"{key}"'
    )
    assert again.status_code == 304
    cell = body["cells"][0]
    new = "monocyte" if cell["label"] != "monocyte" else "lymphocyte"
    client.post(
        report_url(finished_run, f"cells/{cell['id']}/reclassify/"),
        {"label": new, "version": cell["version"]},
        format="json",
    )
    changed = first_page(client, finished_run)
    assert changed["sprite"]["key"] != key
    assert [c["id"] for c in changed["cells"]] == [c["id"] for c in body["cells"]]
    # A sheet asked for without a known key is the page's current one.
    fresh = client.get(report_url(finished_run, "cells/sprite.jpeg"), {"group": body["group"]})
    assert fresh["ETag"] == f'"{changed["sprite"]["key"]}"'


def test_later_pages_list_the_rest_of_the_group(finished_run, reviewer, as_user) -> None:
    client = as_user(reviewer)
    body = first_page(client, finished_run)
    group = next(g for g in body["groups"] if g["key"] == body["group"])
    seen = [c["id"] for c in body["cells"]]
    for page in range(2, body["pages"] + 1):
        more = client.get(
            report_url(finished_run, "cells/"), {"group": body["group"], "page": page}
        )
        seen += [c["id"] for c in more.json()["cells"]]
    assert len(seen) == len(set(seen)) == group["count"]


def test_outsiders_get_404_on_the_sheet(finished_run, outsider, as_user) -> None:
    assert as_user(outsider).get(report_url(finished_run, "cells/sprite.jpeg")).status_code == 404
