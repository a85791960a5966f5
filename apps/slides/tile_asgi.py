"""The deep-zoom tile fast path: an ASGI layer in front of Django for tile GETs.

A viewer asks for hundreds of tiles a minute. Going through Django's full middleware stack
costs more per tile than serving a cached tile, so this layer answers tile requests itself
once the requester is known to be allowed to see the slide:

- Access is decided by Django, the same way as everywhere else (session or
  ``Authorization: Token <key>`` -> user -> ``selectors.avisible_slide_or_404``, all through
  the async ORM), then remembered for ``GRANT_SECONDS`` per (credential, slide). A request
  with no remembered grant goes to Django unchanged, so anonymous users still get the login
  redirect, a bad token 401, and outsiders 404 from the regular view.
- The answer (ETag, 304, 404, 422, cache header) is :func:`tile_response.tile_response`, the
  same function the Django tile view calls. Tiles come from ``deepzoom.aget_tile``: an
  in-process LRU (bytes-bounded), then the shared Django cache when Redis is configured, then
  OpenSlide in a worker thread (several at once: OpenSlide and Pillow release the GIL).
- A grant holds only while its user's access generation (``apps.accounts.access``) is the one
  it was made under: a logout, a membership change or a deleted token moves it on, in every
  process with Redis, so the next tile is asked of Django again. That check is one cache
  read per tile instead of the database queries of a full access check.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import aget_user
from django.http import Http404, HttpRequest

from apps.accounts import access
from apps.accounts.auth import auser_from_token, token_key

from . import selectors
from .tile_response import TileResponse, tile_response

TILE_PATH = re.compile(r"^/slides/(\d+)_files/(\d+)/(\d+)_(\d+)\.jpeg$")
GRANT_SECONDS = 60
MAX_GRANTS = 10_000


@dataclass(frozen=True)
class Grant:
    sha256: str
    path: Path
    expires: float
    user_id: int
    generation: access.Generation


#: Who asks: ``("session", key)`` or ``("token", key)``.
Credential = tuple[str, str]


async def _user_of(credential: Credential) -> Any:
    kind, key = credential
    if kind == "token":
        return await auser_from_token(key)
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    return await aget_user(request)


async def _grant_for(credential: Credential, slide_id: int) -> Grant | None:
    """Ask Django whether this credential's user may see this ready slide (async ORM only)."""
    user = await _user_of(credential)
    if user is None or not user.is_authenticated:
        return None
    # Read before the access check: a revocation during it voids this grant at the next tile.
    generation = await access.ageneration(user.pk)
    try:
        slide = await selectors.avisible_slide_or_404(user, slide_id, ready=True)
    except Http404:  # Django's own view answers it, with the same 404
        return None
    expires = time.monotonic() + GRANT_SECONDS
    return Grant(slide.sha256, slide.viewable_file, expires, user.pk, generation)


class DeepZoomTiles:
    """ASGI middleware: serve granted tile requests, pass everything else to ``app``."""

    def __init__(self, app) -> None:
        self.app = app
        self._grants: dict[tuple[Credential, int], Grant] = {}

    async def __call__(self, scope, receive, send) -> None:
        match = TILE_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        slide_id, level, col, row = (int(g) for g in match.groups())
        headers = dict(scope["headers"])
        grant = await self._grant(headers, slide_id)
        if grant is None:
            return await self.app(scope, receive, send)
        if_none_match = headers.get(b"if-none-match")
        answer = await tile_response(
            sha256=grant.sha256,
            path=grant.path,
            level=level,
            col=col,
            row=row,
            if_none_match=if_none_match.decode("latin-1") if if_none_match else None,
            head=scope["method"] == "HEAD",
        )
        await _respond(send, answer)

    async def _grant(self, headers: dict, slide_id: int) -> Grant | None:
        credential = _credential(headers)
        if credential is None:
            return None
        key = (credential, slide_id)
        grant = self._grants.get(key)
        if (
            grant is not None
            and grant.expires > time.monotonic()
            and grant.generation == await access.ageneration(grant.user_id)
        ):
            return grant
        grant = await _grant_for(credential, slide_id)
        if len(self._grants) >= MAX_GRANTS:
            self._grants.clear()
        if grant is not None:
            self._grants[key] = grant
        else:
            self._grants.pop(key, None)
        return grant


def _credential(headers: dict) -> Credential | None:
    """The request's token (it wins, as in DRF's order it is explicit) or session key."""
    authorization = headers.get(b"authorization")
    if authorization is not None:
        key = token_key(authorization.decode("latin-1"))
        # A malformed header goes to Django, which answers 401.
        return ("token", key) if key else None
    session_key = _session_key(headers.get(b"cookie", b""))
    return ("session", session_key) if session_key else None


# Parsing the Cookie header was half the cost of a cached tile; a client sends the same one.
@functools.lru_cache(maxsize=4096)
def _session_key(cookie_header: bytes) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(cookie_header.decode("latin-1"))
    except CookieError:  # a malformed Cookie header: treat the request as anonymous
        return None
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel else None


async def _respond(send, answer: TileResponse) -> None:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
