"""The role predicates: what a user's membership lets them do in a project. The one place.

Every "is this user an admin / a reviewer of this project" question in views, services and
permission classes goes through here. A user's memberships are read in one query and kept on
the user object, so a request that asks several times (a permission class, then a service,
then a serializer) pays once. Django and DRF build ``request.user`` afresh for every request,
so the memo lives for one request; the services that write memberships forget it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import Membership, Project, Role

#: Roles that see every annotator's work (no blinding) and adjudicate disagreements.
PRIVILEGED_ROLES = (Role.REVIEWER, Role.ADMIN)

# The attribute that holds the memo on a user object: {project id: role}.
_MEMO = "_project_roles"


def _project_id(project: Project | int) -> int:
    return project if isinstance(project, int) else project.pk


def _roles(user: Any) -> dict[int, str]:
    """``{project id: role}`` of ``user``'s memberships: one query, then the memo."""
    if not user.is_authenticated:
        return {}
    memo = getattr(user, _MEMO, None)
    if memo is None:
        memo = dict(Membership.objects.filter(user=user).values_list("project_id", "role"))
        setattr(user, _MEMO, memo)
    return memo


def forget_roles(user: Any) -> None:
    """Drop ``user``'s memo (after a membership of theirs is written)."""
    if hasattr(user, _MEMO):
        delattr(user, _MEMO)


def role_of(user: Any, project: Project | int) -> str | None:
    """``user``'s role in ``project`` (a :class:`Role` value), or None for a non-member."""
    return _roles(user).get(_project_id(project))


def is_member(user: Any, project: Project | int) -> bool:
    return role_of(user, project) is not None


def is_admin(user: Any, project: Project | int) -> bool:
    return role_of(user, project) == Role.ADMIN


def is_reviewer_or_admin(user: Any, project: Project | int) -> bool:
    """Whether ``user`` sees every set of ``project`` unblinded and may adjudicate."""
    return role_of(user, project) in PRIVILEGED_ROLES


def reviewer_or_admin_projects(user: Any) -> QuerySet[Membership, Any]:
    """A subquery of the project ids where ``user`` is a reviewer or admin, for filters."""
    return Membership.objects.filter(user=user, role__in=PRIVILEGED_ROLES).values("project")
