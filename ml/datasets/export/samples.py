"""The plain-data input of every export writer: one :class:`SlideExport` per slide.

Everything is in **level-0 slide px**; geometries are GeoJSON Polygon ``coordinates`` (rings,
exterior first, closed). Nothing here knows where the data came from: the app fills these from
annotation sets, a script from files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.geojson import PolygonCoordinates
from ml.geometry import Polygon, Tile

#: TOI tile labels, as the annotation sets store them.
TOI, NON_TOI = "toi", "non_toi"


@dataclass(frozen=True)
class ClassInfo:
    """One class of the export's class map: stable ``key``, display ``name``, ``#rrggbb``."""

    key: str
    name: str
    colour: str | None = None


def compact(coordinates: PolygonCoordinates) -> list[np.ndarray]:
    """GeoJSON rings as ``(N, 2)`` float64 arrays: a tenth of the memory of nested lists,
    which matters for 50,000 cells held at once."""
    return [np.asarray(ring, dtype=np.float64).reshape(-1, 2) for ring in coordinates]


@dataclass(frozen=True)
class CellSample:
    """One cell: its outline (level-0 px) and class key (``""``: not classified yet).

    ``coordinates`` are GeoJSON rings, as nested lists or (better, see :func:`compact`) as
    ``(N, 2)`` arrays.
    """

    coordinates: PolygonCoordinates | Sequence[np.ndarray]
    label: str = ""
    annotation_id: int | None = None

    def rings(self) -> list[list[list[float]]]:
        """The rings as JSON-ready nested lists of floats."""
        return [np.asarray(r, dtype=np.float64).reshape(-1, 2).tolist() for r in self.coordinates]

    def polygon(self) -> Polygon:
        """The outline as :data:`ml.geometry.Polygon` (float64 rings)."""
        return [np.asarray(ring, dtype=np.float64).reshape(-1, 2) for ring in self.coordinates]


@dataclass(frozen=True)
class TileSample:
    """A TOI decision on one grid tile: ``label`` is :data:`TOI` or :data:`NON_TOI`."""

    tile: Tile
    label: str


@dataclass(frozen=True)
class SourceSet:
    """Where a stage's annotations came from, for the manifest (``version``: the set's edit
    version, e.g. the sum of its annotations' versions, so a later edit changes it)."""

    stage: str
    set_id: int | None
    source: str
    annotator: str | None = None
    version: int = 0
    annotations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "set_id": self.set_id,
            "source": self.source,
            "annotator": self.annotator,
            "version": self.version,
            "annotations": self.annotations,
            **self.extra,
        }


@dataclass(frozen=True)
class SlideExport:
    """One slide's annotations to export.

    ``key`` is unique within the export and safe as a file name part (letters, digits, ``-``,
    ``_``, ``.``); ``path`` is a file :class:`ml.slide.SlideReader` opens; ``width``/``height``
    are level-0 px. ``roi`` holds the ROI polygons, ``tiles`` the TOI decisions, ``cells`` the
    cells; a stage that was not selected is empty.
    """

    key: str
    path: str
    sha256: str
    width: int
    height: int
    name: str = ""
    roi: Sequence[PolygonCoordinates] = ()
    tiles: Sequence[TileSample] = ()
    cells: Sequence[CellSample] = ()
    sources: Sequence[SourceSet] = ()
