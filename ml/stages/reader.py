"""Streamed region reading: a few background threads read ahead while the caller computes.

Slide decoding (JPEG tiles in OpenSlide) releases the GIL, so reading the next regions in
threads overlaps IO and decoding with model compute. At most ``prefetch`` regions are in
flight or waiting, which bounds memory whatever the slide's size.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np


class RegionSource(Protocol):
    """What the reader needs from :class:`ml.slide.SlideReader`."""

    @property
    def dimensions(self) -> tuple[int, int]: ...

    @property
    def level_downsamples(self) -> tuple[float, ...]: ...

    def best_level_for_downsample(self, downsample: float) -> int: ...

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class Window:
    """A level-0 region ``(x, y, w, h)`` to read, clipped to the slide, plus a caller's key.

    ``downsample`` is the wanted px-per-level-0-px ratio of the returned image (1 = level 0);
    the image is read from the best pyramid level and resized to ``round(w / downsample)`` x
    ``round(h / downsample)``.
    """

    key: Any
    x: int
    y: int
    w: int
    h: int
    downsample: float = 1.0

    @property
    def out_size(self) -> tuple[int, int]:
        """``(width, height)`` of the returned image."""
        return max(1, round(self.w / self.downsample)), max(1, round(self.h / self.downsample))


def clipped_window(
    key: Any,
    box: tuple[int, int, int, int],
    margin: int,
    slide_wh: tuple[int, int],
    downsample: float = 1.0,
) -> Window:
    """The XYXY level-0 ``box`` grown by ``margin`` on each side, clipped to the slide."""
    x0, y0 = max(box[0] - margin, 0), max(box[1] - margin, 0)
    x1, y1 = min(box[2] + margin, slide_wh[0]), min(box[3] + margin, slide_wh[1])
    return Window(key, x0, y0, x1 - x0, y1 - y0, downsample)


def read_window(slide: RegionSource, window: Window) -> np.ndarray:
    """Read one window: ``(h', w', 3)`` uint8 RGB at the window's ``out_size``."""
    level = slide.best_level_for_downsample(window.downsample)
    ds = slide.level_downsamples[level]
    size = (max(1, math.ceil(window.w / ds)), max(1, math.ceil(window.h / ds)))
    image = slide.read_region((window.x, window.y), level, size)
    out_w, out_h = window.out_size
    if image.shape[1] != out_w or image.shape[0] != out_h:
        shrink = out_w < image.shape[1]
        image = cv2.resize(
            image, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    return image


def stream_windows(
    slide: RegionSource, windows: Sequence[Window], *, workers: int = 2, prefetch: int = 4
) -> Iterator[tuple[Window, np.ndarray]]:
    """Yield ``(window, image)`` in order, reading up to ``prefetch`` windows ahead in threads.

    A read error is raised in the consumer when its window's turn comes. Closing the generator
    early cancels the reads not yet started.
    """
    prefetch = max(1, prefetch)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="slide-read") as pool:
        pending: deque[tuple[Window, Future[np.ndarray]]] = deque()
        todo = iter(windows)
        try:
            for window in todo:
                pending.append((window, pool.submit(read_window, slide, window)))
                if len(pending) >= prefetch:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:
                future.cancel()
