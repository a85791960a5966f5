"""The label schema per project: 22 default classes; rename, add, retire; never corrupt labels."""

from __future__ import annotations

import pytest

from apps.annotations.models import Annotation, LabelClass
from ml.classes import DEFAULT_CLASSES
from tests.annotations.conftest import add_cell, own_set, polygon

pytestmark = pytest.mark.django_db


def _classes_url(project):
    return f"/api/projects/{project.pk}/label-classes/"


def _class_id(project, key):
    return LabelClass.objects.get(project=project, key=key).pk


def test_a_new_project_gets_the_22_default_classes_16_counted(as_user, member, project):
    classes = as_user(member).get(_classes_url(project)).json()
    assert [c["key"] for c in classes] == [c.key for c in DEFAULT_CLASSES]
    assert sum(c["counted"] for c in classes) == 16
    assert len({c["hotkey"] for c in classes}) == 22


def test_rename_changes_the_name_only_and_stored_labels_keep_their_key(
    as_user, owner, member, project, slide
):
    api = as_user(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 500, 500, label="myeloblast")
    url = f"{_classes_url(project)}{_class_id(project, 'myeloblast')}/"
    renamed = as_user(owner).patch(url, {"name": "Blast (myeloid)"}, format="json")
    assert renamed.status_code == 200
    assert (renamed.json()["key"], renamed.json()["name"]) == ("myeloblast", "Blast (myeloid)")
    assert as_user(owner).patch(url, {"key": "blast"}, format="json").status_code == 400
    assert Annotation.objects.get(pk=cell["id"]).label == "myeloblast"
    listed = api.get(f"/api/annotations/?slide={slide.pk}&stage=cell").json()
    assert listed[0]["label"] == "myeloblast"


def test_class_in_use_cannot_be_deleted_only_retired(as_user, owner, member, project, slide):
    api = as_user(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 500, 500, label="basophil")
    api.delete(f"/api/annotations/{cell['id']}/?version=1")  # a deleted cell still holds the key
    url = f"{_classes_url(project)}{_class_id(project, 'basophil')}/"
    refused = as_user(owner).delete(url)
    assert refused.status_code == 409
    assert refused.json()["count"] == 1 and "retire" in refused.json()["detail"]
    retired = as_user(owner).patch(url, {"retired": True}, format="json")
    assert retired.status_code == 200 and retired.json()["retired"] is True
    assert Annotation.objects.get(pk=cell["id"]).label == "basophil"


def test_retired_class_is_refused_for_new_labels_but_kept_on_old_ones(
    as_user, owner, member, project, slide
):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    old = add_cell(api, set_id, 500, 500, label="smudge_cell")
    as_user(owner).patch(
        f"{_classes_url(project)}{_class_id(project, 'smudge_cell')}/",
        {"retired": True},
        format="json",
    )
    new = api.post(
        "/api/annotations/",
        {"set": set_id, "geometry": polygon(900, 900), "label": "smudge_cell"},
        format="json",
    )
    assert new.status_code == 400 and "retired" in new.json()["detail"]
    moved = api.patch(
        f"/api/annotations/{old['id']}/",
        {"version": 1, "geometry": polygon(700, 700)},
        format="json",
    )
    assert (
        moved.status_code == 200 and moved.json()["label"] == "smudge_cell"
    )  # moving is not a new use
    swapped = api.patch(
        f"/api/annotations/{old['id']}/", {"version": 2, "label": "smudge_cell"}, format="json"
    )
    assert swapped.status_code == 200  # re-sending the label it already has is fine too
    relabelled = api.patch(
        f"/api/annotations/{old['id']}/", {"version": 3, "label": "lymphocyte"}, format="json"
    )
    assert relabelled.status_code == 200
    back = api.patch(
        f"/api/annotations/{old['id']}/", {"version": 4, "label": "smudge_cell"}, format="json"
    )
    assert back.status_code == 400 and "retired" in back.json()["detail"]
    assert (
        api.get(f"/api/annotations/{old['id']}/history/").json()[0]["after"]["label"]
        == "smudge_cell"
    )


def test_a_retired_hotkey_is_free_for_a_new_class_and_unretiring_then_clashes(
    as_user, owner, project
):
    api = as_user(owner)
    url = f"{_classes_url(project)}{_class_id(project, 'prolymphocyte')}/"
    api.patch(url, {"retired": True}, format="json")
    added = api.post(
        _classes_url(project),
        {
            "key": "hairy_cell",
            "name": "Hairy cell",
            "colour": "#123456",
            "hotkey": "k",
            "counted": True,
        },
        format="json",
    )
    assert added.status_code == 201 and added.json()["order"] == 22
    clash = api.patch(url, {"retired": False}, format="json")
    assert clash.status_code == 400 and "already used by Hairy cell" in clash.json()["detail"]


def test_new_class_is_usable_as_a_label(as_user, owner, member, project, slide):
    as_user(owner).post(
        _classes_url(project),
        {"key": "mast_cell", "name": "Mast cell", "colour": "#abcdef", "hotkey": "g"},
        format="json",
    )
    api = as_user(member)
    assert (
        add_cell(api, own_set(api, slide, "cell"), 500, 500, label="mast_cell")["label"]
        == "mast_cell"
    )


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"key": "myeloblast", "hotkey": "g"}, "already used"),
        ({"key": "Bad Key", "hotkey": "g"}, "key"),
        ({"key": "new_one", "hotkey": "m"}, "already used by Myeloblast"),
        ({"key": "new_one", "hotkey": "n"}, "reserved"),
        ({"key": "new_one", "hotkey": "g", "colour": "red"}, "#rrggbb"),
    ],
)
def test_bad_new_classes_are_refused_with_reasons(as_user, owner, project, fields, reason):
    body = {"name": "New", "colour": "#010203", **fields}
    response = as_user(owner).post(_classes_url(project), body, format="json")
    assert response.status_code == 400 and reason in str(response.json())


def test_unused_class_is_deleted(as_user, owner, project):
    response = as_user(owner).delete(
        f"{_classes_url(project)}{_class_id(project, 'apoptotic_cell')}/"
    )
    assert response.status_code == 204
    assert not LabelClass.objects.filter(project=project, key="apoptotic_cell").exists()


def test_annotators_cannot_change_the_schema(as_user, member, project):
    api = as_user(member)
    url = f"{_classes_url(project)}{_class_id(project, 'monocyte')}/"
    assert api.patch(url, {"name": "Mono"}, format="json").status_code == 403
    assert api.delete(url).status_code == 403
    body = {"key": "x_cell", "name": "X", "colour": "#010203", "hotkey": "g"}
    assert api.post(_classes_url(project), body, format="json").status_code == 403
    assert LabelClass.objects.get(project=project, key="monocyte").name == "Monocyte"
