"""Polygon validation: what may be stored, and the reasons given for what may not."""

from __future__ import annotations

import pytest

from apps.annotations.validation import MAX_VERTICES, PolygonError, clean_polygon
from tests.annotations.conftest import polygon

SLIDE = {"width": 2220, "height": 2967}


def _reason(geometry) -> str:
    with pytest.raises(PolygonError) as caught:
        clean_polygon(geometry, **SLIDE)
    return caught.value.reason


def test_open_ring_is_stored_closed_with_box_and_area():
    clean = clean_polygon(
        {"type": "Polygon", "coordinates": [[[10, 10], [110, 10], [110, 60], [10, 60]]]}, **SLIDE
    )
    assert (
        clean.geometry["coordinates"][0][0] == clean.geometry["coordinates"][0][-1] == [10.0, 10.0]
    )
    assert clean.bbox == (10.0, 10.0, 110.0, 60.0)
    assert clean.area_px == pytest.approx(5000.0)


def test_fewer_than_three_distinct_vertices_is_rejected():
    assert "fewer than 3 distinct vertices" in _reason(
        {"type": "Polygon", "coordinates": [[[10, 10], [20, 20], [10, 10], [20, 20]]]}
    )


def test_self_intersecting_bowtie_is_rejected_with_shapely_reason():
    reason = _reason({"type": "Polygon", "coordinates": [[[0, 0], [100, 100], [100, 0], [0, 100]]]})
    assert reason.startswith("invalid polygon: Self-intersection")


def test_point_outside_the_slide_is_rejected_with_the_bounds():
    reason = _reason(polygon(2200, 100, r=40))
    assert "outside the slide" in reason and "[0, 2220]" in reason


def test_absurd_vertex_count_is_rejected():
    reason = _reason(polygon(1000, 1000, r=300, n=MAX_VERTICES + 1))
    assert "too many vertices" in reason


@pytest.mark.parametrize(
    "geometry, expected",
    [
        ({"type": "Polygon", "coordinates": [[["a", 1], [2, 3], [4, 5]]]}, "finite numbers"),
        (
            {"type": "Polygon", "coordinates": [[[1, float("nan")], [2, 3], [4, 5]]]},
            "finite numbers",
        ),
        ({"type": "Polygon", "coordinates": [[[True, 1], [2, 3], [4, 5]]]}, "finite numbers"),
        ({"type": "Point", "coordinates": [1, 2]}, "Polygon"),
        ({"type": "Polygon", "coordinates": []}, "non-empty list of rings"),
        ({"type": "Polygon", "coordinates": [[[1, 2, 3], [2, 3], [4, 5]]]}, "[x, y]"),
        ("not a geometry", "Polygon"),
    ],
)
def test_malformed_geometry_is_rejected(geometry, expected):
    assert expected in _reason(geometry)


def test_polygon_with_a_hole_is_accepted_and_its_area_excludes_the_hole():
    outer = [[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]]
    hole = [[40, 40], [60, 40], [60, 60], [40, 60], [40, 40]]
    clean = clean_polygon({"type": "Polygon", "coordinates": [outer, hole]}, **SLIDE)
    assert clean.area_px == pytest.approx(10000 - 400)


def test_a_batch_gives_each_geometry_its_own_result_in_order():
    from apps.annotations.validation import clean_polygons

    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [100, 100], [100, 0], [0, 100]]]}
    text = {"type": "Polygon", "coordinates": [[["a", 1], [2, 3], [4, 5], [6, 7]]]}
    outside = polygon(2200, 100, r=40)
    batch = [
        polygon(100, 100),
        bowtie,
        polygon(300, 300, n=60),
        text,
        outside,
        polygon(500, 500, n=20),
    ]
    results = clean_polygons(batch, **SLIDE)
    assert [type(r).__name__ for r in results] == [
        "CleanPolygon",
        "PolygonError",
        "CleanPolygon",
        "PolygonError",
        "PolygonError",
        "CleanPolygon",
    ]
    assert "Self-intersection" in results[1].reason
    assert "finite numbers" in results[3].reason
    assert "outside the slide" in results[4].reason
    assert results[2].bbox == pytest.approx((260.0, 260.0, 340.0, 340.0), abs=0.01)
    alone = [clean_polygon(g, **SLIDE) for g in (batch[0], batch[2], batch[5])]
    assert [results[0], results[2], results[5]] == alone
