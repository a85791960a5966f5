"""The report API on a real finished run: the DCC document, review, sign-off, amendment, audit."""

from __future__ import annotations

import csv
import io

import pytest

from ml.count import differential_count
from ml.pipeline import PipelineConfig
from tests.reports.conftest import REVIEWER_PASSWORD, flagged_cells, report_url

pytestmark = pytest.mark.django_db


def review_all(client, run) -> None:
    for cell in flagged_cells(client, run):
        assert client.post(report_url(run, f"cells/{cell['id']}/confirm/")).status_code == 200


def test_the_report_counts_the_runs_cells_with_ml_count(finished_run, reviewer, as_user) -> None:
    body = as_user(reviewer).get(report_url(finished_run)).json()
    doc = body["document"]
    labels = list(finished_run.cell_set.annotations.values_list("label", flat=True))
    classes = PipelineConfig.from_dict(finished_run.config).classes
    assert doc["dcc"] == differential_count(labels, classes).to_dict()
    assert len(doc["dcc"]["rows"]) == 16 and doc["dcc"]["total_counted"] > 0
    assert doc["cells"] == len(labels) == finished_run.summary["cells"]
    kinds = [a["kind"] for a in doc["alerts"]]
    assert kinds[0] == "review_required"
    assert doc["alerts"][0]["message"] == (
        f"{doc['review']['flagged']} cells need review (top probability < 0.60)"
    )
    assert "automatic_rescreening" in kinds and "baselines" in kinds
    prov = doc["provenance"]
    assert prov["slide_sha256"] == finished_run.slide.sha256 and prov["run_id"] == finished_run.pk
    classifier = next(m for m in prov["models"] if m["stage"] == "classification")
    assert len(classifier["weights_sha256"]) == 64
    assert body["status"] == "in review" and body["signature"] is None


def test_outsiders_get_404_on_everything(finished_run, outsider, as_user) -> None:
    client = as_user(outsider)
    for tail in ("", "cells/", "cells/sprite.jpeg", "audit/", "audit.csv", "comparison/"):
        assert client.get(report_url(finished_run, tail)).status_code == 404
    for tail in ("sign/", "amend/", "cells/1/confirm/", "cells/1/reclassify/"):
        assert client.post(report_url(finished_run, tail), {}, format="json").status_code == 404


