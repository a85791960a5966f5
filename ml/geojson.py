"""GeoJSON polygons to GEOS (shapely) geometries in batches: the one place that builds them.

Annotation sets hold thousands of cell outlines, so polygons are built from flat vertex arrays
in one vectorised shapely call, never one by one. Coordinates stay in the caller's frame
(level-0 slide px for annotations and cells); nothing here checks or repairs validity.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

#: GeoJSON ``Polygon.coordinates``: rings (exterior first, then holes) of ``[x, y]`` positions.
PolygonCoordinates = Sequence[Sequence[Sequence[float]]]


def polygons_from_rings(
    points: np.ndarray,
    ring_lengths: Sequence[int] | np.ndarray,
    rings_per_polygon: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """Polygons from rings laid end to end, in one vectorised GEOS call.

    Args:
        points: float64 ``(P, 2)`` vertices of every ring, one ring after the other. A ring may
            be open or closed (an open one is closed); it needs at least 3 distinct vertices.
        ring_lengths: ``(R,)`` vertices of each ring; they sum to ``P``.
        rings_per_polygon: ``(N,)`` rings of each polygon, exterior first; they sum to ``R``.

    Returns:
        Object array ``(N,)`` of shapely Polygons, in input order (validity unchecked).
    """
    ring_offsets = np.concatenate([[0], np.cumsum(ring_lengths, dtype=np.int64)])
    polygon_offsets = np.concatenate([[0], np.cumsum(rings_per_polygon, dtype=np.int64)])
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, points, (ring_offsets, polygon_offsets)
    )


def polygons_from_geojson(coordinates: Sequence[PolygonCoordinates]) -> np.ndarray:
    """Polygons from a batch of GeoJSON ``Polygon.coordinates``: object array ``(N,)``.

    Closed 2-D rings of 4 or more positions (what the app stores) take the vectorised path;
    anything else (3-D positions, open or tiny rings) is built one polygon at a time by
    ``shapely.geometry.shape``, which handles those shapes its own way.
    """
    ring_lengths = np.fromiter((len(r) for rings in coordinates for r in rings), np.int64)
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(chain(*coordinates))), np.float64)
    ring_offsets = np.concatenate([[0], np.cumsum(ring_lengths)])
    if not _closed_2d_rings(flat, ring_offsets):
        careful = np.empty(len(coordinates), dtype=object)
        careful[:] = [_one_polygon(c) for c in coordinates]
        return careful
    rings_per = np.fromiter((len(rings) for rings in coordinates), np.int64)
    return polygons_from_rings(flat.reshape(-1, 2), ring_lengths, rings_per)


def _one_polygon(coordinates: PolygonCoordinates) -> Any:
    return shape({"type": "Polygon", "coordinates": coordinates})


def _closed_2d_rings(flat: np.ndarray, ring_offsets: np.ndarray) -> bool:
    lengths = np.diff(ring_offsets)
    if not lengths.size or flat.size != 2 * ring_offsets[-1] or (lengths < 4).any():
        return False
    points = flat.reshape(-1, 2)
    return bool((points[ring_offsets[:-1]] == points[ring_offsets[1:] - 1]).all())
