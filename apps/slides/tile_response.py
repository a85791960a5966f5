"""The one deep-zoom tile response, for the Django tile view and the ASGI fast path alike.

Each path decides access its own way (the view through Django's middleware, the fast path
through a remembered grant; both with :func:`apps.slides.selectors.avisible_slide_or_404`),
then asks :func:`tile_response` for everything a client sees: the ETag, 304 on a matching
``If-None-Match``, 404 outside the pyramid, 422 when the pixels cannot be decoded, the cache
header and HEAD's empty body. A path only turns the answer into its own kind of response.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import deepzoom

#: Tiles of a given file never change (the URL's slide maps to one SHA-256), but they are
#: private to the project's members.
CACHE_CONTROL = "private, max-age=86400"


@dataclass(frozen=True)
class TileResponse:
    """``headers`` are complete except for what a server adds (Date, Server)."""

    status: int
    headers: dict[str, str]
    body: bytes


async def tile_response(
    *,
    sha256: str,
    path: Path,
    level: int,
    col: int,
    row: int,
    if_none_match: str | None,
    head: bool = False,
) -> TileResponse:
    """The answer to a GET (or HEAD) of tile ``(col, row)`` of deep-zoom ``level``.

    ``sha256`` and ``path`` are a ready slide's content hash and viewable file, already
    authorized. ``if_none_match`` is the request's header, compared verbatim with the ETag.
    """
    etag = f'"{deepzoom.tile_etag(sha256, level, col, row)}"'
    if if_none_match == etag:
        return TileResponse(304, {"ETag": etag}, b"")
    try:
        data = await deepzoom.aget_tile(path, sha256, level, col, row)
    except deepzoom.TileNotFound:
        return _text(404, "no such tile", head=head)
    except deepzoom.TileReadError as exc:
        return _text(422, exc.message, head=head)
    headers = {"Content-Type": "image/jpeg", "ETag": etag, "Cache-Control": CACHE_CONTROL}
    return _with_body(200, headers, data, head=head)


def _text(status: int, message: str, *, head: bool) -> TileResponse:
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    return _with_body(status, headers, message.encode(), head=head)


def _with_body(status: int, headers: dict[str, str], body: bytes, *, head: bool) -> TileResponse:
    # HEAD states the length a GET would send, and sends nothing.
    headers = headers | {"Content-Length": str(len(body))}
    return TileResponse(status, headers, b"" if head else body)
