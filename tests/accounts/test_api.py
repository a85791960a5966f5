"""Projects through the API, token auth, and scoping to the user's projects."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from apps.accounts.models import Membership, Role

pytestmark = pytest.mark.django_db


def test_creating_a_project_makes_the_creator_its_admin(api, owner):
    api.force_authenticate(owner)
    response = api.post("/api/projects/", {"name": "CML study"}, format="json")
    assert response.status_code == 201
    project_id = response.json()["id"]
    assert Membership.objects.get(project_id=project_id, user=owner).role == Role.ADMIN
    assert response.json()["my_role"] == "admin"


def test_project_list_shows_only_my_projects(api, member, project):
    api.force_authenticate(member)
    names = [p["name"] for p in api.get("/api/projects/").json()["results"]]
    assert names == ["Marrow study"]


def test_outsider_gets_404_for_a_project_it_does_not_belong_to(api, outsider, project):
    api.force_authenticate(outsider)
    assert api.get(f"/api/projects/{project.pk}/").status_code == 404


def test_token_from_drf_create_token_authenticates(api, owner, project, capsys):
    call_command("drf_create_token", "owner")
    key = Token.objects.get(user=owner).key
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/projects/").status_code == 200


def test_anonymous_api_calls_are_refused(api, project):
    assert api.get("/api/projects/").status_code in {401, 403}


def test_openapi_schema_and_swagger_are_served(client, owner):
    client.force_login(owner)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/slides/{id}/thumbnail/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    # Swagger UI is served from the sidecar package, not a CDN the lab may not reach.
    assert (
        b"cdn.jsdelivr.net" not in docs.content
        and b"/static/drf_spectacular_sidecar/" in docs.content
    )


def test_session_api_writes_need_the_csrf_token(owner, project):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post("/api/projects/", {"name": "x"}).status_code == 403
