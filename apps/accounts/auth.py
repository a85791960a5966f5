"""The acting user of a request, typed: one place that turns ``request.user`` into a ``User``."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request


def acting_user(request: HttpRequest | Request) -> User:
    """``request.user`` as a :class:`User`; services record who did what with it.

    Every write endpoint requires authentication, so an anonymous user here means a view lost
    its permission class: answer 401 rather than record an edit by nobody.
    """
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user
