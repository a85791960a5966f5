"""TOI baseline: a classical quality score for each tile (no tile is dropped).

Without a trained TCNet every tile inside the ROI goes on to cell segmentation, but each gets
a score in ``[0, 1]`` from three measures a pathologist also looks at, computed on optical
density (OD, summed over RGB) of the tile read at low resolution:

- **blank fraction**: share of pixels that are empty glass (OD within ``stain_margin`` of the
  slide's glass level). A good monolayer has plenty of glass between cells, so only a tile
  that is almost all glass (above ``max_blank``) loses score.
- **over-stain fraction**: share of pixels more than ``overstain_margin`` darker than glass,
  where stain has piled up or cells overlap in several layers. The score falls to 0 at
  ``max_overstain``.
- **clump fraction**: share of stained pixels that belong to connected stained regions
  larger than ``clump_area_um2`` (bigger than any single counted cell), i.e. red cells or
  debris stuck together into clumps. Without a pixel size, ``clump_area_fraction`` of the
  tile is used instead.

``score = blank_term * overstain_term * (1 - clump_fraction)``.

Thresholds are relative to the slide's glass level (:func:`ml.baselines.roi.glass_od`, from
the thumbnail) because glass is not white on every scanner or camera.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ml.baselines.roi import optical_density


@dataclass(frozen=True)
class ToiBaselineParams:
    """Thresholds of :func:`tile_quality`; OD values are sums over the three channels."""

    stain_margin: float = 0.12
    overstain_margin: float = 1.3
    clump_area_um2: float = 600.0
    clump_area_fraction: float = 0.02
    max_blank: float = 0.85
    max_overstain: float = 0.25


@dataclass(frozen=True)
class TileQuality:
    """The three measures (fractions in ``[0, 1]``) and the combined ``score`` in ``[0, 1]``."""

    blank_fraction: float
    overstain_fraction: float
    clump_fraction: float
    score: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def tile_quality(
    tile: np.ndarray,
    params: ToiBaselineParams | None = None,
    *,
    glass_level: float = 0.0,
    mpp: float | None = None,
) -> TileQuality:
    """Score one ``(H, W, 3)`` uint8 RGB tile (any resolution; ~400 px a side is plenty).

    ``glass_level`` is the OD (summed over RGB) of the slide's empty glass; ``mpp`` the size of
    one of ``tile``'s pixels in µm (``None`` when unknown).
    """
    params = params or ToiBaselineParams()
    od = optical_density(tile).sum(axis=2)
    stained = od >= glass_level + params.stain_margin
    blank = 1.0 - float(stained.mean())
    overstain = float((od > glass_level + params.overstain_margin).mean())
    clump_px = params.clump_area_um2 / mpp**2 if mpp else params.clump_area_fraction * stained.size
    clump = _clump_fraction(stained, clump_px)
    blank_term = (
        1.0 if blank <= params.max_blank else max(0.0, (1.0 - blank) / (1.0 - params.max_blank))
    )
    stain_term = max(0.0, 1.0 - overstain / params.max_overstain)
    score = blank_term * stain_term * (1.0 - clump)
    return TileQuality(blank, overstain, clump, float(score))


def _clump_fraction(stained: np.ndarray, clump_area: float) -> float:
    """Share of stained pixels lying in connected regions larger than ``clump_area`` px."""
    total = int(stained.sum())
    if total == 0:
        return 0.0
    # A light opening splits cells that merely touch, so only real clumps stay connected.
    opened = cv2.morphologyEx(stained.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=4)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return float(areas[areas > clump_area].sum()) / total
