"""Reads of reports: which runs' reports a user sees, a version's document and signature state,
and the review gallery's pages.

Scope and blinding are the analysis app's (:func:`apps.analysis.selectors.visible_runs` and
``sees_output``): an outsider's run is absent (404), and so is the report of a run whose output
the user is blinded to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.analysis.models import AnalysisRun
from apps.analysis.selectors import sees_output, visible_runs
from ml.geometry import square_box

from .document import cell_rows, content_sha256, flagged_ids, report_document, run_classes
from .models import AuditEntry, Report, ReportVersion

#: Crops per gallery page (the page loads them lazily).
PAGE_SIZE = 200
#: The review group of flagged cells, shown first (CellaVision's "Unidentified").
NEEDS_REVIEW = "needs_review"
#: Margin around a cell's box in its crop (as the annotation gallery's crops).
CROP_MARGIN = 0.25


def visible_run(user, run_id: int) -> AnalysisRun | None:
    """The run if ``user`` sees it and its output, else ``None`` (the views answer 404)."""
    run = visible_runs(user).select_related("slide__project").filter(pk=run_id).first()
    if run is None or not sees_output(user, run):
        return None
    return run


def versions_of(report: Report) -> list[ReportVersion]:
    return list(report.versions.select_related("supersedes", "signed_by").order_by("number"))


def current_version(report: Report) -> ReportVersion:
    """The newest version; every report has version 1 from its creation on."""
    return report.versions.order_by("-number")[:1].get()


def version_of(report: Report, number: int) -> ReportVersion | None:
    return report.versions.filter(number=number).first()


@dataclass(frozen=True)
class Signature:
    name: str
    at: str
    time_zone: str
    meaning: str
    sha256: str
    valid: bool

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def signature_of(version: ReportVersion, document: dict[str, Any]) -> Signature | None:
    """The signature of ``version``, ``valid`` only while the content still hashes the same."""
    if not version.is_signed:
        return None
    return Signature(
        name=version.signer_name,
        at=version.signed_at.isoformat() if version.signed_at else "",
        time_zone=version.signer_time_zone,
        meaning=version.meaning,
        sha256=version.signed_sha256,
        valid=content_sha256(document) == version.signed_sha256,
    )


def report_body(version: ReportVersion) -> dict[str, Any]:
    """The document plus its state: signature (and validity), status, versions."""
    document = report_document(version)
    signature = signature_of(version, document)
    later = ReportVersion.objects.filter(supersedes=version).first()
    versions = versions_of(version.report)
    return {
        "document": document,
        "sha256": content_sha256(document),
        "signature": signature.to_dict() if signature else None,
        "status": status_of(version, later),
        "superseded_by": later.number if later else None,
        "amended": version.number > 1,
        "versions": [
            {"number": v.number, "signed": v.is_signed, "reason": v.reason} for v in versions
        ],
    }


def status_of(version: ReportVersion, later: ReportVersion | None) -> str:
    if later is not None:
        return f"superseded by amendment {later.number}"
    if version.is_signed:
        return "amended, signed" if version.number > 1 else "signed"
    return "in review"


def gallery(version: ReportVersion, *, group: str | None, page: int) -> dict[str, Any]:
    """One page of review crops and the list of groups, largest first ("needs review" first).

    A group is :data:`NEEDS_REVIEW` (flagged cells, whatever their class) or a class key (its
    unflagged cells). Within a group, cells go from the least to the most confident, so the
    doubtful ones come first. ``outline`` is the cell's polygon in [0, 1] crop coordinates.
    """
    rows = cell_rows(version)
    looked = dict(version.marks.values_list("annotation_id", "action"))
    flagged = flagged_ids(version)
    groups: dict[str, list[tuple]] = {}
    for row in rows:
        key = NEEDS_REVIEW if row[0] in flagged else (row[1] or "unclassified")
        groups.setdefault(key, []).append(row)
    names = {c.key: c.name for c in run_classes(version.report.run)}
    order = sorted(groups, key=lambda k: (k != NEEDS_REVIEW, -len(groups[k]), k))
    chosen = group if group is not None else (order[0] if order else None)
    members = sorted(groups.get(chosen, []) if chosen else [], key=lambda r: (_top(r[3]), r[0]))
    start = (page - 1) * PAGE_SIZE
    shown = members[start : start + PAGE_SIZE]
    outlines = _outlines(version, [r[0] for r in shown])
    return {
        "groups": [
            {
                "key": k,
                "name": "Needs review" if k == NEEDS_REVIEW else names.get(k, k),
                "count": len(groups[k]),
                "remaining": sum(1 for r in groups[k] if r[0] not in looked)
                if k == NEEDS_REVIEW
                else None,
            }
            for k in order
        ],
        "group": chosen,
        "page": page,
        "pages": max(1, -(-len(members) // PAGE_SIZE)),
        "cells": [
            {
                "id": pk,
                "label": label,
                "version": ver,
                "confidence": _top(probs),
                "looked_at": looked.get(pk),
                "outline": outlines.get(pk, []),
            }
            for pk, label, ver, probs in shown
        ],
    }


def _top(probabilities: dict | None) -> float:
    classes = (probabilities or {}).get("classes") or {}
    return max(classes.values()) if classes else 0.0


def _outlines(version: ReportVersion, ids: list[int]) -> dict[int, list[list[float]]]:
    out = {}
    rows = version.review_set.annotations.filter(pk__in=ids).values_list(
        "id", "geometry", "min_x", "min_y", "max_x", "max_y"
    )
    for pk, geometry, *box in rows:
        x0, y0, x1, y1 = square_box(box, CROP_MARGIN)
        side = max(x1 - x0, 1)
        ring = geometry["coordinates"][0]
        out[pk] = [[round((x - x0) / side, 4), round((y - y0) / side, 4)] for x, y in ring]
    return out


def audit_rows(report: Report) -> list[AuditEntry]:
    return list(report.audit.order_by("at", "id"))


def slide_runs(user, slide_id: int) -> list[dict[str, Any]]:
    """The slide's runs that ``user`` sees, newest first: id, status, and whether signed
    (the latest version of its report), for the lists that name a run."""
    runs = list(visible_runs(user).filter(slide_id=slide_id).order_by("-created_at", "-id"))
    latest = {}
    for each in ReportVersion.objects.filter(report__run__in=runs).order_by("number"):
        latest[each.report_id] = each
    reports = dict(Report.objects.filter(run__in=runs).values_list("run_id", "id"))
    out = []
    for run in runs:
        report_id = reports.get(run.pk)
        version = latest.get(report_id) if report_id is not None else None
        out.append(
            {
                "id": run.pk,
                "status": run.status,
                "created_at": run.created_at,
                "signed": bool(version and version.is_signed),
                "version": version.number if version else None,
            }
        )
    return out
