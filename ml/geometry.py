"""Coordinate frames, masks and polygons: the one place where pixels change frame.

Three frames appear in the pipeline:

- **level-0 slide px**: the slide's full-resolution pixel grid; every stored output uses it.
- **thumbnail px**: the factor-100 thumbnail the ROI stage sees.
- **tile px**: a region read from the slide at some pyramid level (TOI, cells).

Coordinates are *continuous*: pixel ``(col j, row i)`` covers ``[j, j + 1) x [i, i + 1)``, so its
centre is ``(j + 0.5, i + 0.5)``. A :class:`Frame` maps a local frame to its parent by
``parent = offset + scale * local``; scaling continuous coordinates maps regions exactly,
whatever the scale. Points are ``(x, y)``; boxes are XYXY; images and masks are ``(H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# A polygon is its exterior ring followed by its holes, each an (N, 2) float64 array of (x, y).
Polygon = list[np.ndarray]


@dataclass(frozen=True)
class Frame:
    """An axis-aligned similarity from a local pixel frame to its parent frame.

    ``parent_xy = (ox, oy) + (sx, sy) * local_xy``, in continuous coordinates.
    """

    sx: float = 1.0
    sy: float = 1.0
    ox: float = 0.0
    oy: float = 0.0

    def to_parent(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` local ``(x, y)`` points to the parent frame (float64)."""
        pts = np.asarray(points, dtype=np.float64)
        return pts * np.array([self.sx, self.sy]) + np.array([self.ox, self.oy])

    def from_parent(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` parent ``(x, y)`` points into this frame (float64)."""
        pts = np.asarray(points, dtype=np.float64)
        return (pts - np.array([self.ox, self.oy])) / np.array([self.sx, self.sy])

    def box_to_parent(self, box: Sequence[float]) -> np.ndarray:
        """Map an XYXY box to the parent frame."""
        return self.to_parent(np.asarray(box, dtype=np.float64).reshape(2, 2)).reshape(4)

    def then(self, parent: Frame) -> Frame:
        """Compose: this frame's local coordinates mapped through ``parent`` to its parent."""
        return Frame(
            sx=self.sx * parent.sx,
            sy=self.sy * parent.sy,
            ox=parent.ox + parent.sx * self.ox,
            oy=parent.oy + parent.sy * self.oy,
        )


def thumbnail_frame(thumbnail_hw: tuple[int, int], slide_wh: tuple[int, int]) -> Frame:
    """Frame of a thumbnail of ``thumbnail_hw`` that shows the whole level-0 slide ``slide_wh``.

    The scale is taken from the actual sizes (a thumbnail is rounded to whole pixels), so the
    thumbnail's right and bottom edges land exactly on the slide's.
    """
    h, w = thumbnail_hw
    return Frame(sx=slide_wh[0] / w, sy=slide_wh[1] / h)


def resize_longest_side_shape(h: int, w: int, target: int) -> tuple[int, int]:
    """``(new_h, new_w)`` with the longer side equal to ``target``, aspect kept (as SAM rounds)."""
    scale = target / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


@dataclass(frozen=True)
class LongestSidePad:
    """ResizeLongestSide to ``target``, then zero padding bottom/right to ``target x target``.

    The model's input frame is the padded square; :meth:`frame` maps it back to the original
    image's pixel frame.
    """

    original_hw: tuple[int, int]
    target: int

    @property
    def resized_hw(self) -> tuple[int, int]:
        return resize_longest_side_shape(*self.original_hw, self.target)

    def frame(self) -> Frame:
        """Model px -> original image px."""
        (h, w), (nh, nw) = self.original_hw, self.resized_hw
        return Frame(sx=w / nw, sy=h / nh)

    def resize(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, C)`` uint8 -> ``resized_hw`` (area interpolation); the caller pads.

        Padding is left to the caller so it can pad with zeros *after* normalising, as SAM does.
        """
        nh, nw = self.resized_hw
        return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)

    def unapply_map(self, values: np.ndarray) -> np.ndarray:
        """``(target, target)`` float map -> ``(H, W)`` float32: drop the pad, resize back."""
        nh, nw = self.resized_hw
        h, w = self.original_hw
        crop = np.ascontiguousarray(values[:nh, :nw], dtype=np.float32)
        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def mask_to_polygons(
    mask: np.ndarray,
    frame: Frame | None = None,
    *,
    min_area_px: float = 0.0,
    simplify_px: float = 0.0,
) -> list[Polygon]:
    """Trace a binary mask into polygons in ``frame``'s parent coordinates.

    ``mask`` is ``(H, W)`` bool or 0/1 in the local frame. The rings follow the pixels' outer
    edges (not their centres), so a mask scaled by 100 keeps its true outline, and
    :func:`polygons_to_mask` in the same frame reproduces the mask exactly. ``min_area_px``
    drops exteriors enclosing fewer local pixels; ``simplify_px`` is a Douglas-Peucker
    tolerance in local pixels (0 keeps every corner). Returns a list of polygons, each
    ``[exterior, *holes]`` as ``(N, 2)`` float64 arrays. ``frame`` defaults to the identity.
    """
    frame = frame or Frame()
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return []
    corners = _corner_grid(m)
    contours, hierarchy = cv2.findContours(corners, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    polygons: list[Polygon] = []
    for idx, contour in enumerate(contours):
        if hierarchy[0][idx][3] != -1:
            continue  # a hole: attached to its exterior below
        if cv2.contourArea(contour) / 4.0 < min_area_px:
            continue
        rings = [contour] + _holes_of(idx, contours, hierarchy)
        rings = [_square_corners(ring.reshape(-1, 2), corners) for ring in rings]
        polygons.append([_ring_to_parent(ring, frame, simplify_px) for ring in rings])
    return polygons


def _square_corners(ring: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Restore the corners an 8-connected trace cuts, and keep only the turning vertices.

    The grid's foreground is a union of axis-aligned blocks, so its true outline only moves
    along axes. Where the trace steps diagonally it skipped a concave corner: of the two
    candidates, that corner is the one on the foreground.
    """
    p = ring.astype(np.int64)
    q = np.roll(p, -1, axis=0)
    diagonal = np.flatnonzero((p[:, 0] != q[:, 0]) & (p[:, 1] != q[:, 1]))
    a = np.stack([p[diagonal, 0], q[diagonal, 1]], axis=1)
    b = np.stack([q[diagonal, 0], p[diagonal, 1]], axis=1)
    corner = np.where(grid[a[:, 1], a[:, 0]][:, None] > 0, a, b)
    pts = np.insert(p, diagonal + 1, corner, axis=0)
    step_in = pts - np.roll(pts, 1, axis=0)
    step_out = np.roll(pts, -1, axis=0) - pts
    turning = (step_in[:, 0] * step_out[:, 1] - step_in[:, 1] * step_out[:, 0]) != 0
    return pts[turning] if turning.sum() >= 3 else pts


def _corner_grid(mask: np.ndarray) -> np.ndarray:
    """Upsample a mask to a ``(2H + 1, 2W + 1)`` grid where index ``k`` is coordinate ``k / 2``.

    Pixel ``(i, j)`` fills grid block ``[2i, 2i + 2] x [2j, 2j + 2]``, so tracing the grid's
    pixel centres traces the mask's pixel edges.
    """
    h, w = mask.shape
    grid = np.zeros((2 * h + 1, 2 * w + 1), dtype=np.uint8)
    grid[1::2, 1::2] = mask
    return cv2.dilate(grid, np.ones((3, 3), np.uint8))


def _holes_of(idx: int, contours: Sequence[np.ndarray], hierarchy: np.ndarray) -> list[np.ndarray]:
    holes = []
    child = hierarchy[0][idx][2]
    while child != -1:
        holes.append(contours[child])
        child = hierarchy[0][child][0]
    return holes


def _ring_to_parent(ring: np.ndarray, frame: Frame, simplify_px: float) -> np.ndarray:
    if simplify_px > 0 and len(ring) > 3:
        ring = cv2.approxPolyDP(ring, 2.0 * simplify_px, True)
    return frame.to_parent(ring.reshape(-1, 2).astype(np.float64) / 2.0)


def polygons_to_mask(
    polygons: Sequence[Polygon], frame: Frame, shape_hw: tuple[int, int]
) -> np.ndarray:
    """Rasterise polygons given in ``frame``'s parent coordinates onto a local ``(H, W)`` grid.

    A local pixel is set when its centre lies inside a polygon (even-odd rule over its rings,
    so holes stay empty; a centre exactly on a left/top edge is inside, on a right/bottom edge
    outside). The crossings are computed exactly rather than on a fixed-point grid, so the
    result does not depend on how finely the polygon was scaled. Returns ``(H, W)`` bool.
    """
    h, w = shape_hw
    out = np.zeros((h, w), dtype=bool)
    for polygon in polygons:
        out |= _fill_even_odd([frame.from_parent(ring) for ring in polygon], h, w)
    return out


def _fill_even_odd(rings: Sequence[np.ndarray], h: int, w: int) -> np.ndarray:
    """Pixels whose centres lie inside ``rings`` (local continuous coordinates), even-odd rule."""
    rows, xs = [], []
    for ring in rings:
        p = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        q = np.roll(p, -1, axis=0)
        # Row r is crossed by an edge when its centre r + 0.5 lies in [y_lo, y_hi).
        first = np.ceil(np.minimum(p[:, 1], q[:, 1]) - 0.5).astype(np.int64)
        stop = np.ceil(np.maximum(p[:, 1], q[:, 1]) - 0.5).astype(np.int64)
        counts = np.maximum(stop - first, 0)
        edge = np.repeat(np.arange(len(p)), counts)
        row = first[edge] + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        t = (row + 0.5 - p[edge, 1]) / (q[edge, 1] - p[edge, 1])
        rows.append(row)
        xs.append(p[edge, 0] + t * (q[edge, 0] - p[edge, 0]))
    row, x = np.concatenate(rows), np.concatenate(xs)
    order = np.lexsort((x, row))
    row, x = row[order], x[order]
    # Consecutive crossings on a row pair up into inside spans [x_in, x_out).
    starts, ends, span_rows = x[0::2], x[1::2], row[0::2]
    first_px = np.clip(np.ceil(starts - 0.5).astype(np.int64), 0, w)
    stop_px = np.clip(np.ceil(ends - 0.5).astype(np.int64), 0, w)
    ok = (span_rows >= 0) & (span_rows < h) & (stop_px > first_px)
    edges = np.zeros((h, w + 1), dtype=np.int32)
    np.add.at(edges, (span_rows[ok], first_px[ok]), 1)
    np.add.at(edges, (span_rows[ok], stop_px[ok]), -1)
    return np.cumsum(edges, axis=1)[:, :w] > 0


@dataclass(frozen=True)
class Tile:
    """One cell of the non-overlapping tile grid, in level-0 slide px.

    ``(x, y)`` is the top-left corner; tiles on the right and bottom edges are clipped to the
    slide, so ``w`` and ``h`` may be smaller than the grid's tile size.
    """

    col: int
    row: int
    x: int
    y: int
    w: int
    h: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """XYXY, level-0 px."""
        return self.x, self.y, self.x + self.w, self.y + self.h

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which ``(N, 2)`` level-0 points fall in this tile (half-open, so each point has one owner)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x0, y0, x1, y1 = self.box
        return (pts[:, 0] >= x0) & (pts[:, 0] < x1) & (pts[:, 1] >= y0) & (pts[:, 1] < y1)


def tile_grid(slide_wh: tuple[int, int], tile_size: int) -> list[Tile]:
    """The non-overlapping ``tile_size`` grid over a level-0 slide of ``slide_wh``, row-major."""
    width, height = slide_wh
    tiles = []
    for row, y in enumerate(range(0, height, tile_size)):
        for col, x in enumerate(range(0, width, tile_size)):
            tiles.append(
                Tile(col, row, x, y, min(tile_size, width - x), min(tile_size, height - y))
            )
    return tiles


def coverage_fractions(mask: np.ndarray, frame: Frame, boxes: np.ndarray) -> np.ndarray:
    """Share of each level-0 XYXY box covered by a local ``(H, W)`` mask, exactly.

    ``frame`` maps the mask's pixels to level 0. The mask is piecewise constant, so its integral
    image is bilinear inside each pixel; interpolating it at the boxes' fractional corners gives
    the exact covered area. Returns ``(N,)`` float64 in ``[0, 1]``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    integral = cv2.integral(np.ascontiguousarray(mask, dtype=np.uint8)).astype(np.float64)
    corners = frame.from_parent(boxes.reshape(-1, 2, 2))
    h, w = mask.shape
    xs = np.clip(corners[..., 0], 0, w)
    ys = np.clip(corners[..., 1], 0, h)
    x0, x1, y0, y1 = xs[:, 0], xs[:, 1], ys[:, 0], ys[:, 1]
    covered = (
        _bilinear(integral, x1, y1)
        - _bilinear(integral, x0, y1)
        - _bilinear(integral, x1, y0)
        + _bilinear(integral, x0, y0)
    )
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (frame.sx * frame.sy)
    return np.clip(covered / np.maximum(area, 1e-12), 0.0, 1.0)


def _bilinear(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``grid`` (integral image, ``(H+1, W+1)``) at continuous corner coordinates."""
    gh, gw = grid.shape
    x0 = np.clip(np.floor(x).astype(int), 0, gw - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, gh - 2)
    fx, fy = x - x0, y - y0
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def polygon_to_json(polygon: Polygon, decimals: int = 1) -> list[list[list[float]]]:
    """A polygon as GeoJSON-style rings: each ring closed, ``[[x, y], ...]`` rounded floats."""
    rings = []
    for ring in polygon:
        pts = np.round(ring, decimals)
        if len(pts) and not np.array_equal(pts[0], pts[-1]):
            pts = np.vstack([pts, pts[:1]])
        rings.append(pts.tolist())
    return rings


def square_box(box: Sequence[float] | np.ndarray, offset: float) -> tuple[int, int, int, int]:
    """The square crop around an XYXY box plus a margin (the "box offset"), as integer XYXY.

    The side is the box's longer side times ``1 + 2 * offset``, centred on the box, so a cell's
    crop shows it whole with ``offset`` of its size as context on each side. Same frame as the
    input; the square may extend past the image.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0, 1.0) * (1.0 + 2.0 * offset)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    left, top = int(np.floor(cx - side / 2.0)), int(np.floor(cy - side / 2.0))
    size = int(np.ceil(side))
    return left, top, left + size, top + size
