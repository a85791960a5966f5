"""Errors of team administration (see apps/core/errors.py)."""

from __future__ import annotations

from apps.core.errors import AppError


class MembershipError(AppError):
    """A team change that cannot be made as asked."""


class UnknownUser(MembershipError):
    """No user has that username or e-mail address."""


class AlreadyMember(MembershipError):
    """The user is in the project already (change their role instead)."""


class NotMember(MembershipError):
    """The user is not in the project."""


class LastAdmin(MembershipError):
    """The change would leave the project without an admin."""


class UsernameTaken(MembershipError):
    """A new user's username or e-mail address is in use."""
