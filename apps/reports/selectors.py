"""Reads of reports: which runs' reports a user sees, a version's document and signature state,
and the review gallery's pages.

Scope and blinding are the analysis app's (:func:`apps.analysis.selectors.visible_runs` and
``sees_output``): an outsider's run is absent (404), and so is the report of a run whose output
the user is blinded to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from apps.analysis.models import AnalysisRun
from apps.analysis.selectors import sees_output, visible_runs
from apps.slides.deepzoom import handles
from ml.crops import draw_outline, jpeg, slide_crops, sprite_sheet
from ml.lru import LRU

from .document import class_names, content_sha256, flagged_ids, report_document
from .models import AuditEntry, Report, ReportVersion

#: Crops per gallery page (the page loads them lazily).
PAGE_SIZE = 200
#: The review group of flagged cells, shown first (CellaVision's "Unidentified").
NEEDS_REVIEW = "needs_review"
#: Margin around a cell's box in its crop (as the annotation gallery's crops).
CROP_MARGIN = 0.25
#: Side of a gallery crop (px), and the sprite sheet's columns (200 crops: 20 x 10).
CROP_SIZE = 128
SPRITE_COLUMNS = 20


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


@dataclass(frozen=True)
class GalleryPage:
    """One page of one review group: ``shown`` is ``(id, label, version)`` of its cells."""

    groups: list[dict[str, Any]]
    group: str | None
    page: int
    pages: int
    shown: list[tuple[int, str, int]]
    looked: dict[int, str]
    confidence: dict[int, float]

    @property
    def ids(self) -> list[int]:
        return [pk for pk, _, _ in self.shown]


def gallery_page(version: ReportVersion, *, group: str | None, page: int) -> GalleryPage:
    """The cells of ``page`` of ``group`` and the list of groups, largest first.

    A group is :data:`NEEDS_REVIEW` (flagged cells, whatever their class, first: CellaVision's
    "Unidentified") or a class key (its unflagged cells). Within a group, cells go from the
    least to the most confident, so the doubtful ones come first.
    """
    rows = list(
        version.review_set.annotations.filter(is_deleted=False)
        .order_by("id")
        .values_list("id", "label", "version")
    )
    looked = dict(version.marks.values_list("annotation_id", "action"))
    confidence, flagged = model_output(version)
    groups: dict[str, list[tuple[int, str, int]]] = {}
    for row in rows:
        key = NEEDS_REVIEW if row[0] in flagged else (row[1] or "unclassified")
        groups.setdefault(key, []).append(row)
    names = class_names(version.report.run)
    order = sorted(groups, key=lambda k: (k != NEEDS_REVIEW, -len(groups[k]), k))
    chosen = group if group is not None else (order[0] if order else None)
    members = sorted(
        groups.get(chosen, []) if chosen else [], key=lambda r: (confidence.get(r[0], 0.0), r[0])
    )
    start = (page - 1) * PAGE_SIZE
    return GalleryPage(
        groups=[
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
        group=chosen,
        page=page,
        pages=max(1, -(-len(members) // PAGE_SIZE)),
        shown=members[start : start + PAGE_SIZE],
        looked=looked,
        confidence=confidence,
    )


#: Each review set's model output: the top class probability per cell and the flagged cells.
#: A review copy's probabilities are the model's and never change (an edit changes the label
#: only, and the copy's cells are never added or removed), so they are read once per set.
_MODEL_OUTPUT: LRU[int, tuple[dict[int, float], frozenset[int]]] = LRU(16)


def model_output(version: ReportVersion) -> tuple[dict[int, float], frozenset[int]]:
    """``({cell id: top class probability (0 without any)}, flagged ids)`` of the version's
    review set, for the gallery's grouping and order. The report's content (what is signed)
    reads them from the database every time (:mod:`apps.reports.document`)."""
    cached = _MODEL_OUTPUT.get(version.review_set_id)
    if cached is not None:
        return cached
    rows = version.review_set.annotations.values_list("id", "probabilities")
    output = ({pk: _top(p) for pk, p in rows}, frozenset(flagged_ids(version)))
    return _MODEL_OUTPUT.put(version.review_set_id, output)


#: The cells of each sprite sheet key that a gallery page announced: the sheet's request that
#: follows need not list the review set again (another process, or an old key, does).
_SHEET_CELLS: LRU[tuple[int, str], tuple[int, ...]] = LRU(1024)


def gallery(version: ReportVersion, *, group: str | None, page: int) -> dict[str, Any]:
    """One gallery page as JSON: the groups, and the page's cells, each with its place
    ``at`` (px) in the page's sprite sheet (:func:`gallery_sprite`), whose URL carries the
    sheet's key, and its ``box`` (XYXY level-0 px) for the viewer."""
    found = gallery_page(version, group=group, page=page)
    key = sprite_key(version, found.shown)
    _SHEET_CELLS.put((version.review_set_id, key), tuple(found.ids))
    boxes = dict(
        (pk, [x0, y0, x1, y1])
        for pk, x0, y0, x1, y1 in version.review_set.annotations.filter(
            pk__in=[r[0] for r in found.shown]
        ).values_list("id", "min_x", "min_y", "max_x", "max_y")
    )
    return {
        "groups": found.groups,
        "group": found.group,
        "page": found.page,
        "pages": found.pages,
        "sprite": {
            "key": key,
            "tile": CROP_SIZE,
            "columns": SPRITE_COLUMNS,
        },
        "cells": [
            {
                "id": pk,
                "label": label,
                "version": ver,
                "confidence": found.confidence.get(pk, 0.0),
                "looked_at": found.looked.get(pk),
                "at": [i % SPRITE_COLUMNS * CROP_SIZE, i // SPRITE_COLUMNS * CROP_SIZE],
                "box": boxes.get(pk),
            }
            for i, (pk, label, ver) in enumerate(found.shown)
        ],
    }


def sprite_key(version: ReportVersion, shown: list[tuple[int, str, int]]) -> str:
    """What a page's sprite sheet shows: the set, the crop rule, and each cell's version
    (an outline edit bumps it), so a changed page gets a new key and its own cache entry."""
    cells = ",".join(f"{pk}.{ver}" for pk, _, ver in shown)
    text = f"{version.review_set_id}|{CROP_SIZE}|{CROP_MARGIN}|{SPRITE_COLUMNS}|{cells}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def sheet_cells(
    version: ReportVersion, *, key: str | None, group: str | None, page: int
) -> tuple[str, list[int]]:
    """The key and cell ids of the sheet of ``page`` of ``group``: those announced under
    ``key`` when it is known here (the set's cells, checked by :func:`gallery_sprite`), else
    the page listed anew (its current key)."""
    # Keyed by the set as well: a key seen on one report never serves another's cells.
    known = _SHEET_CELLS.get((version.review_set_id, key)) if key else None
    if key and known is not None:
        return key, list(known)
    found = gallery_page(version, group=group, page=page)
    return sprite_key(version, found.shown), found.ids


