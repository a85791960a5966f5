"""The annotation pages: the workspace (one stage of one slide) and the cell gallery.

Thin views: they find the slide among the user's projects and hand ids to the page through
``data-*`` attributes; everything else (annotations, tasks, blinding) comes from the JSON API.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from apps.accounts.roles import role_of
from apps.slides.models import SlideStatus
from apps.slides.selectors import visible_slide_or_404

from .models import Stage

STAGE_TABS = [(Stage.ROI, "ROI"), (Stage.TOI, "Tiles (TOI)"), (Stage.CELL, "Cells")]


@login_required
@require_safe
def annotate(request: HttpRequest, slide_id: int) -> HttpResponse:
    slide = visible_slide_or_404(request.user, slide_id)
    stage = request.GET.get("stage", Stage.ROI)
    if stage not in Stage.values:
        return redirect(f"{reverse('annotations:annotate', args=[slide.pk])}?stage={Stage.ROI}")
    context = {
        "slide": slide,
        "stage": stage,
        "stage_name": Stage(stage).label,
        "tabs": STAGE_TABS,
        "role": role_of(request.user, slide.project_id) or "",
        "ready": slide.status == SlideStatus.READY,
    }
    return render(request, "annotations/annotate.html", context)


@login_required
@require_safe
def gallery(request: HttpRequest, slide_id: int) -> HttpResponse:
    slide = visible_slide_or_404(request.user, slide_id)
    return render(request, "annotations/gallery.html", {"slide": slide})
