"""The report API under /api/analyses/<run>/report/: thin views over the selectors and services.

An outsider (or a user blinded to the run's output) gets 404 on everything; errors map to status
codes in ``bmadcc_web.exception_handler``, the one place.
"""

from __future__ import annotations

import csv
import io

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.auth import acting_user
from ml.slide import SlideOpenError, SlideReadError

from .. import selectors, services
from ..errors import InvalidInput, SlideUnreadable
from ..models import Report, ReportVersion

#: These function views take and answer JSON objects (their fields are in each docstring);
#: saying so keeps the schema generator, and so ``check --deploy``, free of guesswork warnings.
OBJECT_SCHEMA = extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)


def report_for(request, run_id: int) -> Report:
    """The run's report (made on first use), or 404 for a run the user may not see."""
    run = selectors.visible_run(request.user, run_id)
    if run is None:
        raise Http404("No such analysis run.")
    return services.ensure_report(run=run, user=acting_user(request))


def _version(report: Report, number: str | None) -> ReportVersion:
    if number is None:
        return selectors.current_version(report)
    version = selectors.version_of(report, int(number)) if number.isdigit() else None
    if version is None:
        raise Http404("No such report version.")
    return version


@OBJECT_SCHEMA
@api_view(["GET"])
def report(request: Request, run_id: int) -> Response:
    """The current version (or ``?version=N``): the canonical document, signature, status."""
    version = _version(report_for(request, run_id), request.query_params.get("version"))
    return Response(selectors.report_body(version))


def _page_number(request: Request) -> int:
    page = request.query_params.get("page", "1")
    if not page.isdigit() or int(page) < 1:
        raise InvalidInput("page must be a positive integer", field="page")
    return int(page)


@OBJECT_SCHEMA
@api_view(["GET"])
def cells(request: Request, run_id: int) -> Response:
    """One page of the review gallery: ``?group=<class key|needs_review>&page=N``."""
    version = _version(report_for(request, run_id), request.query_params.get("version"))
    group = request.query_params.get("group")
    return Response(selectors.gallery(version, group=group, page=_page_number(request)))


@extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY})
@api_view(["GET"])
def sprite(request: Request, run_id: int) -> HttpResponse:
    """The page's crops in one JPEG (same query as ``cells/``, plus ``v``: the sheet's key that
    page announced). The ETag is the key, which the URL carries too, so a browser keeps the
    sheet until the page's cells change."""
    version = _version(report_for(request, run_id), request.query_params.get("version"))
    key, ids = selectors.sheet_cells(
        version,
        key=request.query_params.get("v"),
        group=request.query_params.get("group") or None,
        page=_page_number(request),
    )
    etag = f'"{key}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
    else:
        try:
            data = selectors.gallery_sprite(version, key, ids)
        except (SlideOpenError, SlideReadError) as exc:
            raise SlideUnreadable(exc.message) from exc
        response = HttpResponse(data, content_type="image/jpeg")
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=3600"
    return response


@OBJECT_SCHEMA
@api_view(["POST"])
def reclassify(request: Request, run_id: int, cell_id: int) -> Response:
    """``{"label", "version"}``: a new class for a cell of the current version; the new DCC."""
    version = selectors.current_version(report_for(request, run_id))
    cell = services.reclassify(
        version=version,
        annotation_id=cell_id,
        label=request.data.get("label"),
        cell_version=request.data.get("version"),
        user=acting_user(request),
    )
    body = selectors.report_body(version)
    return Response({"cell": {"id": cell.pk, "label": cell.label, "version": cell.version}} | body)


@OBJECT_SCHEMA
@api_view(["POST"])
def confirm(request: Request, run_id: int, cell_id: int) -> Response:
    """The cell's class is right: mark it looked at."""
    version = selectors.current_version(report_for(request, run_id))
    services.confirm(version=version, annotation_id=cell_id, user=acting_user(request))
    return Response({"review": selectors.report_body(version)["document"]["review"]})


@OBJECT_SCHEMA
@api_view(["POST"])
def sign(request: Request, run_id: int) -> Response:
    """``{"password"}``: sign the current version as the signed-in user."""
    version = selectors.current_version(report_for(request, run_id))
    signed = services.sign(
        version=version, user=acting_user(request), password=request.data.get("password")
    )
    return Response(selectors.report_body(signed))


@OBJECT_SCHEMA
@api_view(["POST"])
def amend(request: Request, run_id: int) -> Response:
    """``{"reason"}``: start an amendment of the signed current version."""
    report = report_for(request, run_id)
    version = services.start_amendment(
        report=report, user=acting_user(request), reason=request.data.get("reason")
    )
    return Response(selectors.report_body(version), status=status.HTTP_201_CREATED)


AUDIT_COLUMNS = ("at", "version", "user", "action", "detail")


@extend_schema(
    responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR}
)
@api_view(["GET"])
def audit(request: Request, run_id: int, fmt: str = "json") -> Response | HttpResponse:
    """The report's audit log (reviewers and admins), JSON or CSV (``audit.csv``)."""
    report = report_for(request, run_id)
    services.check_signer(acting_user(request), report.run)
    rows = [
        {
            "at": e.at.isoformat(),
            "version": e.version_number,
            "user": e.username,
            "action": e.action,
            "detail": e.detail,
        }
        for e in selectors.audit_rows(report)
    ]
    if fmt != "csv":
        return Response({"entries": rows})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for row in rows:
        writer.writerow([row[k] if k != "detail" else _json(row[k]) for k in AUDIT_COLUMNS])
    response = HttpResponse(out.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="report-{run_id}-audit.csv"'
    return response


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _slide(request, slide_id: int):
    from apps.slides.selectors import visible_slide_or_404

    return visible_slide_or_404(request.user, slide_id)


@OBJECT_SCHEMA
@api_view(["GET"])
def slide_runs(request: Request, slide_id: int) -> Response:
    """The slide's runs, newest first: status, and whether each one's report is signed."""
    slide = _slide(request, slide_id)
    runs = selectors.slide_runs(request.user, slide.pk)
    for run in runs:
        run["report_url"] = f"/analyses/{run['id']}/report/" if run["status"] == "done" else None
    return Response({"slide": slide.pk, "runs": runs})


@OBJECT_SCHEMA
@api_view(["GET", "PUT"])
def manual_count(request: Request, slide_id: int) -> Response:
    """The requesting user's manual count of a slide: ``{"sequence": [class keys]}``."""
    from .. import manual

    slide = _slide(request, slide_id)
    if request.method == "PUT":
        manual.save_counter(
            slide=slide, user=acting_user(request), sequence=request.data.get("sequence")
        )
    sequence = manual.counter_of(slide, acting_user(request))
    return Response({"slide": slide.pk, "sequence": sequence, "total": len(sequence)})


@OBJECT_SCHEMA
@api_view(["GET"])
def comparison(request: Request, run_id: int) -> Response:
    """The current version's count against the requesting user's manual count of the slide."""
    from .. import manual

    version = _version(report_for(request, run_id), request.query_params.get("version"))
    sequence = manual.counter_of(version.report.run.slide, acting_user(request))
    return Response(manual.version_comparison(version, sequence))
