"""A project admin manages the team through the API; every change is in the audit log."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.accounts.models import Membership, MembershipEvent, Role

pytestmark = pytest.mark.django_db


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def members_url(project, tail: str = "") -> str:
    return f"/api/projects/{project.pk}/members/{tail}"


def test_an_admin_adds_a_user_by_username_or_email(project, owner, django_user_model):
    django_user_model.objects.create_user("carol", email="Carol@lab.example", password="x")
    django_user_model.objects.create_user("dave", password="x")
    admin = as_user(owner)
    assert admin.post(members_url(project), {"user": "dave", "role": "reviewer"}).status_code == 201
    by_email = admin.post(members_url(project), {"user": "carol@lab.example", "role": "annotator"})
    assert by_email.status_code == 201 and by_email.json()["username"] == "carol"
    listed = {m["username"]: m["role"] for m in admin.get(members_url(project)).json()}
    assert listed == {
        "owner": "admin",
        "member": "annotator",
        "dave": "reviewer",
        "carol": "annotator",
    }


def test_an_unknown_user_or_a_member_twice_is_refused(project, owner, member):
    admin = as_user(owner)
    assert (
        admin.post(members_url(project), {"user": "nobody", "role": "annotator"}).status_code == 404
    )
    again = admin.post(members_url(project), {"user": "member", "role": "reviewer"})
    assert again.status_code == 409 and "change their role" in again.json()["detail"]


def test_an_admin_changes_a_role_and_removes_a_member(project, owner, member):
    admin = as_user(owner)
    changed = admin.patch(members_url(project, f"{member.pk}/"), {"role": "reviewer"})
    assert changed.status_code == 200 and changed.json()["role"] == "reviewer"
    assert roles.role_of(member, project) == Role.REVIEWER
    assert admin.delete(members_url(project, f"{member.pk}/")).status_code == 204
    assert not Membership.objects.filter(project=project, user=member).exists()
    # Their next request is refused at once: the slide list no longer has the project.
    assert as_user(member).get(f"/api/projects/{project.pk}/").status_code == 404


def test_the_last_admin_can_be_neither_removed_nor_demoted(project, owner, member):
    admin = as_user(owner)
    demote = admin.patch(members_url(project, f"{owner.pk}/"), {"role": "annotator"})
    assert demote.status_code == 409 and "last admin" in demote.json()["detail"]
    assert admin.delete(members_url(project, f"{owner.pk}/")).status_code == 409
    admin.patch(members_url(project, f"{member.pk}/"), {"role": "admin"})
    assert (
        admin.patch(members_url(project, f"{owner.pk}/"), {"role": "reviewer"}).status_code == 200
    )


def test_a_created_user_gets_a_one_time_password_and_must_change_it(project, owner, client):
    created = as_user(owner).post(
        members_url(project, "new-user/"),
        {"username": "erin", "email": "erin@lab.example", "role": "annotator"},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["member"]["username"] == "erin" and len(body["password"]) >= 12
    assert (
        client.post("/login/", {"username": "erin", "password": body["password"]}).status_code
        == 302
    )
    assert client.get("/").url == "/account/password/"
    assert client.get("/api/projects/").status_code == 403
    changed = client.post(
        "/account/password/",
        {
            "old_password": body["password"],
            "new_password1": "a-long-new-pass-829",
            "new_password2": "a-long-new-pass-829",
        },
    )
    assert changed.status_code == 302
    assert client.get("/").status_code == 200
    assert [p["name"] for p in client.get("/api/projects/").json()["results"]] == ["Marrow study"]


def test_only_the_projects_admins_manage_its_team(project, member, outsider, reviewer):
    add = {"user": "outsider", "role": "admin"}
    assert as_user(member).post(members_url(project), add).status_code == 403
    assert as_user(reviewer).get(members_url(project, "audit/")).status_code == 403
    assert as_user(outsider).post(members_url(project), add).status_code == 404
    assert not Membership.objects.filter(project=project, user=outsider).exists()


def test_every_change_is_in_the_audit_log_with_who_did_it(project, owner, member, reviewer):
    admin = as_user(owner)
    admin.patch(members_url(project, f"{member.pk}/"), {"role": "reviewer"})
    admin.delete(members_url(project, f"{member.pk}/"))
    admin.post(members_url(project, "new-user/"), {"username": "frank", "role": "annotator"})
    log = admin.get(members_url(project, "audit/")).json()
    assert [(e["action"], e["username"], e["old_role"], e["new_role"]) for e in log] == [
        ("added", "frank", "", "annotator"),
        ("user_created", "frank", "", ""),
        ("removed", "member", "reviewer", ""),
        ("role_changed", "member", "annotator", "reviewer"),
        ("added", "reviewer", "", "reviewer"),
        ("added", "member", "", "annotator"),
        ("added", "owner", "", "admin"),
    ]
    assert {e["actor"] for e in log[:4]} == {"owner"}
    assert MembershipEvent.objects.filter(project=project).count() == len(log)


def test_a_user_makes_and_revokes_their_api_token(member):
    me = as_user(member)
    assert me.get("/api/me/token/").status_code == 404
    key = me.post("/api/me/token/").json()["key"]
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert token_client.get("/api/projects/").status_code == 200
    assert "key" not in me.get("/api/me/token/").json()
    assert me.delete("/api/me/token/").status_code == 204
    # DRF answers 403, not 401: its first scheme (the session) names no WWW-Authenticate.
    assert token_client.get("/api/projects/").status_code == 403