#: Rendered sprite sheets by key (about 0.3 MB each).
_SPRITES: LRU[tuple[int, str], bytes] = LRU(64 * 2**20, size_of=len)


def gallery_sprite(version: ReportVersion, key: str, ids: list[int]) -> bytes:
    """The cells' crops in one JPEG, each with its outline drawn (the sheet of ``key``).

    Crop ``i`` is the ``CROP_SIZE`` square at ``(i % SPRITE_COLUMNS, i // SPRITE_COLUMNS)``
    tiles; the crops are :func:`ml.crops.slide_crops` of the cells' boxes, the same square as
    the annotation crop's. Ids outside the version's review set are left out. Raises the
    slide reader's errors.
    """
    cached = _SPRITES.get((version.review_set_id, key))
    if cached is not None:
        return cached
    rows = {
        pk: (geometry, box)
        for pk, geometry, *box in version.review_set.annotations.filter(pk__in=ids).values_list(
            "id", "geometry", "min_x", "min_y", "max_x", "max_y"
        )
    }
    cells = [rows[pk] for pk in ids if pk in rows]
    reader = handles.get(version.review_set.slide.viewable_file).reader
    crops = slide_crops(reader, [box for _, box in cells], CROP_MARGIN, CROP_SIZE)
    for crop, (geometry, box) in zip(crops, cells, strict=True):
        draw_outline(crop, geometry["coordinates"][0], box, CROP_MARGIN)
    sheet = jpeg(sprite_sheet(crops, SPRITE_COLUMNS))
    return _SPRITES.put((version.review_set_id, key), sheet)


def _top(probabilities: dict | None) -> float:
    classes = (probabilities or {}).get("classes") or {}
    return max(classes.values()) if classes else 0.0


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
