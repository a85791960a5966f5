"""Writes that span accounts models: projects, and a project's team with its audit log.

Every team change is recorded as a :class:`MembershipEvent`; a project always keeps at least
one admin. A changed or removed membership also ends the user's remembered tile grants at once
(``apps.accounts.signals`` -> ``access.revoke``).
"""

from __future__ import annotations

import secrets

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q

from apps.annotations.services import ensure_label_schema

from .errors import AlreadyMember, LastAdmin, NotMember, UnknownUser, UsernameTaken
from .models import (
    MemberAction,
    Membership,
    MembershipEvent,
    PasswordChangeRequired,
    Project,
    Role,
)
from .roles import forget_roles


@transaction.atomic
def create_project(*, name: str, created_by: User, description: str = "") -> Project:
    """Create a project; its creator becomes its first project admin."""
    project = Project.objects.create(name=name, description=description, created_by=created_by)
    Membership.objects.create(project=project, user=created_by, role=Role.ADMIN)
    _record(project, created_by, created_by, MemberAction.ADDED, new_role=Role.ADMIN)
    forget_roles(created_by)
    ensure_label_schema(project=project)
    return project


@transaction.atomic
def add_member(*, project: Project, user: User, role: str, by: User | None = None) -> Membership:
    """Make ``user`` a member of ``project`` with ``role`` (or give them ``role``), audited."""
    old = Membership.objects.filter(project=project, user=user).first()
    if old is not None and old.role != role:
        return change_role(project=project, user=user, role=role, by=by)
    membership, created = Membership.objects.get_or_create(
        project=project, user=user, defaults={"role": role}
    )
    if created:
        _record(project, by, user, MemberAction.ADDED, new_role=role)
    forget_roles(user)
    return membership


def find_user(identifier: str) -> User:
    """The user whose username, or else e-mail address, is ``identifier`` (case-insensitive)."""
    identifier = identifier.strip()
    user = User.objects.filter(username__iexact=identifier).first()
    if user is None and "@" in identifier:
        user = User.objects.filter(email__iexact=identifier).order_by("pk").first()
    if user is None:
        raise UnknownUser(f"no user has the username or e-mail address {identifier!r}")
    return user


@transaction.atomic
def add_member_by_name(*, project: Project, identifier: str, role: str, by: User) -> Membership:
    """Add the user named by username or e-mail; a member already is an error (409)."""
    user = find_user(identifier)
    if Membership.objects.filter(project=project, user=user).exists():
        raise AlreadyMember(f"{user.username} is a member already: change their role")
    return add_member(project=project, user=user, role=role, by=by)


@transaction.atomic
def change_role(*, project: Project, user: User, role: str, by: User | None) -> Membership:
    membership = _membership(project, user)
    if membership.role == role:
        return membership
    if membership.role == Role.ADMIN:
        _keep_an_admin(project, user)
    old_role, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    _record(project, by, user, MemberAction.ROLE_CHANGED, old_role=old_role, new_role=role)
    forget_roles(user)
    return membership


@transaction.atomic
def remove_member(*, project: Project, user: User, by: User | None) -> None:
    """Take ``user`` out of ``project``; their access, tiles included, ends at once."""
    membership = _membership(project, user)
    if membership.role == Role.ADMIN:
        _keep_an_admin(project, user)
    membership.delete()
    _record(project, by, user, MemberAction.REMOVED, old_role=membership.role)
    forget_roles(user)


@transaction.atomic
def create_user(
    *, project: Project, username: str, email: str, role: str, by: User
) -> tuple[User, str]:
    """A new user in ``project`` and their one-time password, to be shown once and never kept.

    They must choose their own password at their first login (:class:`PasswordChangeRequired`).
    """
    username, email = username.strip(), email.strip()
    taken = Q(username__iexact=username) | (Q(email__iexact=email) if email else Q(pk__in=[]))
    if User.objects.filter(taken).exists():
        raise UsernameTaken(f"the username {username!r} or the e-mail address is in use")
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(username, email=email, password=password)
    PasswordChangeRequired.objects.create(user=user)
    _record(project, by, user, MemberAction.USER_CREATED)
    add_member(project=project, user=user, role=role, by=by)
    return user, password


def password_changed(*, user: User) -> None:
    """The user chose their own password: the one-time one is spent."""
    PasswordChangeRequired.objects.filter(user=user).delete()


def _membership(project: Project, user: User) -> Membership:
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        raise NotMember(f"{user.username} is not a member of {project.name}")
    return membership


def _keep_an_admin(project: Project, leaving: User) -> None:
    # Locking the admins' rows makes two admins demoting each other at once take turns.
    admins = Membership.objects.select_for_update().filter(project=project, role=Role.ADMIN)
    if not admins.exclude(user=leaving).exists():
        raise LastAdmin(f"{leaving.username} is the last admin of {project.name}")


def _record(
    project: Project,
    by: User | None,
    user: User,
    action: str,
    *,
    old_role: str = "",
    new_role: str = "",
) -> None:
    MembershipEvent.objects.create(
        project=project,
        actor=by,
        user=user,
        username=user.username,
        action=action,
        old_role=old_role,
        new_role=new_role,
    )
