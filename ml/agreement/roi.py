"""ROI agreement: exact overlap of the union of each annotator's ROI polygons."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import shapely

from ml.agreement.shapes import PolygonLike, union_of


@dataclass(frozen=True)
class RoiAgreement:
    """Overlap of the union of A's ROI polygons with the union of B's (areas in px²)."""

    area_a: float
    area_b: float
    intersection: float
    union: float

    @property
    def iou(self) -> float:
        """``|A∩B| / |A∪B|`` in [0, 1]; 1.0 when both are empty."""
        return 1.0 if self.union <= 0 else self.intersection / self.union

    @property
    def dice(self) -> float:
        """``2|A∩B| / (|A| + |B|)`` in [0, 1]; 1.0 when both are empty."""
        total = self.area_a + self.area_b
        return 1.0 if total <= 0 else 2.0 * self.intersection / total

    def to_dict(self) -> dict[str, Any]:
        """Areas plus ``iou`` and ``dice``."""
        return {
            "area_a": self.area_a,
            "area_b": self.area_b,
            "intersection": self.intersection,
            "union": self.union,
            "iou": self.iou,
            "dice": self.dice,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoiAgreement:
        """Inverse of :meth:`to_dict` (derived figures are recomputed)."""
        keys = ("area_a", "area_b", "intersection", "union")
        return cls(**{k: float(data[k]) for k in keys})


def roi_agreement(rois_a: Iterable[PolygonLike], rois_b: Iterable[PolygonLike]) -> RoiAgreement:
    """Exact (shapely) overlap of the two annotators' ROI unions."""
    a, b = union_of(rois_a), union_of(rois_b)
    inter = float(shapely.area(shapely.intersection(a, b)))
    area_a, area_b = float(a.area), float(b.area)
    return RoiAgreement(area_a, area_b, inter, area_a + area_b - inter)
