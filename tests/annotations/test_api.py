"""The annotations API: create, list, versioned edits with 409, soft delete, bulk, validation."""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apps.annotations.models import Annotation, AnnotationEvent
from tests.annotations.conftest import add_cell, own_set, polygon

pytestmark = pytest.mark.django_db


def test_created_cell_comes_back_with_version_box_and_in_the_compact_list(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    cell = add_cell(api, set_id, 500, 600, label="myeloblast")
    assert cell["version"] == 1 and cell["label"] == "myeloblast" and cell["stage"] == "cell"
    assert cell["bbox"] == [460.0, 560.0, 540.0, 640.0]
    listed = api.get(f"/api/annotations/?slide={slide.pk}&stage=cell").json()
    assert listed == [
        {
            "id": cell["id"],
            "set": set_id,
            "geometry": cell["geometry"],
            "label": "myeloblast",
            "tile_col": None,
            "tile_row": None,
            "version": 1,
            "annotator": member.pk,
        }
    ]


def test_viewport_bbox_keeps_only_overlapping_cells(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    near = add_cell(api, set_id, 200, 200)
    add_cell(api, set_id, 1800, 2500)
    listed = api.get(f"/api/annotations/?slide={slide.pk}&stage=cell&bbox=0,0,300,300").json()
    assert [a["id"] for a in listed] == [near["id"]]
    bad = api.get(f"/api/annotations/?slide={slide.pk}&bbox=0,0,300")
    assert bad.status_code == 400 and "bbox" in bad.json()


def test_two_concurrent_edits_one_wins_the_other_gets_409_and_history_holds_both(member, slide):
    first, second = APIClient(), APIClient()
    first.force_authenticate(member)
    second.force_authenticate(member)
    cell = add_cell(first, own_set(first, slide, "cell"), 800, 800, label="myeloblast")
    url = f"/api/annotations/{cell['id']}/"

    won = first.patch(url, {"version": 1, "label": "lymphocyte"}, format="json")
    lost = second.patch(url, {"version": 1, "label": "monocyte"}, format="json")

    assert won.status_code == 200 and won.json()["version"] == 2
    assert lost.status_code == 409
    assert lost.json()["current"]["label"] == "lymphocyte"
    assert lost.json()["current"]["version"] == 2
    history = first.get(f"{url}history/").json()
    assert [e["action"] for e in history] == ["create", "update", "conflict"]
    assert history[1]["before"]["label"] == "myeloblast"
    assert history[1]["after"]["label"] == "lymphocyte"
    assert history[2]["before"]["label"] == "lymphocyte"  # what the server held
    assert history[2]["after"] == {"label": "monocyte"}  # what the losing client sent
    assert history[2]["version"] == 1 and history[2]["username"] == member.username
    assert Annotation.objects.get(pk=cell["id"]).label == "lymphocyte"


def test_geometry_edit_moves_the_stored_box(as_user, member, slide):
    api = as_user(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 500, 500)
    moved = api.patch(
        f"/api/annotations/{cell['id']}/",
        {"version": 1, "geometry": polygon(1000, 1200)},
        format="json",
    )
    assert moved.status_code == 200
    assert moved.json()["bbox"] == [960.0, 1160.0, 1040.0, 1240.0]
    assert moved.json()["label"] == "myeloblast"


def test_delete_is_soft_versioned_and_restorable(as_user, member, slide):
    api = as_user(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 500, 500)
    url = f"/api/annotations/{cell['id']}/"
    assert api.delete(f"{url}?version=7").status_code == 409
    deleted = api.delete(f"{url}?version=1")
    assert deleted.status_code == 200 and deleted.json()["is_deleted"] is True
    assert api.get(f"/api/annotations/?slide={slide.pk}&stage=cell").json() == []
    assert Annotation.objects.filter(pk=cell["id"], is_deleted=True).exists()
    restored = api.post(f"{url}restore/", {"version": 2}, format="json")
    assert restored.status_code == 200 and restored.json()["version"] == 3
    actions = [e["action"] for e in api.get(f"{url}history/").json()]
    assert actions == ["create", "conflict", "delete", "restore"]
    assert len(api.get(f"/api/annotations/?slide={slide.pk}&stage=cell").json()) == 1


def test_delete_without_a_version_is_refused(as_user, member, slide):
    api = as_user(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 500, 500)
    response = api.delete(f"/api/annotations/{cell['id']}/")
    assert response.status_code == 400 and "version" in response.json()
    assert not Annotation.objects.get(pk=cell["id"]).is_deleted


@pytest.mark.parametrize(
    "geometry, reason",
    [
        (
            {"type": "Polygon", "coordinates": [[[10, 10], [50, 50], [10, 10]]]},
            "fewer than 3 distinct",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [100, 100], [100, 0], [0, 100]]]},
            "Self-intersection",
        ),
        (
            {"type": "Polygon", "coordinates": [[[10, 10], [5000, 10], [5000, 60]]]},
            "outside the slide",
        ),
        (polygon(1000, 1000, r=500, n=2500), "too many vertices"),
        ({"type": "Polygon", "coordinates": [[["x", 10], [50, 10], [50, 60]]]}, "finite numbers"),
    ],
)
def test_invalid_polygons_are_rejected_with_reasons_and_nothing_is_stored(
    as_user, member, slide, geometry, reason
):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    response = api.post(
        "/api/annotations/", {"set": set_id, "geometry": geometry, "label": ""}, format="json"
    )
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert not Annotation.objects.exists()


