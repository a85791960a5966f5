"""The ASGI tile fast path answers exactly what the Django tile view would, only faster."""

from __future__ import annotations

import io

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from PIL import Image

from apps.slides.deepzoom import TileLRU
from apps.slides.tile_asgi import DeepZoomTiles
from tests.conftest import SLIDES_DIR

# The fast path asks Django for access from a worker thread, so the data must be committed.
# No synchronous ORM call may hide in the async paths: Django's guard stays on.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_async_checks"),
]


@pytest.fixture
def cmu(ingest_path):
    return ingest_path(SLIDES_DIR / "cmu-1-small-region.svs")


@pytest.fixture
def app():
    return DeepZoomTiles(get_asgi_application())


@pytest.fixture(params=["fast path", "django view"])
def either(request):
    """The same ASGI request answered by the fast path, or by Django's tile view alone."""
    django_app = get_asgi_application()
    return DeepZoomTiles(django_app) if request.param == "fast path" else django_app


@pytest.fixture
def damaged(ingest_path):
    """A slide that ingested fine and whose file was then damaged on disk: it still opens,
    but its pixels no longer decode (unreadable.svs is small.svs with a corrupt JPEG)."""
    slide = ingest_path(SLIDES_DIR / "small.svs", copy=True)
    assert slide.status == "ready", slide.error
    slide.stored_file.chmod(0o644)
    slide.stored_file.write_bytes((SLIDES_DIR / "unreadable.svs").read_bytes())
    return slide


def _get(app, path: str, *, cookie: str = "", method: str = "GET", headers=()):
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode()), *headers],
    }

    async def run():
        comm = ApplicationCommunicator(app, scope)
        await comm.send_input({"type": "http.request", "body": b""})
        start = await comm.receive_output(30)
        body = b""
        while True:
            message = await comm.receive_output(30)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        return start["status"], {k.lower(): v for k, v in start["headers"]}, body

    return async_to_sync(run)()


def _session_of(client, user) -> str:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_member_gets_the_same_tile_as_from_the_django_view(app, client, owner, cmu):
    cookie = _session_of(client, owner)
    status, headers, body = _get(app, f"/slides/{cmu.pk}_files/12/3_4.jpeg", cookie=cookie)
    assert status == 200 and headers[b"content-type"] == b"image/jpeg"
    assert body == client.get(f"/slides/{cmu.pk}_files/12/3_4.jpeg").content
    assert Image.open(io.BytesIO(body)).size == (256, 256)
    again = _get(
        app,
        f"/slides/{cmu.pk}_files/12/3_4.jpeg",
        cookie=cookie,
        headers=[(b"if-none-match", headers[b"etag"])],
    )
    assert again[0] == 304 and again[2] == b""


def test_outsider_falls_through_to_django_and_gets_404(app, client, outsider, cmu):
    status, _, body = _get(
        app, f"/slides/{cmu.pk}_files/12/0_0.jpeg", cookie=_session_of(client, outsider)
    )
    assert status == 404 and not body.startswith(b"\xff\xd8")


def test_anonymous_request_is_sent_to_log_in(app, cmu):
    status, headers, _ = _get(app, f"/slides/{cmu.pk}_files/12/0_0.jpeg")
    assert status == 302 and b"/login/" in headers[b"location"]


def test_out_of_range_tile_is_404(app, client, owner, cmu):
    cookie = _session_of(client, owner)
    assert _get(app, f"/slides/{cmu.pk}_files/12/999_0.jpeg", cookie=cookie)[0] == 404
    assert _get(app, f"/slides/{cmu.pk}_files/99/0_0.jpeg", cookie=cookie)[0] == 404


def test_head_answers_headers_without_a_body(app, client, owner, cmu):
    status, headers, body = _get(
        app, f"/slides/{cmu.pk}_files/12/1_1.jpeg", cookie=_session_of(client, owner), method="HEAD"
    )
    assert status == 200 and body == b"" and headers[b"etag"]


def test_other_paths_go_to_django(app, client, owner, cmu):
    status, headers, body = _get(app, f"/api/slides/{cmu.pk}/", cookie=_session_of(client, owner))
    assert status == 200 and b'"status":"ready"' in body


