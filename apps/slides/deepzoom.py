"""Deep Zoom tiles in OpenSlide's convention, with an LRU of open slides and of encoded tiles.

Viewer image coordinates equal level-0 slide pixels (``limit_bounds=False``), so annotation
geometry stored in level-0 pixels overlays without any offset.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from openslide import OpenSlideError
from openslide.deepzoom import DeepZoomGenerator

from ml.lru import LRU
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


class SlideHandleCache(LRU[Path, OpenedSlide]):
    """A bounded LRU of open slides keyed by file path; opens a slide on a miss. Thread-safe."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)

    def get(self, path: Path) -> OpenedSlide:
        opened = super().get(path)
        if opened is not None:
            return opened
        fresh = _open(path)  # outside the lock: opening a slide can take a while
        kept = self.put(path, fresh)
        if kept is not fresh:  # another thread won the race; keep one handle
            fresh.reader.close()
        return kept


class TileLRU(LRU[str, bytes]):
    """Encoded tiles in this process's memory, evicting the least recently used past
    ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, size_of=len)


def _open(path: Path) -> OpenedSlide:
    try:
        reader = SlideReader(path)
    except SlideOpenError as exc:
        raise TileReadError(exc.message) from exc
    return OpenedSlide(reader, DeepZoomGenerator(reader.handle, TILE_SIZE, OVERLAP))


handles = SlideHandleCache(settings.SLIDE_HANDLE_CACHE_SIZE)
tiles = TileLRU(settings.TILE_MEMORY_CACHE_BYTES)


def dzi_xml(path: Path) -> str:
    return handles.get(path).dz.get_dzi("jpeg")


def tile_etag(sha256: str, level: int, col: int, row: int) -> str:
    raw = f"{sha256}:{TILE_SIZE}:{OVERLAP}:{JPEG_QUALITY}:{level}:{col}:{row}"
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


async def aget_tile(path: Path, sha256: str, level: int, col: int, row: int) -> bytes:
    """JPEG bytes of one deep-zoom tile: from this process's memory, then the shared cache
    (Redis only), then OpenSlide. TileNotFound outside the pyramid; TileReadError on bad pixels.

    The decode and encode run in a worker thread, so several tiles are made at once.
    """
    key = _tile_key(sha256, level, col, row)
    data = tiles.get(key)
    if data is not None:
        return data
    # Only Redis is shared with the other server processes; locmem would duplicate ``tiles``.
    shared = bool(settings.REDIS_URL)
    data = await cache.aget(key) if shared else None
    if data is None:
        data = await asyncio.to_thread(render_tile, path, level, col, row)
        if shared:
            await cache.aset(key, data, settings.TILE_CACHE_SECONDS)
    return tiles.put(key, data)


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
