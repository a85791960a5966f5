"""Slide pages and the deep-zoom endpoints the viewer reads. Scoped to the user's projects."""

from __future__ import annotations

import asyncio

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import Project

from . import deepzoom, services
from .errors import SlideError
from .models import Slide, SlideStatus


@login_required
def slide_list(request: HttpRequest) -> HttpResponse:
    projects = Project.objects.visible_to(request.user).prefetch_related("slides")
    return render(request, "slides/list.html", {"projects": projects})


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
            project=project, chunks=upload.chunks(), filename=upload.name, user=request.user
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
def viewer(request: HttpRequest, slide_id: int) -> HttpResponse:
    slide = get_object_or_404(Slide.objects.visible_to(request.user), pk=slide_id)
    return render(request, "slides/viewer.html", {"slide": slide})


# The deep-zoom endpoints are async so daphne can run several tile reads at once: the decode
# and JPEG encode run in worker threads (OpenSlide and Pillow release the GIL), instead of
# queueing every request on Django's single thread for sync views.


async def _avisible_ready_slide(request: HttpRequest, slide_id: int) -> Slide:
    user = await request.auser()
    slide = (
        await Slide.objects.visible_to(user)
        .only("id", "sha256", "status", "file_path", "view_path")
        .filter(pk=slide_id)
        .afirst()
    )
    if slide is None or slide.status != SlideStatus.READY:
        raise Http404("no such slide, or it is not ready")
    return slide


@login_required
@require_GET
async def dzi(request: HttpRequest, slide_id: int) -> HttpResponse:
    slide = await _avisible_ready_slide(request, slide_id)
    try:
        xml = await asyncio.to_thread(deepzoom.dzi_xml, slide.viewable_file)
    except deepzoom.TileReadError as exc:
        return HttpResponse(exc.message, status=422, content_type="text/plain")
    return HttpResponse(xml, content_type="application/xml")


@login_required
@require_GET
async def tile(request: HttpRequest, slide_id: int, level: int, col: int, row: int) -> HttpResponse:
    slide = await _avisible_ready_slide(request, slide_id)
    etag = f'"{deepzoom.tile_etag(slide.sha256, level, col, row)}"'
    if request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified(headers={"ETag": etag})
    try:
        data = await deepzoom.aget_tile(slide.viewable_file, slide.sha256, level, col, row)
    except deepzoom.TileNotFound as exc:
        raise Http404("no such tile") from exc
    except deepzoom.TileReadError as exc:
        return HttpResponse(exc.message, status=422, content_type="text/plain")
    response = HttpResponse(data, content_type="image/jpeg")
    response["ETag"] = etag
    # Tiles of a given file never change (the URL's slide maps to one SHA-256), but they are
    # private to the project's members.
    response["Cache-Control"] = "private, max-age=86400"
    return response
