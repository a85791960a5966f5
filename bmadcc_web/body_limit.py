"""Oversized request bodies are refused before they are read, under daphne and WSGI alike.

Django checks ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only when a body is read through
``request.body`` or ``request.POST``; DRF's JSON parsers read the request stream directly, and
Django's ASGI handler spools the whole body to disk before any middleware runs. So the limit
is decided here, once (:func:`refusal`), and enforced by two thin layers:

- :class:`BodyLimitASGI`, in front of Django under daphne: answers 413 from the declared
  ``Content-Length`` without receiving a byte, and counts a chunked body (no length) as it
  arrives, refusing it as soon as it passes the limit;
- :class:`BodyLimitMiddleware`, for WSGI and the test client, from ``CONTENT_LENGTH``.

Multipart bodies (slide and annotation-file uploads) stream to disk and are bounded by
``SLIDE_UPLOAD_MAX_BYTES``; every other body by ``DATA_UPLOAD_MAX_MEMORY_SIZE``.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.errors import RequestTooLarge
from bmadcc_web.exception_handler import status_of


def limit_for(content_type: str) -> int:
    """The most bytes a body of ``content_type`` may have (0 = unlimited)."""
    if content_type.lower().startswith("multipart/"):
        return settings.SLIDE_UPLOAD_MAX_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0


def refusal(content_type: str, length: int) -> RequestTooLarge | None:
    """The error for a body of ``length`` bytes, or None when it is within its limit."""
    limit = limit_for(content_type)
    if not limit or length <= limit:
        return None
    setting = (
        "SLIDE_UPLOAD_MAX_BYTES"
        if content_type.lower().startswith("multipart/")
        else "DATA_UPLOAD_MAX_MEMORY_SIZE"
    )
    return RequestTooLarge(
        f"the request body is {length:,} bytes or more, over the {limit:,} byte limit "
        f"({setting}); send fewer items per request",
        limit=limit,
    )


class BodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        error = refusal(request.content_type or "", int(raw)) if raw.isdigit() else None
        if error is not None:
            return JsonResponse({"detail": error.message, **error.data}, status=status_of(error))
        return self.get_response(request)


class BodyLimitASGI:
    """ASGI middleware: refuse an oversized HTTP body before (or while) it is received."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit():
            error = refusal(content_type, int(declared))
            if error is not None:
                return await _refuse(send, error)
            return await self.app(scope, receive, send)
        if headers.get(b"transfer-encoding") is None:
            return await self.app(scope, receive, send)
        # A chunked body states no length: take it in up to the limit, then hand it on.
        messages, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message]), send)
            size += len(message.get("body", b""))
            error = refusal(content_type, size)
            if error is not None:
                return await _refuse(send, error)
            messages.append(message)
            if not message.get("more_body"):
                return await self.app(scope, _replay(messages, receive), send)


def _replay(messages: list[dict], then=None):
    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        return await then() if then else {"type": "http.disconnect"}

    return receive


async def _refuse(send, error: RequestTooLarge) -> None:
    body = orjson.dumps({"detail": error.message, **error.data})
    await send(
        {
            "type": "http.response.start",
            "status": status_of(error),
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
