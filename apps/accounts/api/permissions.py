"""Small permission classes, each answering one question about a project membership.

They are object permissions: a viewset names them for the actions that need them
(``action_permissions``, read by :class:`ActionPermissionsMixin`), and DRF asks them about the
object the action acts on, through ``get_object()`` or, when the object comes from the request
body or the URL's project, an explicit ``check_object_permissions(request, obj)``. The object is a :class:`Project` or anything that
leads to one (``project_id``, or a ``slide`` with one). The questions themselves are answered
by :mod:`apps.accounts.roles`.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts import roles
from apps.accounts.models import Project


def project_id_of(obj: Any) -> int:
    """The id of the project ``obj`` belongs to: a Project, or a row with a project or slide."""
    if isinstance(obj, Project):
        return obj.pk
    if hasattr(obj, "project_id"):
        return obj.project_id
    return obj.slide.project_id


class IsProjectAdmin(BasePermission):
    """The user administers the object's project."""

    message = "Only a project admin may do this."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return roles.is_admin(request.user, project_id_of(obj))


class IsReviewerOrAdmin(BasePermission):
    """The user reviews or administers the object's project."""

    message = "Only the project's reviewers and admins may do this."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return roles.is_reviewer_or_admin(request.user, project_id_of(obj))


class ActionPermissionsMixin:
    """Per-action permissions (NetBox restricts per action): ``action_permissions`` maps a
    viewset action to the permission classes it needs on top of the viewset's defaults."""

    action_permissions: dict[str, list[type[BasePermission]]] = {}

    def get_permissions(self) -> list[BasePermission]:
        defaults = super().get_permissions()  # type: ignore[misc]
        extra = self.action_permissions.get(self.action, [])  # type: ignore[attr-defined]
        return [*defaults, *(permission() for permission in extra)]
