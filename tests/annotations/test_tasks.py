"""Tasks: admins assign, annotators start and submit, only admins reopen, and it is recorded."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.annotations.models import Task, TaskEvent
from tests.annotations.conftest import add_cell, own_set

pytestmark = pytest.mark.django_db


def _assign(api, slide, user, stage="cell"):
    return api.post(
        "/api/tasks/", {"slide": slide.pk, "stage": stage, "annotator": user.pk}, format="json"
    )


def test_admin_assigns_and_the_annotator_gets_a_set(as_user, owner, member, slide):
    response = _assign(as_user(owner), slide, member)
    assert response.status_code == 201
    task = response.json()
    assert (task["state"], task["annotator"], task["blinded"]) == ("assigned", member.pk, True)
    sets = as_user(member).get(f"/api/annotation-sets/?slide={slide.pk}&stage=cell").json()
    assert [s["annotator"] for s in sets] == [member.pk]


def test_annotator_cannot_assign(as_user, member, partner, slide):
    assert _assign(as_user(member), slide, partner).status_code == 403
    assert not Task.objects.exists()


def test_assigning_a_non_member_is_refused(as_user, owner, outsider, slide):
    response = _assign(as_user(owner), slide, outsider)
    assert response.status_code == 400 and "not a member" in str(response.json())


def test_task_walks_assigned_in_progress_submitted(as_user, owner, member, slide):
    task_id = _assign(as_user(owner), slide, member).json()["id"]
    api = as_user(member)
    assert api.post(f"/api/tasks/{task_id}/start/").json()["state"] == "in_progress"
    submitted = api.post(f"/api/tasks/{task_id}/submit/").json()
    assert submitted["state"] == "submitted" and submitted["submitted_at"]
    again = api.post(f"/api/tasks/{task_id}/submit/")
    assert again.status_code == 409 and "already submitted" in again.json()["detail"]
    actions = list(TaskEvent.objects.filter(task_id=task_id).values_list("action", flat=True))
    assert actions == ["assign", "start", "submit"]


def test_first_annotation_starts_the_task(as_user, owner, member, slide):
    task_id = _assign(as_user(owner), slide, member).json()["id"]
    api = as_user(member)
    add_cell(api, own_set(api, slide, "cell"), 500, 500)
    assert Task.objects.get(pk=task_id).state == "in_progress"


def test_submitted_task_freezes_the_annotators_set(as_user, owner, member, slide):
    task_id = _assign(as_user(owner), slide, member).json()["id"]
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    cell = add_cell(api, set_id, 500, 500)
    api.post(f"/api/tasks/{task_id}/submit/")
    edit = api.patch(
        f"/api/annotations/{cell['id']}/", {"version": 1, "label": "basophil"}, format="json"
    )
    assert edit.status_code == 403 and "reopen" in edit.json()["detail"]
    assert (
        api.post("/api/annotations/bulk/", {"set": set_id, "items": []}, format="json").status_code
        == 403
    )


def test_only_an_admin_reopens_and_the_note_is_recorded(as_user, owner, member, slide):
    task_id = _assign(as_user(owner), slide, member).json()["id"]
    as_user(member).post(f"/api/tasks/{task_id}/submit/")
    assert (
        as_user(member)
        .post(f"/api/tasks/{task_id}/reopen/", {"note": "mine"}, format="json")
        .status_code
        == 403
    )
    assert (
        as_user(owner)
        .post(f"/api/tasks/{task_id}/reopen/", {"note": ""}, format="json")
        .status_code
        == 400
    )
    reopened = as_user(owner).post(
        f"/api/tasks/{task_id}/reopen/", {"note": "two cells missed"}, format="json"
    )
    assert reopened.status_code == 200 and reopened.json()["state"] == "in_progress"
    event = TaskEvent.objects.filter(task_id=task_id).last()
    assert (event.action, event.user, event.note) == ("reopen", owner, "two cells missed")
    assert (
        as_user(owner)
        .post(f"/api/tasks/{task_id}/reopen/", {"note": "again"}, format="json")
        .status_code
        == 409
    )


def test_annotators_list_their_own_tasks_and_admins_all(
    as_user, owner, member, partner, reviewer, slide
):
    admin = as_user(owner)
    for user in (member, partner):
        _assign(admin, slide, user)
    assert [t["annotator"] for t in as_user(partner).get("/api/tasks/").json()] == [partner.pk]
    assert len(as_user(reviewer).get(f"/api/tasks/?slide={slide.pk}&stage=cell").json()) == 2
    assert len(as_user(owner).get("/api/tasks/?stage=roi").json()) == 0


def test_only_the_assigned_annotator_submits(as_user, owner, member, slide):
    task_id = _assign(as_user(owner), slide, member).json()["id"]
    response = as_user(owner).post(f"/api/tasks/{task_id}/submit/")
    assert response.status_code == 403
    assert Task.objects.get(pk=task_id).state == "assigned"


def _listed(api) -> tuple[int, list[dict]]:
    """The task list as ``api`` sees it, and how many SQL queries it took."""
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/tasks/")
    assert response.status_code == 200, response.content
    return len(queries.captured_queries), response.json()


def test_the_task_list_costs_the_same_queries_for_one_task_or_many(
    as_user, owner, member, partner, reviewer, slide
):
    admin = as_user(owner)
    _assign(admin, slide, member)
    one, _ = _listed(admin)
    _assign(admin, slide, partner)
    roi_task = _assign(admin, slide, member, stage="roi").json()["id"]
    _assign(admin, slide, reviewer, stage="toi")
    as_user(member).post(f"/api/tasks/{roi_task}/submit/")
    many, tasks = _listed(admin)
    assert many == one
    # ``blinded`` is still per (slide, stage): the lone ROI task is submitted, nothing else.
    blinded = {(t["stage"], t["annotator"]): t["blinded"] for t in tasks}
    assert blinded == {
        ("cell", member.pk): True,
        ("cell", partner.pk): True,
        ("roi", member.pk): False,
        ("toi", reviewer.pk): True,
    }
