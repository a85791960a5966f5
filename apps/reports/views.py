"""The report page, its PDF and its FHIR form. Scoped like the API: 404 for outsiders."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_safe

from apps.accounts.auth import acting_user
from apps.accounts.roles import is_reviewer_or_admin

from . import fhir, pages, selectors, services
from .errors import ReportError
from .models import ReportVersion


def _version(request: HttpRequest, run_id: int) -> ReportVersion:
    run = selectors.visible_run(request.user, run_id)
    if run is None:
        raise Http404("No such analysis run.")
    try:
        report = services.ensure_report(run=run, user=acting_user(request))
    except ReportError as exc:
        raise Http404(exc.message) from exc
    number = request.GET.get("version", "")
    version = (
        selectors.version_of(report, int(number))
        if number.isdigit()
        else selectors.current_version(report)
    )
    if version is None:
        raise Http404("No such report version.")
    return version


@login_required
@require_safe
def report_page(request: HttpRequest, run_id: int) -> HttpResponse:
    version = _version(request, run_id)
    ctx = pages.context(version)
    ctx["can_sign"] = is_reviewer_or_admin(request.user, version.report.run.slide.project_id)
    ctx["comparison"] = pages.comparison_context(version, request.user)
    ctx["slide_runs"] = selectors.slide_runs(request.user, version.report.run.slide_id)
    return render(request, "reports/report.html", ctx)


@login_required
@require_safe
def report_pdf(request: HttpRequest, run_id: int) -> HttpResponse:
    from weasyprint import HTML

    version = _version(request, run_id)
    html = render_to_string("reports/print.html", pages.context(version), request=request)
    pdf = HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    name = f"dcc-report-run-{run_id}-v{version.number}.pdf"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response


@login_required
@require_safe
def report_fhir(request: HttpRequest, run_id: int) -> JsonResponse:
    version = _version(request, run_id)
    return JsonResponse(fhir.diagnostic_report(version), json_dumps_params={"indent": 1})


@login_required
@require_safe
def counter_page(request: HttpRequest, slide_id: int) -> HttpResponse:
    """The keypad counter for a manual differential of ``slide`` on glass."""
    from apps.annotations.models import LabelClass
    from apps.slides.selectors import visible_slide_or_404

    from . import manual

    slide = visible_slide_or_404(request.user, slide_id)
    classes = list(
        LabelClass.objects.filter(project_id=slide.project_id, retired=False)
        .order_by("order", "id")
        .values("key", "name", "hotkey", "counted")
    )
    ctx = {
        "slide": slide,
        "classes": classes,
        "classes_json": json.dumps(classes),
        "sequence_json": json.dumps(manual.counter_of(slide, acting_user(request))),
        "milestones": json.dumps(manual.MILESTONES),
    }
    return render(request, "reports/counter.html", ctx)