def test_reclassifying_edits_the_review_copy_and_keeps_the_model_output(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    cell = flagged_cells(client, finished_run)[0]
    new = "plasma_cell" if cell["label"] != "plasma_cell" else "monocyte"
    response = client.post(
        report_url(finished_run, f"cells/{cell['id']}/reclassify/"),
        {"label": new, "version": cell["version"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["cell"] == {"id": cell["id"], "label": new, "version": cell["version"] + 1}
    counts = {r["key"]: r["count"] for r in body["document"]["dcc"]["rows"]}
    original = {r["key"]: r["count"] for r in finished_run.summary["count"]["rows"]}
    assert counts[new] == original[new] + 1
    assert body["document"]["review"]["reclassified"] == 1
    # The run's own cells are untouched; the history of the copy says who changed what.
    assert not finished_run.cell_set.annotations.filter(version__gt=1).exists()
    from apps.annotations.models import AnnotationEvent

    event = AnnotationEvent.objects.get(annotation_id=cell["id"], action="update")
    assert event.user == reviewer and event.after["label"] == new
    # The same edit again, from the stale version: 409, as in the workspace.
    stale = client.post(
        report_url(finished_run, f"cells/{cell['id']}/reclassify/"),
        {"label": "monocyte", "version": cell["version"]},
        format="json",
    )
    assert stale.status_code == 409


@pytest.mark.parametrize("label", ["no_such_class", "", 7])
def test_reclassifying_to_an_unknown_class_is_refused(
    finished_run, reviewer, as_user, label
) -> None:
    client = as_user(reviewer)
    cell = flagged_cells(client, finished_run)[0]
    response = client.post(
        report_url(finished_run, f"cells/{cell['id']}/reclassify/"),
        {"label": label, "version": cell["version"]},
        format="json",
    )
    assert response.status_code == 400


def test_a_retired_class_is_refused(finished_run, reviewer, as_user) -> None:
    from apps.annotations.models import LabelClass

    LabelClass.objects.filter(project=finished_run.slide.project, key="basophil").update(
        retired=True
    )
    client = as_user(reviewer)
    cell = flagged_cells(client, finished_run)[0]
    response = client.post(
        report_url(finished_run, f"cells/{cell['id']}/reclassify/"),
        {"label": "basophil", "version": cell["version"]},
        format="json",
    )
    assert response.status_code == 400


def test_an_annotator_blinded_to_the_run_sees_no_report(finished_run, member, as_user) -> None:
    client = as_user(member)
    assert client.get(report_url(finished_run)).status_code == 404
    response = client.post(report_url(finished_run, "sign/"), {"password": "member-pass-123"})
    assert response.status_code == 404


def test_signing_is_blocked_until_every_flagged_cell_is_looked_at(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    cells = flagged_cells(client, finished_run)
    assert len(cells) >= 2
    client.post(report_url(finished_run, f"cells/{cells[0]['id']}/confirm/"))
    response = client.post(report_url(finished_run, "sign/"), {"password": REVIEWER_PASSWORD})
    assert response.status_code == 409
    assert response.json()["remaining"] == len(cells) - 1
    assert f"{len(cells) - 1} cells" in response.json()["detail"]


def test_a_wrong_password_signs_nothing_and_is_audited(finished_run, reviewer, as_user) -> None:
    client = as_user(reviewer)
    review_all(client, finished_run)
    response = client.post(report_url(finished_run, "sign/"), {"password": "guess"})
    assert response.status_code == 403
    assert client.get(report_url(finished_run)).json()["signature"] is None
    actions = [
        e["action"] for e in client.get(report_url(finished_run, "audit/")).json()["entries"]
    ]
    assert actions[-1] == "sign_failed" and "signed" not in actions


def signed(client, run, user) -> dict:
    user.first_name, user.last_name = "Rosa", "Pathologist"
    user.save()
    review_all(client, run)
    response = client.post(report_url(run, "sign/"), {"password": REVIEWER_PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def test_a_signature_records_name_time_meaning_and_the_content_hash(
    finished_run, reviewer, as_user
) -> None:
    from apps.reports.document import content_sha256

    body = signed(as_user(reviewer), finished_run, reviewer)
    signature = body["signature"]
    assert signature["name"] == "Rosa Pathologist"
    assert signature["meaning"] == "reviewed and approved as final report"
    assert signature["at"].endswith("+00:00") and signature["time_zone"] == "UTC"
    assert signature["sha256"] == content_sha256(body["document"]) == body["sha256"]
    assert signature["valid"] is True and body["status"] == "signed"


def test_a_signed_report_refuses_every_edit_through_the_api(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    signed(client, finished_run, reviewer)
    cell = flagged_cells(client, finished_run)[0]
    tries = [
        client.post(
            report_url(finished_run, f"cells/{cell['id']}/reclassify/"),
            {"label": "monocyte", "version": cell["version"]},
            format="json",
        ),
        client.post(report_url(finished_run, f"cells/{cell['id']}/confirm/")),
        client.post(report_url(finished_run, "sign/"), {"password": REVIEWER_PASSWORD}),
    ]
    assert [r.status_code for r in tries] == [409, 409, 409]


def test_the_database_refuses_a_direct_write_to_a_signed_report(
    finished_run, reviewer, as_user
) -> None:
    from django.db import DatabaseError, transaction

    from apps.annotations.models import Annotation
    from apps.reports.models import ReportVersion, ReviewMark

    signed(as_user(reviewer), finished_run, reviewer)
    version = ReportVersion.objects.get(report__run=finished_run)
    cell = Annotation.objects.filter(set=version.review_set).first()
    for write in (
        lambda: Annotation.objects.filter(pk=cell.pk).update(label="monocyte"),
        lambda: Annotation.objects.filter(pk=cell.pk).delete(),
        lambda: ReportVersion.objects.filter(pk=version.pk).update(signer_name="Someone Else"),
        lambda: ReviewMark.objects.filter(version=version).delete(),
    ):
        with (
            pytest.raises(DatabaseError, match="a signed report never changes"),
            transaction.atomic(),
        ):
            write()
    cell.refresh_from_db()
    assert cell.label != "monocyte" or cell.version == 1


def test_a_change_behind_the_apps_back_invalidates_the_signature(
    finished_run, reviewer, as_user, client
) -> None:
    from django.db import connection

    from apps.reports.models import ReportVersion

    api = as_user(reviewer)
    signed(api, finished_run, reviewer)
    version = ReportVersion.objects.get(report__run=finished_run)
    # Someone with database superuser rights drops the guard and edits a cell.
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER report_cell_signed"
            + (" ON annotations_annotation" if connection.vendor == "postgresql" else "")
        )
        cursor.execute(
            "UPDATE annotations_annotation SET label = 'monocyte' WHERE id = "
            "(SELECT MIN(id) FROM annotations_annotation WHERE set_id = %s AND label != 'monocyte')",
            [version.review_set_id],
        )
    body = api.get(report_url(finished_run)).json()
    assert body["signature"]["valid"] is False
    client.force_login(reviewer)
    page = client.get(f"/analyses/{finished_run.pk}/report/")
    assert b"signature invalid" in page.content


def test_an_amendment_is_a_new_version_with_its_own_review_and_signature(
    finished_run, reviewer, as_user
) -> None:
    client = as_user(reviewer)
    first = signed(client, finished_run, reviewer)
    assert client.post(report_url(finished_run, "amend/"), {"reason": " "}).status_code == 400
    response = client.post(report_url(finished_run, "amend/"), {"reason": "one blast missed"})
    assert response.status_code == 201, response.content
    amended = response.json()
    assert amended["document"]["version"] == 2 and amended["document"]["supersedes"] == 1
    assert amended["signature"] is None and amended["amended"] is True
    # Looked-at marks carry over, so the amendment can be signed after its one change.
    assert amended["document"]["review"]["remaining"] == 0
    cell = flagged_cells(client, finished_run)[0]
    client.post(
        report_url(finished_run, f"cells/{cell['id']}/reclassify/"),
        {
            "label": "myeloblast" if cell["label"] != "myeloblast" else "monocyte",
            "version": cell["version"],
        },
        format="json",
    )
    second = client.post(report_url(finished_run, "sign/"), {"password": REVIEWER_PASSWORD}).json()
    assert second["signature"]["valid"] and second["status"] == "amended, signed"
    original = client.get(report_url(finished_run), {"version": 1}).json()
    assert original["status"] == "superseded by amendment 2"
    assert original["signature"]["valid"] and original["sha256"] == first["sha256"]
    assert [v["number"] for v in second["versions"]] == [1, 2]


def test_the_audit_log_lists_every_step_and_exports_as_csv(finished_run, reviewer, as_user) -> None:
    client = as_user(reviewer)
    client.post(report_url(finished_run, "sign/"), {"password": "wrong"})
    signed(client, finished_run, reviewer)
    client.post(report_url(finished_run, "amend/"), {"reason": "recount"})
    entries = client.get(report_url(finished_run, "audit/")).json()["entries"]
    actions = [e["action"] for e in entries]
    assert actions[0] == "created" and actions[1] == "sign_failed"
    assert actions[-2:] == ["signed", "amendment_started"]
    assert all(e["user"] == "reviewer" for e in entries[1:])
    response = client.get(report_url(finished_run, "audit.csv"))
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["at", "version", "user", "action", "detail"]
    assert [r[3] for r in rows[1:]] == actions


def test_the_slide_lists_its_runs_with_status_and_whether_each_is_signed(
    pipeline_output, project, slide, member, finished_run, reviewer, outsider, as_user
) -> None:
    from tests.reports.conftest import store_run

    client = as_user(reviewer)
    signed(client, finished_run, reviewer)
    later = store_run(pipeline_output, project=project, slide=slide, user=member)
    body = client.get(f"/api/slides/{slide.pk}/runs/").json()
    assert [(r["id"], r["status"], r["signed"], r["version"]) for r in body["runs"]] == [
        (later.pk, "done", False, None),
        (finished_run.pk, "done", True, 1),
    ]
    assert body["runs"][1]["report_url"] == f"/analyses/{finished_run.pk}/report/"
    assert as_user(outsider).get(f"/api/slides/{slide.pk}/runs/").status_code == 404


def test_the_alerts_say_when_no_classifier_ran_or_it_covers_only_some_classes(
    pipeline_output, project, slide, member, reviewer, as_user
) -> None:
    from tests.reports.conftest import store_run

    client = as_user(reviewer)
    used = pipeline_output["models_used"]
    baseline = used | {"classification": {"kind": "baseline", "name": "none"}}
    no_model = store_run(
        pipeline_output | {"models_used": baseline}, project=project, slide=slide, user=member
    )
    alerts = client.get(report_url(no_model)).json()["document"]["alerts"]
    assert {"kind": "no_classifier", "message": "No cell classifier installed."} in alerts
    summary = pipeline_output["summary"] | {"classifier_classes": ["myeloblast", "lymphocyte"]}
    partial = store_run(
        pipeline_output | {"summary": summary}, project=project, slide=slide, user=member
    )
    alerts = client.get(report_url(partial)).json()["document"]["alerts"]
    message = next(a["message"] for a in alerts if a["kind"] == "partial_classifier")
    assert message == "The classifier covers only these classes: Myeloblast, Lymphocyte."


def test_a_bad_gallery_page_is_refused(finished_run, reviewer, as_user) -> None:
    client = as_user(reviewer)
    for tail in ("cells/", "cells/sprite.jpeg"):
        for page in ("0", "x", "-1"):
            assert client.get(report_url(finished_run, tail), {"page": page}).status_code == 400