def test_tile_memory_cache_evicts_least_recently_used_past_its_byte_budget():
    lru = TileLRU(max_bytes=10)
    lru.put("a", b"12345")
    lru.put("b", b"12345")
    assert lru.get("a") == b"12345"  # "a" is now the most recent
    lru.put("c", b"12345")
    assert lru.get("b") is None and lru.get("a") and lru.get("c")


# -- both paths answer alike (tile_response.tile_response is the one answer) ---------------

#: The headers a client reads, which must not depend on which path answered.
ANSWER_HEADERS = (b"content-type", b"etag", b"cache-control", b"content-length")


def test_both_paths_answer_a_tile_with_the_same_bytes_and_headers(client, owner, cmu):
    cookie = _session_of(client, owner)
    url = f"/slides/{cmu.pk}_files/12/2_3.jpeg"
    fast = _get(DeepZoomTiles(get_asgi_application()), url, cookie=cookie)
    django = _get(get_asgi_application(), url, cookie=cookie)
    assert fast[0] == django[0] == 200 and fast[2] == django[2]
    assert {h: fast[1][h] for h in ANSWER_HEADERS} == {h: django[1][h] for h in ANSWER_HEADERS}
    assert fast[1][b"content-length"] == str(len(fast[2])).encode()


def test_a_matching_if_none_match_is_304_and_a_stale_one_gets_the_tile(either, client, owner, cmu):
    cookie = _session_of(client, owner)
    url = f"/slides/{cmu.pk}_files/12/1_2.jpeg"
    etag = _get(either, url, cookie=cookie)[1][b"etag"]
    status, headers, body = _get(either, url, cookie=cookie, headers=[(b"if-none-match", etag)])
    assert status == 304 and body == b"" and headers[b"etag"] == etag
    stale = _get(either, url, cookie=cookie, headers=[(b"if-none-match", b'"0ld"')])
    assert stale[0] == 200 and stale[2].startswith(b"\xff\xd8")


def test_undecodable_pixels_are_422_with_the_reason(either, client, owner, damaged):
    status, headers, body = _get(
        either, f"/slides/{damaged.pk}_files/4/0_0.jpeg", cookie=_session_of(client, owner)
    )
    assert status == 422 and headers[b"content-type"].startswith(b"text/plain")
    assert b"could not be decoded" in body and b"etag" not in headers


def test_outsider_gets_404_and_no_pixels(either, client, outsider, cmu):
    status, _, body = _get(
        either, f"/slides/{cmu.pk}_files/12/0_0.jpeg", cookie=_session_of(client, outsider)
    )
    assert status == 404 and not body.startswith(b"\xff\xd8")


def test_a_slide_that_failed_ingest_has_no_tiles(either, client, owner, ingest_path):
    failed = ingest_path(SLIDES_DIR / "unreadable.svs")
    assert failed.status == "failed"
    status, _, body = _get(
        either, f"/slides/{failed.pk}_files/4/0_0.jpeg", cookie=_session_of(client, owner)
    )
    assert status == 404 and not body.startswith(b"\xff\xd8")


def test_a_tile_outside_the_pyramid_is_a_plain_404(either, client, owner, cmu):
    status, headers, body = _get(
        either, f"/slides/{cmu.pk}_files/12/0_999.jpeg", cookie=_session_of(client, owner)
    )
    assert status == 404 and body == b"no such tile"
    assert headers[b"content-type"].startswith(b"text/plain")


def test_head_states_the_length_of_the_get_and_sends_nothing(either, client, owner, cmu):
    cookie = _session_of(client, owner)
    url = f"/slides/{cmu.pk}_files/12/3_3.jpeg"
    got = _get(either, url, cookie=cookie)
    status, headers, body = _get(either, url, cookie=cookie, method="HEAD")
    assert status == 200 and body == b""
    assert headers[b"content-length"] == str(len(got[2])).encode()
    assert headers[b"etag"] == got[1][b"etag"]


@pytest.mark.parametrize("level", ["-1", "1000000000000", "9" * 40])
def test_a_level_below_zero_or_absurdly_high_is_404_on_both_paths(
    either, client, owner, cmu, level
):
    cookie = _session_of(client, owner)
    status, _, body = _get(either, f"/slides/{cmu.pk}_files/{level}/0_0.jpeg", cookie=cookie)
    assert status == 404 and not body.startswith(b"\xff\xd8")
