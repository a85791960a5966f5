"""A 100 MB JSON body is refused with 413 before it is read: under daphne's ASGI stack from
its declared length or, chunked, as soon as it passes the limit; under WSGI from CONTENT_LENGTH.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from bmadcc_web.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


def _post(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes, int]:
    """POST through the real ASGI application; returns (status, body, chunks it took in)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/annotations/bulk/",
        "raw_path": b"/api/annotations/bulk/",
        "query_string": b"",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
    }
    taken = 0

    async def run():
        nonlocal taken
        comm = ApplicationCommunicator(application, scope)
        for i, chunk in enumerate(chunks):
            await comm.send_input(
                {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            )
        start = await comm.receive_output(30)
        body = (await comm.receive_output(30))["body"]
        taken = len(chunks) - comm.input_queue.qsize()
        return start["status"], body

    status, body = async_to_sync(run)()
    return status, body, taken


def test_a_declared_100_mb_json_body_is_refused_before_a_byte_is_read():
    chunks = [b"[" + b"0," * (MB // 2)] * 100  # 100 MB offered, 1 MB at a time
    status, body, taken = _post(
        [(b"content-type", b"application/json"), (b"content-length", str(100 * MB).encode())],
        chunks,
    )
    assert status == 413
    assert b"over the 16,777,216 byte limit (DATA_UPLOAD_MAX_MEMORY_SIZE)" in body
    assert taken == 0


def test_a_chunked_100_mb_json_body_is_refused_once_it_passes_the_limit():
    chunks = [b"0," * (MB // 2)] * 100
    status, body, taken = _post(
        [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")], chunks
    )
    assert status == 413 and b"DATA_UPLOAD_MAX_MEMORY_SIZE" in body
    assert taken == 17  # 17 MB in, past the 16 MiB limit; the other 83 MB never read


def test_a_small_chunked_body_still_reaches_the_view():
    status, body, _ = _post(
        [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        [b'{"set": 1,', b' "items": []}'],
    )
    assert status in (401, 403)  # anonymous: the API's own answer, not the body limit's


def test_wsgi_refuses_a_100_mb_body_from_its_content_length(client, member):
    client.force_login(member)
    response = client.generic(
        "POST",
        "/api/annotations/bulk/",
        b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(100 * MB),
    )
    assert response.status_code == 413
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]
