"""Who a request acts for: ``request.user`` typed, and API tokens on the non-DRF routes."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from rest_framework.authtoken.models import Token
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


#: ``Authorization: Token <key>``, DRF's scheme (rest_framework.authtoken), for scripts.
_TOKEN = re.compile(r"^Token\s+([0-9a-f]{40})$", re.IGNORECASE)


def token_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Token <key>`` header; None for no or another header."""
    match = _TOKEN.match((authorization or "").strip())
    return match.group(1).lower() if match else None


async def auser_from_token(key: str) -> User | None:
    """The active user whose API token is ``key``, or None."""
    token = await Token.objects.select_related("user").filter(key=key).afirst()
    return token.user if token is not None and token.user.is_active else None


def login_or_token_required(view: Callable[..., Awaitable[HttpResponseBase]]):
    """An async view for a logged-in session or an ``Authorization: Token <key>`` client.

    A token names its user for this request only (no session is made). A header with a wrong
    key is 401, never the login page: a script has no one to log in.
    """
    guarded = login_required(view)

    @functools.wraps(view)
    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        header = request.headers.get("Authorization")
        if not header:
            return await guarded(request, *args, **kwargs)
        key = token_key(header)
        user = await auser_from_token(key) if key else None
        if user is None:
            return HttpResponse("invalid token", status=401, content_type="text/plain")
        request.user = user

        async def auser() -> User:
            return user

        request.auser = auser
        return await guarded(request, *args, **kwargs)

    return wrapped
