"""Streamed reading: windows come back in order, at the asked scale, and errors surface."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ml.slide import SlideReadError, open_slide
from ml.stages.reader import (
    Window,
    clipped_window,
    read_window,
    stream_window_groups,
    stream_windows,
)
from tests.ml.data import SLIDES_DIR


def test_windows_stream_back_in_order_with_the_pixels_of_a_direct_read() -> None:
    with open_slide(SLIDES_DIR / "cmu-1-small-region.svs") as slide:
        windows = [Window(i, 100 * i, 50 * i, 300, 200) for i in range(8)]
        streamed = list(stream_windows(slide, windows, workers=3, prefetch=2))
        assert [w.key for w, _ in streamed] == list(range(8))
        for window, image in streamed:
            direct = slide.read_region((window.x, window.y), 0, (window.w, window.h))
            assert np.array_equal(image, direct)


def test_a_downsampled_window_is_read_from_a_coarser_level_at_the_asked_size() -> None:
    with open_slide(SLIDES_DIR / "boxes.tiff") as slide:
        calls: list[int] = []
        original = slide.read_region

        def spy(location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
            calls.append(level)
            return original(location, level, size)

        slide.read_region = spy  # type: ignore[method-assign]
        # Level downsamples are 1, 2, 4.016, 8.09: the coarsest not above 5 is level 2.
        image = read_window(slide, Window("w", 0, 0, 300, 250, downsample=5.0))
    assert image.shape == (50, 60, 3)
    assert calls == [2]  # read small from level 2, then resized; never level 0


def test_a_window_grown_by_a_margin_is_clipped_to_the_slide() -> None:
    window = clipped_window("k", (0, 1400, 1600, 3000), 200, (2220, 2967))
    assert (window.x, window.y, window.w, window.h) == (0, 1200, 1800, 1767)


def test_reading_ahead_is_bounded_by_prefetch() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    class CountingSlide:
        dimensions = (10_000, 10_000)
        level_downsamples = (1.0,)

        def best_level_for_downsample(self, downsample: float) -> int:
            return 0

        def read_region(
            self, location: tuple[int, int], level: int, size: tuple[int, int]
        ) -> np.ndarray:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            return np.zeros((size[1], size[0], 3), dtype=np.uint8)

    windows = [Window(i, 0, 0, 16, 16) for i in range(50)]
    for _ in stream_windows(CountingSlide(), windows, workers=4, prefetch=3):
        with lock:
            in_flight -= 1  # the consumer holds one image at a time
    assert peak <= 3


def test_a_read_error_reaches_the_consumer() -> None:
    with open_slide(SLIDES_DIR / "unreadable.svs") as slide:
        windows = [Window(0, 0, 0, *slide.dimensions)]
        with pytest.raises(SlideReadError):
            list(stream_windows(slide, windows))


def test_groups_stream_back_in_order_and_the_next_is_taken_only_at_the_last_window() -> None:
    handed_out = 0
    taken_at: list[int] = []

    def groups():
        for g in range(4):
            taken_at.append(handed_out)  # how far the consumer was when this group was asked for
            yield g, [Window((g, i), 100 * g, 50 * i, 300, 200) for i in range(3)]

    with open_slide(SLIDES_DIR / "cmu-1-small-region.svs") as slide:
        seen = []
        for key, window, image, last in stream_window_groups(slide, groups(), prefetch=4):
            direct = slide.read_region((window.x, window.y), 0, (window.w, window.h))
            assert np.array_equal(image, direct)
            seen.append((key, window.key, last))
            handed_out += 1
    assert seen == [(g, (g, i), i == 2) for g in range(4) for i in range(3)]
    # Group g + 1 is asked for as group g's last window is handed out, never earlier: a lazy
    # source that claims work holds one group ahead, and reading runs on without a pause.
    assert taken_at == [0, 2, 5, 8]
