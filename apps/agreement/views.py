"""Agreement pages and downloads. Scoped to the user's projects like every slide page; reports
appear only for unblinded stages; adjudication is for the project's reviewers and admins.
GETs show what is stored; the forms POST to queue the jobs that compute."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.models import Project
from apps.accounts.roles import is_reviewer_or_admin
from apps.annotations.models import Stage
from apps.slides.selectors import visible_slide_or_404

from . import presenters, selectors, services
from .errors import AgreementError
from .models import Adjudication


def _project(request: HttpRequest, project_id: int) -> Project:
    return get_object_or_404(Project.objects.visible_to(request.user), pk=project_id)


@login_required
@require_safe
def slide_report(request: HttpRequest, slide_id: int) -> HttpResponse:
    slide = visible_slide_or_404(request.user, slide_id)
    context = {
        "slide": slide,
        "sections": presenters.slide_sections(slide),
        "is_reviewer": is_reviewer_or_admin(request.user, slide.project),
    }
    return render(request, "agreement/slide_report.html", context)


@login_required
@require_safe
def slide_download(request: HttpRequest, slide_id: int, fmt: str) -> HttpResponse:
    """Every stored stage report of the slide as ``agreement-slide-<id>.json`` or ``.csv``."""
    slide = visible_slide_or_404(request.user, slide_id)
    body = presenters.slide_json(slide)
    if fmt == "json":
        return _download(json.dumps(body, indent=1), f"agreement-slide-{slide.pk}.json")
    rows = (
        row
        for report in body["stages"].values()
        if report["status"] == "ready"
        for row in presenters.slide_csv_rows(slide, report)
    )
    return _download(presenters.to_csv(rows), f"agreement-slide-{slide.pk}.csv")


@login_required
@require_safe
def project_report(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    context = {"project": project, "sections": presenters.project_sections(project)}
    return render(request, "agreement/project_report.html", context)


@login_required
@require_safe
def project_download(request: HttpRequest, project_id: int, fmt: str) -> HttpResponse:
    project = _project(request, project_id)
    stages = [selectors.project_report(project=project, stage=s) for s in Stage.values]
    if fmt == "json":
        body = json.dumps(presenters.project_json(project, stages), indent=1)
        return _download(body, f"agreement-project-{project.pk}.json")
    body = presenters.to_csv(presenters.project_csv_rows(project, stages))
    return _download(body, f"agreement-project-{project.pk}.csv")


def _download(body: str, filename: str) -> HttpResponse:
    kind = "application/json" if filename.endswith(".json") else "text/csv; charset=utf-8"
    response = HttpResponse(body, content_type=kind)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_safe
def adjudicate(request: HttpRequest, slide_id: int) -> HttpResponse:
    """The adjudication page for ``?stage=`` (default cells); its script does the walking."""
    slide = visible_slide_or_404(request.user, slide_id)
    stage = request.GET.get("stage", Stage.CELL)
    if stage not in Stage.values:
        stage = Stage.CELL
    reviewer = is_reviewer_or_admin(request.user, slide.project)
    found = Adjudication.objects.filter(slide=slide, stage=stage).first() if reviewer else None
    context = {
        "slide": slide,
        "stage": stage,
        "stage_title": presenters.STAGE_TITLES[stage],
        "is_reviewer": reviewer,
        "adjudication": found,
        "fill_job": selectors.fill_job(found) if found else None,
        "api_url": reverse("agreement-slide-adjudication", args=[slide.pk]) + f"?stage={stage}",
        "decisions_url": reverse("agreement-slide-decisions", args=[slide.pk]) + f"?stage={stage}",
    }
    return render(request, "agreement/adjudicate.html", context)


@login_required
@require_POST
def adjudicate_start(request: HttpRequest, slide_id: int) -> HttpResponse:
    slide = visible_slide_or_404(request.user, slide_id)
    stage = _posted_stage(request)
    try:
        services.start_adjudication(slide=slide, stage=stage, user=request.user)
    except AgreementError as exc:
        messages.error(request, exc.message)
        return redirect("agreement:slide", slide_id=slide.pk)
    return redirect(reverse("agreement:adjudicate", args=[slide.pk]) + f"?stage={stage}")


@login_required
@require_POST
def slide_compute(request: HttpRequest, slide_id: int) -> HttpResponse:
    """Queue the computation of one stage's report; back to the page, which shows its job."""
    slide = visible_slide_or_404(request.user, slide_id)
    stage = _posted_stage(request)
    try:
        services.request_report(slide=slide, stage=stage, user=request.user)
    except AgreementError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("agreement:slide", args=[slide.pk]) + f"#stage-{stage}")


@login_required
@require_POST
def project_compute(request: HttpRequest, project_id: int) -> HttpResponse:
    """Queue a report job for every slide stage whose report is missing or stale."""
    project = _project(request, project_id)
    queued = services.request_project_reports(project=project, user=request.user)
    messages.info(request, f"{len(queued)} report(s) queued; this page shows them when done.")
    return redirect("agreement:project", project_id=project.pk)


def _posted_stage(request: HttpRequest) -> str:
    stage = request.POST.get("stage", Stage.CELL)
    return stage if stage in Stage.values else Stage.CELL
