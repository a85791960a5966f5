"""The classifier's cell crop and image resizing: numpy and OpenCV only, no torch.

:mod:`ml.models.predictors` crops with these at inference and :mod:`ml.datasets.export`
at export, so a training crop is the crop the classifier will see; living here, they cost an
export no torch import. The app's crops of a slide (an annotation's crop, the report's review
sprite sheet) come from :func:`slide_crops`, the same square read from the slide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from ml.geometry import square_box
from ml.stages.reader import RegionSource


def resize_to(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``(size, size, 3)``: area down, linear up."""
    if image.shape[:2] == (size, size):
        return image
    shrinking = image.shape[0] > size or image.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def crop_square(
    image: np.ndarray,
    box: Sequence[float] | np.ndarray,
    offset: float,
    size: int,
    *,
    pad: Literal["reflect", "white"] = "reflect",
) -> np.ndarray:
    """The classifier's crop: :func:`ml.geometry.square_box` of ``box``, resized to ``size``.

    ``image`` is ``(H, W, 3)`` uint8 and ``box`` XYXY in its pixels. Parts of the square past
    the image edge are filled by reflection, so a cell near the edge keeps a natural context;
    ``pad="white"`` fills them as empty glass instead, for crops a person looks at (a mirrored
    cell there would be one that is not on the slide). Returns ``(size, size, 3)`` uint8.
    """
    x0, y0, x1, y1 = square_box(box, offset)
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    crop = image[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
    if pad == "white" and crop.size == 0:  # wholly past the edge
        return np.full((size, size, 3), 255, np.uint8)
    if any(pads) and pad == "white":
        crop = cv2.copyMakeBorder(
            crop, *pads, borderType=cv2.BORDER_CONSTANT, value=(255, 255, 255)
        )
    elif any(pads):
        border = cv2.BORDER_REFLECT_101 if min(crop.shape[:2]) > 1 else cv2.BORDER_REPLICATE
        crop = cv2.copyMakeBorder(crop, *pads, borderType=border)
    return resize_to(np.ascontiguousarray(crop), size)


def slide_crops(
    reader: RegionSource,
    boxes: Sequence[Sequence[float]],
    offset: float,
    size: int,
    *,
    group_px: int = 512,
) -> list[np.ndarray]:
    """:func:`crop_square` of each XYXY level-0 box, read from the slide: ``(size, size, 3)``
    uint8 each, in ``boxes`` order; past the slide's edge a crop is white, as empty glass.

    Each crop comes from the coarsest level that still gives ``size`` pixels (level 0 for a
    cell). Crops whose squares fall in one ``group_px`` cell of a grid (level px) are served by
    one read of their union when it is at most twice their own area (neighbouring or
    overlapping cells); scattered ones are read one by one, as a union would be mostly unused
    pixels to decode.
    """
    groups: dict[tuple[int, int, int], list[int]] = {}
    squares = [square_box(box, offset) for box in boxes]
    levels = [reader.best_level_for_downsample((s[2] - s[0]) / size) for s in squares]
    for i, (x0, y0, x1, y1) in enumerate(squares):
        ds = reader.level_downsamples[levels[i]]
        cx, cy = int((x0 + x1) / 2 / ds) // group_px, int((y0 + y1) / 2 / ds) // group_px
        groups.setdefault((levels[i], cx, cy), []).append(i)
    out: list[np.ndarray] = [np.empty(0, np.uint8)] * len(boxes)
    for (level, _, _), members in groups.items():
        union = _bounds([squares[i] for i in members])
        own = sum(_area(squares[i]) for i in members)
        reads = [members] if _area(union) <= 2 * own else [[i] for i in members]
        for read in reads:
            for i, crop in zip(
                read, _read_crops(reader, level, boxes, read, offset, size), strict=False
            ):
                out[i] = crop
    return out


def _area(box: Sequence[int]) -> int:
    return max(box[2] - box[0], 0) * max(box[3] - box[1], 0)


def _bounds(squares: Sequence[Sequence[int]]) -> tuple[int, int, int, int]:
    return (
        min(s[0] for s in squares),
        min(s[1] for s in squares),
        max(s[2] for s in squares),
        max(s[3] for s in squares),
    )


def _read_crops(
    reader: RegionSource,
    level: int,
    boxes: Sequence[Sequence[float]],
    members: Sequence[int],
    offset: float,
    size: int,
) -> list[np.ndarray]:
    """The crops of ``boxes[members]`` from one read of ``level``: their squares' union."""
    width, height = reader.dimensions
    ds = reader.level_downsamples[level]
    # Slack on a coarser level: a box's square, scaled to the level, may round a pixel wider.
    slack = 0 if level == 0 else 2 * int(np.ceil(ds))
    x0, y0, x1, y1 = _bounds([square_box(boxes[i], offset) for i in members])
    rx0, ry0 = max(x0 - slack, 0), max(y0 - slack, 0)
    rx1, ry1 = min(x1 + slack, width), min(y1 + slack, height)
    if rx1 <= rx0 or ry1 <= ry0:  # wholly off the slide: empty glass
        return [np.full((size, size, 3), 255, np.uint8) for _ in members]
    read_size = (max(1, round((rx1 - rx0) / ds)), max(1, round((ry1 - ry0) / ds)))
    region = reader.read_region((rx0, ry0), level, read_size)
    out = []
    for i in members:
        bx0, by0, bx1, by1 = (float(v) for v in boxes[i])
        local = ((bx0 - rx0) / ds, (by0 - ry0) / ds, (bx1 - rx0) / ds, (by1 - ry0) / ds)
        out.append(crop_square(region, local, offset, size, pad="white"))
    return out


def draw_outline(
    crop: np.ndarray,
    ring: Sequence[Sequence[float]],
    box: Sequence[float],
    offset: float,
    colour: tuple[int, int, int] = (0, 229, 255),
    thickness: int = 2,
) -> np.ndarray:
    """Draw ``ring`` (a polygon in level-0 px) over ``crop``, the :func:`crop_square` of ``box``
    with ``offset``, in place; returns ``crop``. ``colour`` is RGB, ``thickness`` in crop px."""
    x0, y0, x1, _ = square_box(box, offset)
    scale = crop.shape[1] / max(x1 - x0, 1)
    points = np.round((np.asarray(ring, np.float64) - (x0, y0)) * scale * 4).astype(np.int32)
    # Drawn at 4x sub-pixel precision (shift=2) and anti-aliased, as the SVG outline was.
    cv2.polylines(crop, [points], True, colour, thickness, cv2.LINE_AA, shift=2)
    return crop


def sprite_sheet(crops: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Equal ``(s, s, 3)`` crops in a grid of ``columns``, row by row: crop ``i`` at
    ``(i % columns * s, i // columns * s)`` px. Unfilled cells of the last row are white."""
    side = crops[0].shape[0] if crops else 1
    rows = max(1, -(-len(crops) // columns))
    sheet = np.full((rows * side, columns * side, 3), 255, np.uint8)
    for i, crop in enumerate(crops):
        r, c = divmod(i, columns)
        sheet[r * side : (r + 1) * side, c * side : (c + 1) * side] = crop
    return sheet


def jpeg(image: np.ndarray, quality: int = 88) -> bytes:
    """An RGB ``(H, W, 3)`` uint8 image as JPEG bytes."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
