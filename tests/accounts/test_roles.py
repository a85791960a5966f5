"""Role predicates: one answer per membership, one query per request, and per-action checks."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts import roles
from apps.accounts.models import Role
from apps.accounts.services import add_member
from tests.annotations.conftest import own_set

pytestmark = pytest.mark.django_db

#: The one query that reads a user's memberships for the role memo.
MEMBERSHIP_LOOKUP = 'SELECT "accounts_membership"."project_id" AS "project_id", "accounts_'


def as_user(user) -> APIClient:
    """An API client authenticated as ``user`` (that very object, memo included)."""
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_each_role_answers_its_questions(owner, member, reviewer, outsider, project):
    answers = {
        user.username: (
            roles.role_of(user, project),
            roles.is_member(user, project),
            roles.is_admin(user, project),
            roles.is_reviewer_or_admin(user, project.pk),
        )
        for user in (owner, member, reviewer, outsider)
    }
    assert answers == {
        "owner": (Role.ADMIN, True, True, True),
        "member": (Role.ANNOTATOR, True, False, False),
        "reviewer": (Role.REVIEWER, True, False, True),
        "outsider": (None, False, False, False),
    }


def test_repeated_role_checks_cost_one_query(django_user_model, django_assert_num_queries, project):
    owner = django_user_model.objects.get(username="owner")
    with django_assert_num_queries(1):
        assert roles.is_admin(owner, project)
        assert roles.is_reviewer_or_admin(owner, project)
        assert roles.role_of(owner, project.pk) == Role.ADMIN


def test_an_anonymous_user_has_no_role_and_costs_no_query(django_assert_num_queries, project):
    with django_assert_num_queries(0):
        assert roles.role_of(AnonymousUser(), project) is None


def test_a_changed_membership_is_seen_at_once(member, project):
    assert not roles.is_reviewer_or_admin(member, project)
    add_member(project=project, user=member, role=Role.REVIEWER)
    assert roles.is_reviewer_or_admin(member, project)


def test_a_request_reads_the_memberships_once(django_user_model, owner, member, slide):
    """Reopening asks twice (the permission class, then the service): one lookup."""
    admin = as_user(owner)
    task = admin.post(
        "/api/tasks/", {"slide": slide.pk, "stage": "cell", "annotator": member.pk}, format="json"
    ).json()
    as_user(member).post(f"/api/tasks/{task['id']}/submit/")
    fresh_admin = as_user(django_user_model.objects.get(pk=owner.pk))  # as a new request has
    with CaptureQueriesContext(connection) as queries:
        response = fresh_admin.post(f"/api/tasks/{task['id']}/reopen/", {"note": "redo"})
    assert response.status_code == 200, response.content
    lookups = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(MEMBERSHIP_LOOKUP)]
    assert len(lookups) == 1


def test_a_reviewer_adjudicates_but_does_not_administer(reviewer, member, slide):
    api = as_user(reviewer)
    assigned = api.post(
        "/api/tasks/", {"slide": slide.pk, "stage": "cell", "annotator": member.pk}, format="json"
    )
    assert assigned.status_code == 403
    assert assigned.json()["detail"] == "Only a project admin may do this."
    new_class = {"key": "x_cell", "name": "X", "colour": "#010203", "hotkey": "g"}
    url = f"/api/projects/{slide.project_id}/label-classes/"
    assert api.post(url, new_class, format="json").status_code == 403
    assert api.get(url).status_code == 200
    # Adjudication is theirs: past the permission, the stage is simply not ready yet.
    adjudication = api.post(f"/api/agreement/slides/{slide.pk}/adjudication/?stage=cell", {})
    assert adjudication.status_code == 409 and adjudication.json()["status"] == "no_tasks"
    assert own_set(api, slide, "cell")  # and they may annotate too
