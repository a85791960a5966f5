"""Blinding at the API: until every assigned annotator has submitted a (slide, stage), none of
them sees another's annotations through any endpoint; reviewers and admins always do."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.annotations.models import Annotation, AnnotationSet
from tests.annotations.conftest import add_cell, own_set, polygon

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(as_user, owner, member, partner, slide):
    """Both annotators assigned to the slide's cell stage; A (member) outlined two cells."""
    admin = as_user(owner)
    tasks = {}
    for user in (member, partner):
        response = admin.post(
            "/api/tasks/", {"slide": slide.pk, "stage": "cell", "annotator": user.pk}, format="json"
        )
        assert response.status_code == 201, response.content
        tasks[user.username] = response.json()["id"]
    api = as_user(member)
    set_a = own_set(api, slide, "cell")
    cells = [add_cell(api, set_a, 400, 400), add_cell(api, set_a, 900, 900, label="lymphocyte")]
    return {"set_a": set_a, "cells": cells, "tasks": tasks}


def _submit(as_user, user, task_id):
    response = as_user(user).post(f"/api/tasks/{task_id}/submit/")
    assert response.status_code == 200, response.content


def test_blinded_annotator_cannot_list_partner_cells(as_user, partner, slide, study):
    api = as_user(partner)
    assert api.get(f"/api/annotations/?slide={slide.pk}&stage=cell").json() == []
    assert api.get(f"/api/annotations/?slide={slide.pk}").json() == []
    by_set = api.get(f"/api/annotations/?slide={slide.pk}&set={study['set_a']}")
    assert by_set.status_code == 200 and by_set.json() == []


def test_blinded_annotator_sees_no_partner_set_or_count(as_user, partner, slide, study):
    api = as_user(partner)
    own_set(api, slide, "cell")
    sets = api.get(f"/api/annotation-sets/?slide={slide.pk}&stage=cell").json()
    assert [(s["annotator"], s["annotation_count"]) for s in sets] == [(partner.pk, 0)]
    assert api.get(f"/api/annotation-sets/{study['set_a']}/").status_code == 404


def test_blinded_annotator_gets_404_on_every_per_object_endpoint(as_user, partner, slide, study):
    api = as_user(partner)
    cell = study["cells"][0]["id"]
    assert api.get(f"/api/annotations/{cell}/").status_code == 404
    assert api.get(f"/api/annotations/{cell}/history/").status_code == 404
    assert api.get(f"/api/annotations/{cell}/crop.jpeg").status_code == 404
    assert (
        api.patch(
            f"/api/annotations/{cell}/", {"version": 1, "label": "basophil"}, format="json"
        ).status_code
        == 404
    )
    assert api.delete(f"/api/annotations/{cell}/?version=1").status_code == 404
    assert (
        api.get(f"/api/annotation-sets/{study['set_a']}/export/?format=geojson").status_code == 404
    )
    upload = SimpleUploadedFile("x.json", json.dumps({"shapes": []}).encode())
    imported = api.post(
        f"/api/annotation-sets/{study['set_a']}/import/",
        {"file": upload, "format": "labelme"},
        format="multipart",
    )
    assert imported.status_code == 404
    written = api.post(
        "/api/annotations/", {"set": study["set_a"], "geometry": polygon(300, 300)}, format="json"
    )
    assert written.status_code == 404
    bulk = api.post("/api/annotations/bulk/", {"set": study["set_a"], "items": []}, format="json")
    assert bulk.status_code == 404
    assert Annotation.objects.get(pk=cell).label == "myeloblast"


def test_one_submission_is_not_enough(as_user, member, partner, slide, study):
    _submit(as_user, member, study["tasks"]["member"])
    assert as_user(partner).get(f"/api/annotations/?slide={slide.pk}&stage=cell").json() == []


def test_after_both_submit_both_see_each_other(as_user, member, partner, slide, study):
    api = as_user(partner)
    set_b = own_set(api, slide, "cell")
    mine = add_cell(api, set_b, 1500, 1500, label="basophil")
    _submit(as_user, member, study["tasks"]["member"])
    _submit(as_user, partner, study["tasks"]["partner"])

    seen_by_b = as_user(partner).get(f"/api/annotations/?slide={slide.pk}&stage=cell").json()
    seen_by_a = as_user(member).get(f"/api/annotations/?slide={slide.pk}&stage=cell").json()
    expected = sorted([c["id"] for c in study["cells"]] + [mine["id"]])
    assert sorted(a["id"] for a in seen_by_b) == expected
    assert sorted(a["id"] for a in seen_by_a) == expected
    history = as_user(partner).get(f"/api/annotations/{study['cells'][0]['id']}/history/")
    assert history.status_code == 200 and history.json()[0]["action"] == "create"
    counts = {
        s["annotator"]: s["annotation_count"]
        for s in as_user(partner).get(f"/api/annotation-sets/?slide={slide.pk}&stage=cell").json()
    }
    assert counts == {member.pk: 2, partner.pk: 1}


