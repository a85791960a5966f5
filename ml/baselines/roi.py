"""ROI baseline: classical smear detection on the slide thumbnail.

Without a trained TextureUnet there is no way to find the body-tail junction specifically, so
the baseline returns the whole smear: stained glass as opposed to empty glass. It works on
optical density (OD = -log10(I / 255)), which is additive in stain amount and so separates a
faint monolayer from bright empty glass better than brightness does:

1. OD summed over RGB; empty glass is near 0 and never above ``min_od``. The threshold is
   Otsu's on that sum, floored at ``min_od`` so a blank slide does not turn its noise into a
   "smear". When Otsu's lower class is itself darker than glass can be, the slide shows no
   glass at this scale (a smear wall to wall), and everything above ``min_od`` is smear.
2. Scanner fill (pure black outside the scanned area) is excluded.
3. A closing then an opening (kernels relative to the thumbnail's size) join the smear into
   regions and drop specks; holes smaller than ``max_hole_fraction`` of the image are filled;
   components smaller than ``min_component_fraction`` are dropped.

The TOI stage's quality score then judges each tile inside this broad region.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class RoiBaselineParams:
    """Tuning of :func:`detect_smear`; fractions are of the thumbnail's area or side."""

    min_od: float = 0.15
    black_level: int = 25
    kernel_fraction: float = 0.01
    min_component_fraction: float = 0.002
    max_hole_fraction: float = 0.001


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(H, W, 3)`` float32 optical density, ``>= 0``."""
    return -np.log10((rgb.astype(np.float32) + 1.0) / 256.0)


def glass_od(thumbnail: np.ndarray, percentile: float = 1.0) -> float:
    """The OD (summed over RGB) of a slide's empty glass: a low percentile of the thumbnail's.

    Glass is the brightest thing on a slide, and even a slide with little glass shows some at
    the thumbnail's scale; scanner fill (pure black) is ignored.
    """
    od = optical_density(thumbnail).sum(axis=2)
    lit = od[thumbnail.max(axis=2) >= RoiBaselineParams.black_level]
    return float(np.percentile(lit, percentile)) if lit.size else 0.0


def detect_smear(thumbnail: np.ndarray, params: RoiBaselineParams | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 thumbnail -> ``(H, W)`` bool smear mask, thumbnail px."""
    params = params or RoiBaselineParams()
    od = optical_density(thumbnail).sum(axis=2)
    scanner_fill = thumbnail.max(axis=2) < params.black_level
    lit = od[~scanner_fill]
    threshold = params.min_od
    if lit.size:
        otsu = _otsu(lit)
        low = lit[lit <= otsu]
        if low.size and low.mean() < params.min_od:  # the lower class is glass
            threshold = max(otsu, params.min_od)
    mask = ((od > threshold) & ~scanner_fill).astype(np.uint8)
    side = max(1, round(min(mask.shape) * params.kernel_fraction))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * side + 1, 2 * side + 1))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    area = mask.size
    mask = _fill_small_holes(mask, params.max_hole_fraction * area)
    return _drop_small_components(mask, params.min_component_fraction * area)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of a float image (256 bins over its range)."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-6:
        return hi
    scaled = np.round((values - lo) / (hi - lo) * 255).astype(np.uint8)
    t, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return lo + t / 255.0 * (hi - lo)


def _fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fill background regions not touching the border and smaller than ``max_area`` px."""
    inverse = (1 - mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    h, w = mask.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    touches = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    fill = ~touches & (area <= max_area)
    fill[0] = False  # label 0 is the mask itself
    return (mask.astype(bool) | fill[labels]).astype(np.uint8)


def _drop_small_components(mask: np.ndarray, min_area: float) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]
