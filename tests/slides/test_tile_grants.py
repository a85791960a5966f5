"""A tile grant of the ASGI fast path ends the moment access ends, and tokens reach the tiles.

The fast path remembers for up to a minute that a session may see a slide. A logout, a removed
membership or a deleted API token must void that at once, in this process and, with Redis, in
every other daphne process; a script with ``Authorization: Token <key>`` gets the DZI and the
tiles without a session.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.asgi import get_asgi_application
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from apps.accounts.models import Membership, Project
from apps.slides.tile_asgi import DeepZoomTiles
from tests.conftest import REPO, SLIDE_FILE
from tests.slides.test_tile_fast_path import _get

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_async_checks"),
]


@pytest.fixture
def cmu(ingest_path):
    return ingest_path(SLIDE_FILE)


def tile_url(slide) -> str:
    # reverse() also loads the URLconf here, not inside a timed ASGI call.
    return reverse("slides:tile", kwargs={"slide_id": slide.pk, "level": 10, "col": 0, "row": 0})


def logged_in(user) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}"


def test_a_logout_ends_the_tile_grant_at_once(cmu, member):
    app = DeepZoomTiles(get_asgi_application())
    client, cookie = logged_in(member)
    assert _get(app, tile_url(cmu), cookie=cookie)[0] == 200
    client.post("/logout/")
    status, headers, _ = _get(app, tile_url(cmu), cookie=cookie)
    assert status == 302 and headers[b"location"].startswith(b"/login/")


def test_a_removed_member_is_refused_the_next_tile(cmu, project, member):
    from apps.accounts.services import remove_member

    app = DeepZoomTiles(get_asgi_application())
    _, cookie = logged_in(member)
    assert _get(app, tile_url(cmu), cookie=cookie)[0] == 200
    remove_member(project=project, user=member, by=project.created_by)
    assert _get(app, tile_url(cmu), cookie=cookie)[0] == 404


def test_every_app_instance_in_the_process_drops_the_grant(cmu, project, member):
    viewers = [DeepZoomTiles(get_asgi_application()) for _ in range(2)]
    _, cookie = logged_in(member)
    assert [_get(app, tile_url(cmu), cookie=cookie)[0] for app in viewers] == [200, 200]
    Membership.objects.filter(project=project, user=member).delete()
    assert [_get(app, tile_url(cmu), cookie=cookie)[0] for app in viewers] == [404, 404]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI)")
def test_a_revocation_in_another_process_reaches_this_one_through_redis(cmu, project, member):
    app = DeepZoomTiles(get_asgi_application())
    _, cookie = logged_in(member)
    assert _get(app, tile_url(cmu), cookie=cookie)[0] == 200
    # Access ends without this process hearing of it (an update sends no signal) ...
    elsewhere = Project.objects.exclude(pk=project.pk).first()
    Membership.objects.filter(project=project, user=member).update(project=elsewhere)
    assert _get(app, tile_url(cmu), cookie=cookie)[0] == 200, "the grant is remembered"
    # ... and another process (another daphne) revokes: this one must ask Django again.
    revoke = "import django; django.setup(); from apps.accounts import access; access._bump(%d)"
    subprocess.run(
        [sys.executable, "-c", revoke % member.pk],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bmadcc_web.settings", "PYTHONPATH": "."},
        check=True,
    )
    assert _get(app, tile_url(cmu), cookie=cookie)[0] == 404


def test_a_token_reaches_the_dzi_and_the_tiles(cmu, member):
    key = Token.objects.create(user=member).key
    auth = [(b"authorization", f"Token {key}".encode())]
    fast = DeepZoomTiles(get_asgi_application())
    for app in (fast, get_asgi_application()):
        assert _get(app, f"/slides/{cmu.pk}.dzi", headers=auth)[0] == 200
        status, headers, body = _get(app, tile_url(cmu), headers=auth)
        assert status == 200 and headers[b"content-type"] == b"image/jpeg" and body


def test_a_wrong_or_deleted_token_is_401(cmu, member):
    token = Token.objects.create(user=member)
    auth = [(b"authorization", f"Token {token.key}".encode())]
    app = DeepZoomTiles(get_asgi_application())
    assert _get(app, tile_url(cmu), headers=auth)[0] == 200
    token.delete()
    assert _get(app, tile_url(cmu), headers=auth)[0] == 401
    wrong = [(b"authorization", b"Token " + b"0" * 40)]
    assert _get(app, f"/slides/{cmu.pk}.dzi", headers=wrong)[0] == 401


def test_an_outsiders_token_gets_404(cmu, outsider):
    auth = [(b"authorization", f"Token {Token.objects.create(user=outsider).key}".encode())]
    assert _get(DeepZoomTiles(get_asgi_application()), tile_url(cmu), headers=auth)[0] == 404
