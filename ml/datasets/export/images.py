"""Pixels for the writers: PNG encoding and the square tile reads they share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from ml.geometry import Tile
from ml.stages.reader import RegionSource, Window, stream_windows

# zlib level 1. Photographs: Huffman coding only (after PNG's row filters), measured on bench
# slide crops at 80 % of level 1's time and 80 % of its size, with the Paeth filter on every
# row: libpng's default tries all five filters per row, and on 224 px crops Paeth alone gave
# the same size in 82 % of the time (1.72 vs 2.09 ms); masks: run-length matching, which
# keeps a 1024 px binary mask at a few kB where Huffman-only needs 128 kB.
_PNG_LEVEL = 1
_RGB = [
    cv2.IMWRITE_PNG_COMPRESSION,
    _PNG_LEVEL,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_PAETH,
]
_MASK = [cv2.IMWRITE_PNG_COMPRESSION, _PNG_LEVEL, cv2.IMWRITE_PNG_STRATEGY, 3]  # RLE


def png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 RGB image or an ``(H, W)`` uint8/uint16 mask.

    Safe to call from several threads (OpenCV releases the GIL while encoding).
    """
    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", array, _RGB if array.ndim == 3 else _MASK)
    if not ok:
        raise ValueError(f"could not encode a {array.shape} {array.dtype} image as PNG")
    return data.tobytes()


def tile_stem(key: str, tile: Tile) -> str:
    """The file stem of a slide's grid tile: ``<slide key>_c<col>_r<row>``."""
    return f"{key}_c{tile.col}_r{tile.row}"


def read_tiles(
    slide: RegionSource, tiles: Sequence[Tile], tile_size: int, *, workers: int = 2
) -> Iterator[tuple[Tile, np.ndarray]]:
    """Each tile as a full ``(tile_size, tile_size, 3)`` uint8 RGB read at level 0.

    A grid tile clipped by the slide's edge is read whole: the part past the edge is the white
    of empty glass (as :class:`ml.slide.SlideReader` composites it), so every image has one size.
    """
    windows = [Window(t, t.x, t.y, tile_size, tile_size) for t in tiles]
    for window, image in stream_windows(slide, windows, workers=workers):
        yield window.key, image
