"""Slide pages and the deep-zoom endpoints the viewer reads. Scoped to the user's projects."""

from __future__ import annotations

import asyncio

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST, require_safe

from apps.accounts import roles
from apps.accounts.auth import login_or_token_required
from apps.accounts.models import Project

from . import deepzoom, selectors, services
from .errors import SlideError
from .tile_response import tile_response


@login_required
@require_safe
def slide_list(request: HttpRequest) -> HttpResponse:
    projects = Project.objects.visible_to(request.user).prefetch_related("slides")
    administered = {p.pk for p in projects if roles.is_admin(request.user, p)}
    return render(request, "slides/list.html", {"projects": projects, "administered": administered})


@login_required
@require_POST
def slide_upload(request: HttpRequest) -> HttpResponse:
    project = get_object_or_404(
        Project.objects.visible_to(request.user), pk=request.POST.get("project")
    )
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a file to upload.")
        return redirect("slides:list")
    try:
        intake = services.take_in_upload(
            project=project,
            chunks=upload.chunks(),
            filename=upload.name or "upload",
            user=request.user,
        )
    except SlideError as exc:
        messages.error(request, exc.message)
        return redirect("slides:list")
    if intake.created:
        messages.success(request, f"{upload.name} uploaded; it is being ingested.")
    else:
        messages.info(
            request, f"{upload.name} is already in {project.name} as “{intake.slide.name}”."
        )
    return redirect("slides:list")


@login_required
@require_safe
def viewer(request: HttpRequest, slide_id: int) -> HttpResponse:
    slide = selectors.visible_slide_or_404(request.user, slide_id)
    return render(request, "slides/viewer.html", {"slide": slide})


# The deep-zoom endpoints are async so daphne can run several tile reads at once: the decode
# and JPEG encode run in worker threads (OpenSlide and Pillow release the GIL), instead of
# queueing every request on Django's single thread for sync views.


@login_or_token_required
@require_GET
async def dzi(request: HttpRequest, slide_id: int) -> HttpResponse:
    slide = await selectors.avisible_slide_or_404(await request.auser(), slide_id, ready=True)
    try:
        xml = await asyncio.to_thread(deepzoom.dzi_xml, slide.viewable_file)
    except deepzoom.TileReadError as exc:
        return HttpResponse(exc.message, status=422, content_type="text/plain")
    return HttpResponse(xml, content_type="application/xml")


@login_or_token_required
@require_safe
async def tile(request: HttpRequest, slide_id: int, level: int, col: int, row: int) -> HttpResponse:
    """One JPEG tile; the ASGI fast path (``tile_asgi``) answers the same from the same code."""
    slide = await selectors.avisible_slide_or_404(await request.auser(), slide_id, ready=True)
    answer = await tile_response(
        sha256=slide.sha256,
        path=slide.viewable_file,
        level=level,
        col=col,
        row=row,
        if_none_match=request.headers.get("If-None-Match"),
        head=request.method == "HEAD",
    )
    if answer.status == 304:
        return HttpResponseNotModified(headers=answer.headers)
    return HttpResponse(answer.body, status=answer.status, headers=answer.headers)
