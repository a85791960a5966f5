"""GeoJSON polygons become GEOS geometries in one batch, holes and open rings included."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from ml.geojson import polygons_from_geojson, polygons_from_rings

SQUARE = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]
HOLE = [[2.0, 2.0], [4.0, 2.0], [4.0, 4.0], [2.0, 4.0], [2.0, 2.0]]
TRIANGLE_OPEN = [[20.0, 0.0], [30.0, 0.0], [25.0, 8.0]]


def test_rings_laid_end_to_end_become_one_polygon_each_with_their_holes() -> None:
    points = np.array(SQUARE + HOLE + TRIANGLE_OPEN)
    polygons = polygons_from_rings(points, [5, 5, 3], [2, 1])
    assert polygons.shape == (2,)
    assert shapely.area(polygons).tolist() == [100.0 - 4.0, 40.0]
    assert len(polygons[0].interiors) == 1
    assert polygons[1].exterior.is_closed  # the open ring was closed


def test_geojson_coordinates_give_the_same_polygons_as_shapely_shape() -> None:
    batch = [[SQUARE, HOLE], [[[x + 50, y] for x, y in SQUARE]]]
    fast = polygons_from_geojson(batch)
    for got, coordinates in zip(fast, batch, strict=True):
        assert got.equals(shape({"type": "Polygon", "coordinates": coordinates}))


@pytest.mark.parametrize(
    "odd",
    [
        [TRIANGLE_OPEN],  # open ring
        [[[0.0, 0.0, 1.0], [5.0, 0.0, 1.0], [5.0, 5.0, 1.0], [0.0, 0.0, 1.0]]],  # 3-D positions
    ],
)
def test_open_or_3d_rings_take_the_careful_path_and_keep_their_area(odd) -> None:
    (got,) = polygons_from_geojson([odd])
    assert got.area == pytest.approx(shape({"type": "Polygon", "coordinates": odd}).area)
