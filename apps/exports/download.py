"""Resumable file downloads: one byte range per request (HTTP Range, RFC 9110 §14).

A client that lost a connection asks for ``Range: bytes=<got>-`` and appends what comes
back. ``If-Range`` with a stale ETag gets the whole file again, so a replaced file is never
spliced onto an old one. Multi-range requests are answered with the whole file (allowed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 20


def etag_of(path: Path) -> str:
    stat = path.stat()
    return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """``(first, last)`` inclusive for a single satisfiable range; ``None`` for a header to
    ignore (malformed or several ranges); ``False`` for an unsatisfiable one (416)."""
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        length = int(last)
        return (max(size - length, 0), size - 1) if length and size else False
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


def ranged_file_response(request: HttpRequest, path: Path, *, filename: str) -> HttpResponseBase:
    """The file, or the byte range the request asks for (206), or 416."""
    size, etag = path.stat().st_size, etag_of(path)
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    wanted = parse_range(header, size) if header and (not if_range or if_range == etag) else None
    response: HttpResponseBase
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif wanted is None:
        response = FileResponse(path.open("rb"), as_attachment=True, filename=filename)
    else:
        assert isinstance(wanted, tuple)  # parse_range's only other answer
        first, last = wanted
        response = StreamingHttpResponse(_chunks(path, first, last - first + 1), status=206)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
        response["Content-Type"] = "application/zip"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    return response


def _chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        while length > 0:
            data = handle.read(min(_CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data
