"""The deep-zoom tile fast path: an ASGI layer in front of Django for tile GETs.

A viewer asks for hundreds of tiles a minute. Going through Django's full middleware stack
costs more per tile than serving a cached tile, so this layer answers tile requests itself
once the requester is known to be allowed to see the slide:

- Access is decided by Django, the same way as everywhere else (session -> user ->
  ``Slide.objects.visible_to``), then remembered for ``GRANT_SECONDS`` per (session, slide).
  A request with no remembered grant goes to Django unchanged, so anonymous users still get
  the login redirect and outsiders still get 404 from the regular view.
- Tiles come from an in-process LRU (bytes-bounded), then the shared Django cache when Redis
  is configured, then OpenSlide in a worker thread (several at once: OpenSlide and Pillow
  release the GIL).
- A grant outlives a logout or a removed membership by at most ``GRANT_SECONDS``; that is the
  price of not asking the database for every tile.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings

from . import deepzoom

TILE_PATH = re.compile(r"^/slides/(\d+)_files/(\d+)/(\d+)_(\d+)\.jpeg$")
GRANT_SECONDS = 60
MAX_GRANTS = 10_000


@dataclass(frozen=True)
class Grant:
    sha256: str
    path: Path
    expires: float


class TileLRU:
    """Encoded tiles in memory, evicting the least recently used past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)


def _grant_for(session_key: str, slide_id: int) -> Grant | None:
    """Ask Django whether this session's user may see this ready slide."""
    from django.contrib.auth import get_user
    from django.http import HttpRequest

    from .models import Slide, SlideStatus

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)
    if not user.is_authenticated:
        return None
    slide = (
        Slide.objects.visible_to(user)
        .filter(pk=slide_id, status=SlideStatus.READY)
        .only("sha256", "file_path", "view_path")
        .first()
    )
    if slide is None:
        return None
    return Grant(slide.sha256, slide.viewable_file, time.monotonic() + GRANT_SECONDS)


class DeepZoomTiles:
    """ASGI middleware: serve granted tile requests, pass everything else to ``app``."""

    def __init__(self, app) -> None:
        self.app = app
        self.tiles = TileLRU(settings.TILE_MEMORY_CACHE_BYTES)
        self._grants: dict[tuple[str, int], Grant] = {}

    async def __call__(self, scope, receive, send) -> None:
        match = TILE_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        slide_id, level, col, row = (int(g) for g in match.groups())
        headers = dict(scope["headers"])
        grant = await self._grant(headers, slide_id)
        if grant is None:
            return await self.app(scope, receive, send)
        etag = f'"{deepzoom.tile_etag(grant.sha256, level, col, row)}"'.encode()
        if headers.get(b"if-none-match") == etag:
            return await _respond(send, 304, b"", [(b"etag", etag)])
        try:
            data = await self._tile(grant, level, col, row)
        except deepzoom.TileNotFound:
            return await _respond(send, 404, b"no such tile", [(b"content-type", b"text/plain")])
        except deepzoom.TileReadError as exc:
            body = exc.message.encode()
            return await _respond(send, 422, body, [(b"content-type", b"text/plain")])
        extra = [
            (b"content-type", b"image/jpeg"),
            (b"etag", etag),
            (b"cache-control", b"private, max-age=86400"),
        ]
        await _respond(send, 200, b"" if scope["method"] == "HEAD" else data, extra)

    async def _grant(self, headers: dict, slide_id: int) -> Grant | None:
        session_key = _session_key(headers.get(b"cookie", b""))
        if not session_key:
            return None
        key = (session_key, slide_id)
        grant = self._grants.get(key)
        if grant is not None and grant.expires > time.monotonic():
            return grant
        grant = await sync_to_async(_grant_for)(session_key, slide_id)
        if len(self._grants) >= MAX_GRANTS:
            self._grants.clear()
        if grant is not None:
            self._grants[key] = grant
        else:
            self._grants.pop(key, None)
        return grant

    async def _tile(self, grant: Grant, level: int, col: int, row: int) -> bytes:
        key = f"tile:{deepzoom.tile_etag(grant.sha256, level, col, row)}"
        data = self.tiles.get(key)
        if data is not None:
            return data
        if settings.REDIS_URL:
            # Shared with the other server processes; locmem would only duplicate our LRU.
            data = await deepzoom.aget_tile(grant.path, grant.sha256, level, col, row)
        else:
            data = await asyncio.to_thread(deepzoom.render_tile, grant.path, level, col, row)
        self.tiles.put(key, data)
        return data


def _session_key(cookie_header: bytes) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(cookie_header.decode("latin-1"))
    except CookieError:  # a malformed Cookie header: treat the request as anonymous
        return None
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel else None


async def _respond(send, status: int, body: bytes, headers: list) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
