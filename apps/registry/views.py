"""The registry page: a project's model versions per task, with activate and roll back buttons
for its admins. Members see it; outsiders get 404. The forms POST to the same services as the
API, so the page and the API cannot disagree about who may do what."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.models import Project
from apps.accounts.roles import is_admin

from . import selectors, versions
from .errors import RegistryError
from .models import Task


def _project(request: HttpRequest, project_id: int) -> Project:
    return get_object_or_404(Project.objects.visible_to(request.user), pk=project_id)


@login_required
@require_safe
def project_models(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    versions.import_installed(project)
    rows = selectors.visible_versions(request.user).filter(project=project)
    sections = [
        {"task": task, "title": title, "versions": [v for v in rows if v.task == task]}
        for task, title in Task.choices
    ]
    context = {
        "project": project,
        "sections": sections,
        "is_admin": is_admin(request.user, project),
    }
    return render(request, "registry/project_models.html", context)


@login_required
@require_POST
def activate(request: HttpRequest, project_id: int, version_id: int) -> HttpResponse:
    project = _project(request, project_id)
    version = get_object_or_404(project.model_versions, pk=version_id)
    try:
        versions.activate(version=version, user=request.user)
        messages.info(request, f"{version.task} v{version.version} is now active.")
    except RegistryError as exc:
        messages.error(request, exc.message)
    return redirect("registry:project", project_id=project.pk)


@login_required
@require_POST
def roll_back(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    task = request.POST.get("task", "")
    try:
        version = versions.roll_back(project=project, task=task, user=request.user)
        messages.info(request, f"{task} rolled back to v{version.version}.")
    except RegistryError as exc:
        messages.error(request, exc.message)
    return redirect("registry:project", project_id=project.pk)
