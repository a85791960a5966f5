from __future__ import annotations

import pytest
import shapely
from shapely.geometry import shape

from apps.accounts.models import Membership, Role
from apps.agreement import services
from apps.agreement.models import Adjudication, AgreementJob
from apps.annotations.models import Annotation
from tests.agreement.conftest import assign, draw, rect, submit

pytestmark = pytest.mark.django_db


def url(slide, tail: str = "", stage: str = "cell") -> str:
    return f"/api/agreement/slides/{slide.pk}/adjudication/{tail}?stage={stage}"


def consensus_cells(adjudication: Adjudication) -> list[tuple[str, tuple[float, float]]]:
    """(label, rounded centroid) of every live consensus annotation, sorted."""
    live = Annotation.objects.filter(set=adjudication.consensus, is_deleted=False)
    out = []
    for a in live:
        c = shape(a.geometry).centroid
        out.append((a.label, (round(c.x), round(c.y))))
    return sorted(out)


def by_kind(body: dict) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for item in body["items"]:
        kinds.setdefault(item["kind"], []).append(item)
    return kinds


@pytest.fixture
def start(django_capture_on_commit_callbacks):
    """Start the adjudication (its fill job runs once the request commits); the GET after."""

    def _start(api, slide, stage: str = "cell") -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(url(slide, stage=stage), {}, format="json")
        assert response.status_code == 201, response.content
        return api.get(url(slide, stage=stage)).json()

    return _start