def test_unblinded_partner_still_cannot_edit_another_set(as_user, member, partner, slide, study):
    _submit(as_user, member, study["tasks"]["member"])
    _submit(as_user, partner, study["tasks"]["partner"])
    cell = study["cells"][0]["id"]
    response = as_user(partner).patch(
        f"/api/annotations/{cell}/", {"version": 1, "label": "basophil"}, format="json"
    )
    assert response.status_code == 403


def test_reopening_a_task_blinds_the_stage_again(as_user, owner, member, partner, slide, study):
    _submit(as_user, member, study["tasks"]["member"])
    _submit(as_user, partner, study["tasks"]["partner"])
    reopened = as_user(owner).post(
        f"/api/tasks/{study['tasks']['partner']}/reopen/", {"note": "missed cells"}, format="json"
    )
    assert reopened.status_code == 200
    assert as_user(partner).get(f"/api/annotations/?slide={slide.pk}&stage=cell").json() == []


def test_reviewer_and_admin_always_see_every_set(as_user, owner, reviewer, slide, study):
    for user in (owner, reviewer):
        api = as_user(user)
        listed = api.get(f"/api/annotations/?slide={slide.pk}&stage=cell").json()
        assert sorted(a["id"] for a in listed) == sorted(c["id"] for c in study["cells"])
        assert api.get(f"/api/annotations/{study['cells'][0]['id']}/history/").status_code == 200


def test_other_stages_are_blinded_on_their_own(as_user, member, partner, slide, study):
    api = as_user(member)
    add_cell_roi = api.post(
        "/api/annotations/",
        {"set": own_set(api, slide, "roi"), "geometry": polygon(1000, 1000, r=500)},
        format="json",
    )
    assert add_cell_roi.status_code == 201
    # No ROI tasks are assigned: an unassigned stage stays blinded for annotators.
    assert as_user(partner).get(f"/api/annotations/?slide={slide.pk}&stage=roi").json() == []


def test_outsider_gets_404_everywhere(as_user, outsider, slide, study):
    api = as_user(outsider)
    cell = study["cells"][0]["id"]
    assert api.get(f"/api/annotations/?slide={slide.pk}").status_code == 404
    assert api.get(f"/api/annotations/{cell}/").status_code == 404
    assert api.get(f"/api/annotations/{cell}/history/").status_code == 404
    assert api.get(f"/api/annotations/{cell}/crop.jpeg").status_code == 404
    assert api.get(f"/api/annotation-sets/{study['set_a']}/").status_code == 404
    assert api.get(f"/api/annotation-sets/?slide={slide.pk}").json() == []
    assert (
        api.post(
            "/api/annotation-sets/", {"slide": slide.pk, "stage": "cell"}, format="json"
        ).status_code
        == 404
    )
    assert api.get(f"/api/tasks/{study['tasks']['member']}/").status_code == 404
    assert api.get(f"/api/slides/{slide.pk}/toi-grid/").status_code == 404
    assert (
        api.post(f"/api/slides/{slide.pk}/sam/", {"x": 10, "y": 10}, format="json").status_code
        == 404
    )
    assert api.get(f"/api/projects/{slide.project_id}/label-classes/").status_code == 404


def test_blind_state_and_the_queryset_rule_agree_at_every_step(owner, member, partner, slide):
    from apps.annotations import selectors, services

    aset = services.get_or_create_annotator_set(slide=slide, stage="cell", user=member)

    def states() -> tuple[tuple[int, int, bool], bool]:
        state = selectors.blind_state(slide, "cell")
        unblinded = AnnotationSet.objects.filter(pk=aset.pk).filter(selectors.stage_unblinded())
        return (state.tasks, state.submitted, state.blinded), not unblinded.exists()

    assert states() == ((0, 0, True), True)  # nothing assigned yet: blinded
    tasks = [
        services.assign_task(slide=slide, stage="cell", annotator=user, assigned_by=owner)
        for user in (member, partner)
    ]
    assert states() == ((2, 0, True), True)
    services.submit_task(task=tasks[0], user=member)
    assert states() == ((2, 1, True), True)
    services.submit_task(task=tasks[1], user=partner)
    assert states() == ((2, 2, False), False)
    services.reopen_task(task=tasks[1], user=owner, note="missed cells")
    assert states() == ((2, 1, True), True)
