"""Deep Zoom tiles in OpenSlide's convention, with an LRU of open slides and a tile cache.

Viewer image coordinates equal level-0 slide pixels (``limit_bounds=False``), so annotation
geometry stored in level-0 pixels overlays without any offset.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from openslide import OpenSlideError
from openslide.deepzoom import DeepZoomGenerator

from ml.slide import SlideOpenError, SlideReader

TILE_SIZE = 254
OVERLAP = 1
JPEG_QUALITY = 80


class TileNotFound(Exception):
    """Level, column or row outside the pyramid."""


class TileReadError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class OpenedSlide:
    reader: SlideReader
    dz: DeepZoomGenerator


class SlideHandleCache:
    """A bounded LRU of open slides keyed by file path; thread-safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Path, OpenedSlide] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> OpenedSlide:
        with self._lock:
            if path in self._items:
                self._items.move_to_end(path)
                return self._items[path]
        opened = _open(path)  # outside the lock: opening a slide can take a while
        with self._lock:
            if path in self._items:  # another thread won the race; keep one handle
                opened.reader.close()
                return self._items[path]
            self._items[path] = opened
            while len(self._items) > self.capacity:
                _, old = self._items.popitem(last=False)
                # Other threads may still hold `old`; OpenSlide frees it when they are done.
            return opened

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _open(path: Path) -> OpenedSlide:
    try:
        reader = SlideReader(path)
    except SlideOpenError as exc:
        raise TileReadError(exc.message) from exc
    return OpenedSlide(reader, DeepZoomGenerator(reader.handle, TILE_SIZE, OVERLAP))


handles = SlideHandleCache(settings.SLIDE_HANDLE_CACHE_SIZE)


def dzi_xml(path: Path) -> str:
    return handles.get(path).dz.get_dzi("jpeg")


def tile_etag(sha256: str, level: int, col: int, row: int) -> str:
    raw = f"{sha256}:{TILE_SIZE}:{OVERLAP}:{JPEG_QUALITY}:{level}:{col}:{row}"
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


async def aget_tile(path: Path, sha256: str, level: int, col: int, row: int) -> bytes:
    """JPEG bytes of one deep-zoom tile, from the cache when present.

    The decode and encode run in a worker thread, so several tiles are made at once.
    """
    key = _tile_key(sha256, level, col, row)
    data = await cache.aget(key)
    if data is None:
        data = await asyncio.to_thread(render_tile, path, level, col, row)
        await cache.aset(key, data, settings.TILE_CACHE_SECONDS)
    return data


def _tile_key(sha256: str, level: int, col: int, row: int) -> str:
    return f"tile:{tile_etag(sha256, level, col, row)}"


def render_tile(path: Path, level: int, col: int, row: int) -> bytes:
    """Read and JPEG-encode one tile; TileNotFound outside the pyramid."""
    dz = handles.get(path).dz
    if not 0 <= level < dz.level_count:
        raise TileNotFound()
    cols, rows = dz.level_tiles[level]
    if not (0 <= col < cols and 0 <= row < rows):
        raise TileNotFound()
    try:
        image = dz.get_tile(level, (col, row))
    except OpenSlideError as exc:
        raise TileReadError(f"the slide's pixels could not be decoded: {exc}") from exc
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