def test_edit_to_an_invalid_polygon_is_rejected_and_the_cell_is_unchanged(as_user, member, slide):
    api = as_user(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 500, 500)
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [100, 100], [100, 0], [0, 100]]]}
    response = api.patch(
        f"/api/annotations/{cell['id']}/", {"version": 1, "geometry": bowtie}, format="json"
    )
    assert response.status_code == 400 and "Self-intersection" in response.json()["detail"]
    stored = Annotation.objects.get(pk=cell["id"])
    assert stored.version == 1 and stored.geometry == cell["geometry"]


def test_labels_must_fit_the_stage(as_user, member, slide):
    api = as_user(member)
    cells, rois = own_set(api, slide, "cell"), own_set(api, slide, "roi")
    unknown = api.post(
        "/api/annotations/",
        {"set": cells, "geometry": polygon(300, 300), "label": "dragon"},
        format="json",
    )
    assert (
        unknown.status_code == 400
        and "unknown or retired cell class 'dragon'" in unknown.json()["detail"]
    )
    labelled_roi = api.post(
        "/api/annotations/",
        {"set": rois, "geometry": polygon(300, 300), "label": "myeloblast"},
        format="json",
    )
    assert labelled_roi.status_code == 400 and "ROI" in labelled_roi.json()["detail"]
    unclassified = api.post(
        "/api/annotations/", {"set": cells, "geometry": polygon(300, 300)}, format="json"
    )
    assert unclassified.status_code == 201 and unclassified.json()["label"] == ""


