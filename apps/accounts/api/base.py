"""The one place where API querysets are scoped to the requesting user's projects.

Every viewset over project-owned data inherits ``ProjectScopedViewSet`` and names the path from
its model to ``Project``. Objects outside the user's projects are simply absent, so an outsider
gets 404, never 403 and never the data. Blinding (annotations) hooks in here too, and so do
the per-action permission classes (``action_permissions``, see ``permissions.py``).
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import viewsets

from apps.accounts.api.permissions import ActionPermissionsMixin
from apps.accounts.models import Project


def projects_of(user) -> QuerySet[Project]:
    return Project.objects.visible_to(user)


class ProjectScopedMixin:
    #: Lookup path from the viewset's model to its Project ("" when the model is Project).
    project_path: str = "project"

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()  # type: ignore[misc]
        user = self.request.user  # type: ignore[attr-defined]
        if not self.project_path:
            return queryset.filter(pk__in=projects_of(user).values("pk"))
        return queryset.filter(**{f"{self.project_path}__in": projects_of(user).values("pk")})


class ProjectScopedViewSet(ActionPermissionsMixin, ProjectScopedMixin, viewsets.GenericViewSet):
    pass
