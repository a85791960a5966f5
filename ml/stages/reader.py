"""Streamed region reading: a few background threads read ahead while the caller computes.

Slide decoding (JPEG tiles in OpenSlide) releases the GIL, so reading the next regions in
threads overlaps IO and decoding with model compute. At most ``prefetch`` regions are in
flight or waiting, which bounds memory whatever the slide's size.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np

K = TypeVar("K")


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
    if not windows:
        return
    stream = stream_window_groups(slide, [(None, windows)], workers=workers, prefetch=prefetch)
    try:
        for _, window, image, _ in stream:
            yield window, image
    finally:
        stream.close()  # now, not when collected: cancels the reads not yet started


def stream_window_groups(
    slide: RegionSource,
    groups: Iterable[tuple[K, Sequence[Window]]],
    *,
    workers: int = 2,
    prefetch: int = 4,
) -> Generator[tuple[K, Window, np.ndarray, bool], None, None]:
    """Yield ``(key, window, image, last_of_group)`` for groups of windows, one group after another.

    The read-ahead runs on across groups, so a consumer that works through several groups
    (an app worker taking one chunk of tiles after another) never waits for a cold first read.
    The next group is taken from ``groups`` only once every window taken so far has been
    handed out but the last, that is while the consumer works on it: a lazy ``groups`` that
    claims its work on demand holds at most one group ahead. At most ``prefetch`` reads are in
    flight or waiting. Every group must have a window (``ValueError`` otherwise); read errors
    and closing early behave as in :func:`stream_windows`.
    """
    prefetch = max(1, prefetch)
    source = iter(groups)
    todo: deque[tuple[K, Window, bool]] = deque()
    pending: deque[tuple[K, Window, bool, Future[np.ndarray]]] = deque()

    def take_group() -> None:
        for key, windows in source:
            if not windows:
                raise ValueError(f"window group {key!r} is empty")
            todo.extend((key, w, i == len(windows) - 1) for i, w in enumerate(windows))
            return

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="slide-read") as pool:

        def submit() -> None:
            while todo and len(pending) < prefetch:
                key, window, last = todo.popleft()
                pending.append((key, window, last, pool.submit(read_window, slide, window)))

        try:
            take_group()
            while todo or pending:
                submit()
                if not todo and len(pending) <= 1:
                    take_group()  # the consumer is about to work on the last window taken
                    submit()
                key, window, last, future = pending.popleft()
                yield key, window, future.result(), last
        finally:
            for *_, future in pending:
                future.cancel()
