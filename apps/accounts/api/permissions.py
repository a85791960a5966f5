"""Small permission classes, each answering one question about a project membership."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from apps.accounts.models import Project, Role


def role_in(project: Project, user) -> str | None:
    return project.role_of(user) if user.is_authenticated else None


class IsProjectAdmin(BasePermission):
    """The user administers the object's project."""

    message = "Only a project admin may do this."

    def has_object_permission(self, request, view, obj) -> bool:
        project = obj if isinstance(obj, Project) else obj.project
        return role_in(project, request.user) == Role.ADMIN
