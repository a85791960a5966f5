"""The TOI grid: the project's tile size, restricted to the caller's own ROI, labelled per tile."""

from __future__ import annotations

import pytest

from tests.annotations.conftest import own_set

pytestmark = pytest.mark.django_db

# cmu-1-small-region.svs is 2220 x 2967 px: a 2 x 2 grid of 1600 px tiles, edges clipped.


def _grid(api, slide):
    response = api.get(f"/api/slides/{slide.pk}/toi-grid/")
    assert response.status_code == 200, response.content
    return response.json()


def _square(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def test_without_an_roi_the_grid_covers_the_whole_slide(as_user, member, slide):
    grid = _grid(as_user(member), slide)
    assert grid["tile_size"] == 1600 and grid["restricted_to_roi"] is False
    assert [(t["col"], t["row"], t["x"], t["y"], t["w"], t["h"]) for t in grid["tiles"]] == [
        (0, 0, 0, 0, 1600, 1600),
        (1, 0, 1600, 0, 620, 1600),
        (0, 1, 0, 1600, 1600, 1367),
        (1, 1, 1600, 1600, 620, 1367),
    ]
    assert grid["counts"] == {"total": 4, "toi": 0, "non_toi": 0, "unlabelled": 4}


def test_grid_is_restricted_to_my_roi_not_my_partners(as_user, member, partner, slide):
    mine, theirs = as_user(member), as_user(partner)
    mine.post(
        "/api/annotations/",
        {"set": own_set(mine, slide, "roi"), "geometry": _square(100, 1700, 1500, 2900)},
        format="json",
    )
    theirs.post(
        "/api/annotations/",
        {"set": own_set(theirs, slide, "roi"), "geometry": _square(1700, 100, 2100, 500)},
        format="json",
    )
    grid = _grid(mine, slide)
    assert grid["restricted_to_roi"] is True
    assert [(t["col"], t["row"]) for t in grid["tiles"]] == [(0, 1)]
    assert [(t["col"], t["row"]) for t in _grid(theirs, slide)["tiles"]] == [(1, 0)]


def test_an_roi_touching_a_tile_edge_only_does_not_select_it(as_user, member, slide):
    api = as_user(member)
    api.post(
        "/api/annotations/",
        {"set": own_set(api, slide, "roi"), "geometry": _square(100, 100, 1600, 1600)},
        format="json",
    )
    assert [(t["col"], t["row"]) for t in _grid(api, slide)["tiles"]] == [(0, 0)]


def test_labelling_tiles_shows_on_the_grid_with_counts(as_user, member, slide):
    api = as_user(member)
    toi = own_set(api, slide, "toi")
    first = api.post(
        "/api/annotations/",
        {"set": toi, "label": "toi", "tile_col": 0, "tile_row": 0},
        format="json",
    )
    assert first.status_code == 201
    assert first.json()["geometry"] == _square(0.0, 0.0, 1600.0, 1600.0)
    api.post(
        "/api/annotations/",
        {"set": toi, "label": "non_toi", "tile_col": 1, "tile_row": 1},
        format="json",
    )
    relabel = api.patch(
        f"/api/annotations/{first.json()['id']}/", {"version": 1, "label": "non_toi"}, format="json"
    )
    assert relabel.status_code == 200
    grid = _grid(api, slide)
    labels = {(t["col"], t["row"]): (t["label"], t["version"]) for t in grid["tiles"]}
    assert labels == {
        (0, 0): ("non_toi", 2),
        (1, 0): (None, None),
        (0, 1): (None, None),
        (1, 1): ("non_toi", 1),
    }
    assert grid["counts"] == {"total": 4, "toi": 0, "non_toi": 2, "unlabelled": 2}
    assert grid["set"] == toi


def test_a_tile_is_labelled_once_and_a_second_label_gets_409_with_the_first(as_user, member, slide):
    api = as_user(member)
    toi = own_set(api, slide, "toi")
    first = api.post(
        "/api/annotations/",
        {"set": toi, "label": "toi", "tile_col": 1, "tile_row": 0},
        format="json",
    )
    again = api.post(
        "/api/annotations/",
        {"set": toi, "label": "non_toi", "tile_col": 1, "tile_row": 0},
        format="json",
    )
    assert again.status_code == 409 and again.json()["current"]["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"label": "toi", "tile_col": 2, "tile_row": 0}, "outside the 2 x 2 grid"),
        ({"label": "maybe", "tile_col": 0, "tile_row": 0}, "'toi' or 'non_toi'"),
        ({"label": "toi"}, "needs tile_col and tile_row"),
    ],
)
def test_bad_tile_labels_are_refused(as_user, member, slide, body, reason):
    api = as_user(member)
    response = api.post(
        "/api/annotations/", {"set": own_set(api, slide, "toi"), **body}, format="json"
    )
    assert response.status_code == 400 and reason in response.json()["detail"]


def test_the_project_tile_size_sets_the_grid(as_user, member, project, slide):
    project.toi_tile_size = 1000
    project.save()
    grid = _grid(as_user(member), slide)
    assert grid["tile_size"] == 1000 and grid["counts"]["total"] == 3 * 3