def decide(api, slide, key: str, choice: str, stage: str = "cell", **extra):
    response = api.post(
        url(slide, "decisions/", stage), {"key": key, "choice": choice, **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_starting_fills_the_consensus_with_what_both_agree_on(
    as_user, cell_study, reviewer, django_capture_on_commit_callbacks
):
    api = as_user(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url(cell_study), {}, format="json")
        assert response.status_code == 201, response.content
        started = response.json()
        # The request only creates the rows; the copy is the job's, queued for after commit.
        assert (started["filled"], started["job"]["status"], started["items"]) == (
            False,
            "queued",
            [],
        )
    body = api.get(url(cell_study)).json()
    assert body["filled"] is True and body["job"]["status"] == "done"
    assert body["job"]["message"] == "copied 2 agreed annotations; 3 disagreements"
    adjudication = Adjudication.objects.get(pk=body["id"])
    assert adjudication.consensus.source == "consensus"
    # Two matched pairs agree; they are in the consensus already, in A's outline.
    assert consensus_cells(adjudication) == [("lymphocyte", (500, 300)), ("myeloblast", (300, 300))]
    kinds = {k: len(v) for k, v in by_kind(body).items()}
    assert kinds == {"cell_class": 1, "cell_only_a": 1, "cell_only_b": 1}
    assert body["progress"] == {"decided": 0, "total": 3}
    assert api.post(url(cell_study), {}, format="json").status_code == 200  # resumes, no copy


def test_annotators_cannot_adjudicate(as_user, cell_study, member):
    assert as_user(member).post(url(cell_study), {}, format="json").status_code == 403
    assert as_user(member).get(url(cell_study)).status_code == 403


def test_choices_write_the_consensus_and_a_second_choice_replaces_the_first(
    as_user, cell_study, reviewer, start
):
    api = as_user(reviewer)
    kinds = by_kind(start(api, cell_study))
    adjudication = Adjudication.objects.get(slide=cell_study, stage="cell")
    decide(api, cell_study, kinds["cell_class"][0]["key"], "b")  # B's promyelocyte
    decide(api, cell_study, kinds["cell_only_a"][0]["key"], "a")  # keep A's basophil
    last = decide(api, cell_study, kinds["cell_only_b"][0]["key"], "a")  # A drew none: reject
    assert last["progress"] == {"decided": 3, "total": 3}
    cells = consensus_cells(adjudication)
    assert ("promyelocyte", (702, 298)) in cells and ("basophil", (900, 300)) in cells
    assert not any(label == "eosinophil" for label, _ in cells)
    adjudication.refresh_from_db()
    assert adjudication.completed_at is not None
    # Changing one's mind: edit the class instead; B's cell is retracted, not left behind.
    decide(api, cell_study, kinds["cell_class"][0]["key"], "edit", label="band_neutrophil")
    cells = consensus_cells(adjudication)
    assert ("band_neutrophil", (700, 300)) in cells
    assert not any(label == "promyelocyte" for label, _ in cells)
    retracted = Annotation.objects.get(set=adjudication.consensus, label="promyelocyte")
    assert retracted.is_deleted and retracted.events.filter(action="delete").exists()


def test_a_half_done_adjudication_is_kept(as_user, cell_study, reviewer, start):
    api = as_user(reviewer)
    kinds = by_kind(start(api, cell_study))
    decide(api, cell_study, kinds["cell_only_a"][0]["key"], "b")
    body = api.get(url(cell_study)).json()
    assert body["progress"] == {"decided": 1, "total": 3}
    decided = [i for i in body["items"] if i["decision"]]
    assert [(i["kind"], i["decision"]["choice"]) for i in decided] == [("cell_only_a", "b")]
    assert body["completed_at"] is None


def test_bad_decisions_are_refused_with_a_reason(as_user, cell_study, reviewer, start):
    api = as_user(reviewer)
    kinds = by_kind(start(api, cell_study))
    key = kinds["cell_class"][0]["key"]
    unknown = api.post(
        url(cell_study, "decisions/"), {"key": "cell:1:2", "choice": "a"}, format="json"
    )
    assert unknown.status_code == 404
    bare_edit = api.post(
        url(cell_study, "decisions/"), {"key": key, "choice": "edit"}, format="json"
    )
    assert bare_edit.status_code == 400 and "label" in bare_edit.json()["detail"]
    bad_label = api.post(
        url(cell_study, "decisions/"),
        {"key": key, "choice": "edit", "label": "unicorn"},
        format="json",
    )
    assert bad_label.status_code == 400 and "unicorn" in bad_label.json()["detail"]


def test_toi_tiles_labelled_differently_are_adjudicated(
    as_user, slide, member, partner, owner, reviewer, start
):
    assign(slide, "toi", [member, partner], owner)
    draw(
        slide,
        "toi",
        member,
        [
            {"tile_col": 0, "tile_row": 0, "label": "toi"},
            {"tile_col": 1, "tile_row": 0, "label": "toi"},
        ],
    )
    draw(
        slide,
        "toi",
        partner,
        [
            {"tile_col": 0, "tile_row": 0, "label": "toi"},
            {"tile_col": 1, "tile_row": 0, "label": "non_toi"},
            {"tile_col": 0, "tile_row": 1, "label": "non_toi"},
        ],
    )
    submit(slide, "toi", member, partner)
    api = as_user(reviewer)
    kinds = by_kind(start(api, slide, "toi"))
    assert [i["key"] for i in kinds["toi_label"]] == ["toi:1:0"]
    assert kinds["toi_label"][0]["bbox"] == [1600.0, 0.0, 3200.0, 1600.0]
    decide(api, slide, "toi:1:0", "b", stage="toi")
    decide(api, slide, "toi:0:1", "edit", stage="toi", label="toi")
    adjudication = Adjudication.objects.get(slide=slide, stage="toi")
    tiles = Annotation.objects.filter(set=adjudication.consensus, is_deleted=False)
    assert sorted(tiles.values_list("tile_col", "tile_row", "label")) == [
        (0, 0, "toi"),
        (0, 1, "toi"),
        (1, 0, "non_toi"),
    ]


def test_roi_difference_is_settled_by_a_union(
    as_user, slide, member, partner, owner, reviewer, start
):
    assign(slide, "roi", [member, partner], owner)
    draw(slide, "roi", member, [{"geometry": rect(100, 100, 600, 600), "label": ""}])
    draw(slide, "roi", partner, [{"geometry": rect(400, 100, 900, 600), "label": ""}])
    submit(slide, "roi", member, partner)
    api = as_user(reviewer)
    body = start(api, slide, "roi")
    assert [i["key"] for i in body["items"]] == ["roi"]
    decide(api, slide, "roi", "edit", stage="roi", combine="union")
    adjudication = Adjudication.objects.get(slide=slide, stage="roi")
    live = Annotation.objects.filter(set=adjudication.consensus, is_deleted=False)
    union = shapely.union_all([shape(a.geometry) for a in live])
    assert union.area == pytest.approx(800 * 500)


def test_a_job_is_claimed_once(as_user, cell_study, reviewer):
    adjudication, job, created = services.start_adjudication(
        slide=cell_study, stage="cell", user=reviewer
    )
    assert created and job.status == "queued"
    assert services.run_job(job.pk).status == "done"
    assert services.run_job(job.pk) is None  # a repeated delivery finds it claimed
    live = Annotation.objects.filter(set=adjudication.consensus, is_deleted=False)
    assert live.count() == 2  # copied once


def test_a_failed_fill_is_recorded_and_starting_again_queues_a_new_job(
    as_user, cell_study, reviewer
):
    adjudication, job, _ = services.start_adjudication(
        slide=cell_study, stage="cell", user=reviewer
    )
    # Before the worker gets to it, the reviewer is made an annotator: the copy is refused.
    membership = Membership.objects.filter(user=reviewer)
    membership.update(role=Role.ANNOTATOR)
    failed = services.run_job(job.pk)
    assert failed.status == "failed" and failed.finished_at is not None
    assert failed.error == "only reviewers and project admins change consensus and model-run sets"
    assert not Annotation.objects.filter(set=adjudication.consensus).exists()
    membership.update(role=Role.REVIEWER)
    body = as_user(reviewer).get(url(cell_study)).json()
    assert (body["filled"], body["job"]["status"], body["items"]) == (False, "failed", [])
    again, retry, created = services.start_adjudication(
        slide=cell_study, stage="cell", user=reviewer
    )
    assert (again.pk, created, retry.status) == (adjudication.pk, False, "queued")
    assert retry.pk != job.pk and AgreementJob.objects.get(pk=job.pk).status == "failed"


def test_the_disagreements_are_read_from_the_row_in_a_process_without_the_cache(
    as_user, cell_study, reviewer, start
):
    from django.core.cache import cache

    from apps.agreement import selectors

    before = start(as_user(reviewer), cell_study)
    cache.clear()  # the web process does not share the worker's local-memory cache
    adjudication = Adjudication.objects.get(slide=cell_study, stage="cell")
    assert len(adjudication.items) == 3 and adjudication.items_state is not None
    items = selectors.disagreements(adjudication)
    assert [i.to_dict() for i in items] == [
        {k: v for k, v in item.items() if k != "decision"} for item in before["items"]
    ]