def test_bulk_saves_every_item_and_answers_ids_in_order(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    items = [
        {"geometry": polygon(100 + 90 * (i % 20), 100 + 90 * (i // 20)), "label": "lymphocyte"}
        for i in range(300)
    ]
    response = api.post("/api/annotations/bulk/", {"set": set_id, "items": items}, format="json")
    assert response.status_code == 201, response.content
    ids = response.json()["ids"]
    assert response.json()["created"] == 300 and len(ids) == 300
    stored = Annotation.objects.in_bulk(ids)
    assert [stored[i].min_x for i in ids] == [60.0 + 90 * (i % 20) for i in range(300)]
    assert AnnotationEvent.objects.filter(annotation_id__in=ids, action="create").count() == 300
    last = AnnotationEvent.objects.get(annotation_id=ids[-1])
    assert last.after == {
        "geometry": items[-1]["geometry"],
        "label": "lymphocyte",
        "tile_col": None,
        "tile_row": None,
        "is_deleted": False,
    }
    assert (last.user, last.version, last.before) == (member, 1, None)
    listed = api.get(f"/api/annotations/?slide={slide.pk}&stage=cell").json()
    assert [a["geometry"] for a in listed] == [i["geometry"] for i in items]


def test_bulk_is_all_or_nothing_with_errors_per_item(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    items = [{"geometry": polygon(200 + 100 * i, 300), "label": "basophil"} for i in range(10)]
    items[3]["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [100, 100], [100, 0], [0, 100]]],
    }
    items[7]["label"] = "dragon"
    response = api.post("/api/annotations/bulk/", {"set": set_id, "items": items}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["index"] for e in errors] == [3, 7]
    assert "Self-intersection" in errors[0]["detail"] and "dragon" in errors[1]["detail"]
    assert not Annotation.objects.exists()


def test_bulk_refuses_more_than_5000_items(as_user, member, slide):
    api = as_user(member)
    set_id = own_set(api, slide, "cell")
    item = {"geometry": polygon(300, 300), "label": ""}
    response = api.post(
        "/api/annotations/bulk/", {"set": set_id, "items": [item] * 5001}, format="json"
    )
    assert response.status_code == 400 and "at most 5000" in response.json()["detail"]
    assert not Annotation.objects.exists()


def test_crop_is_a_jpeg_of_the_requested_size(as_user, member, slide):
    from io import BytesIO

    from PIL import Image

    api = as_user(member)
    cell = add_cell(api, own_set(api, slide, "cell"), 45, 45)  # near the corner: padded white
    response = api.get(f"/api/annotations/{cell['id']}/crop.jpeg?size=96")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    image = Image.open(BytesIO(response.content))
    assert image.size == (96, 96)
    assert image.getpixel((0, 0)) > (240, 240, 240)  # past the slide's corner: white glass
    assert api.get(f"/api/annotations/{cell['id']}/crop.jpeg?size=4").status_code == 400


def test_the_schema_documents_the_annotation_endpoints(as_user, member):
    schema = as_user(member).get("/api/schema/?format=json").json()
    for path in [
        "/api/annotations/",
        "/api/annotations/bulk/",
        "/api/annotations/{id}/",
        "/api/annotations/{id}/history/",
        "/api/tasks/{id}/submit/",
        "/api/annotation-sets/",
        "/api/slides/{id}/toi-grid/",
        "/api/slides/{id}/sam/",
        "/api/projects/{project_pk}/label-classes/",
    ]:
        assert path in schema["paths"], path


@pytest.mark.skipif(
    "sqlite" in settings.DATABASES["default"]["ENGINE"],
    reason="SQLite's in-memory test database locks whole tables across threads without waiting",
)
@pytest.mark.django_db(transaction=True)
def test_truly_simultaneous_edits_serialise_to_one_win_and_one_409(member, slide):
    """Two threads PATCH the same version at once: the row lock lets exactly one through."""
    import threading

    from django.db import connection

    setup = APIClient()
    setup.force_authenticate(member)
    cell = add_cell(setup, own_set(setup, slide, "cell"), 800, 800)
    barrier = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def edit(label: str) -> None:
        client = APIClient()
        client.force_authenticate(member)
        barrier.wait()
        response = client.patch(
            f"/api/annotations/{cell['id']}/", {"version": 1, "label": label}, format="json"
        )
        statuses[label] = response.status_code
        connection.close()

    threads = [threading.Thread(target=edit, args=(label,)) for label in ("lymphocyte", "monocyte")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses.values()) == [200, 409]
    winner = next(label for label, code in statuses.items() if code == 200)
    stored = Annotation.objects.get(pk=cell["id"])
    assert (stored.label, stored.version) == (winner, 2)
    actions = list(
        AnnotationEvent.objects.filter(annotation=stored).values_list("action", flat=True)
    )
    assert sorted(actions) == ["conflict", "create", "update"]
