"""A user who logged in with a one-time password must choose their own before anything else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

#: The session key that says this login used a one-time password. It is set at login
#: (``signals``), so no request after it pays a query to know.
MUST_CHANGE_PASSWORD = "must_change_password"


class PasswordChangeRequiredMiddleware:
    """Pages redirect to the password change page, the API answers 403, until it is done.

    Sync and async: the deep-zoom views are async, and a sync-only middleware would put every
    one of their requests through a thread hop.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        session = getattr(request, "session", None)
        if session is not None and session.get(MUST_CHANGE_PASSWORD):
            return _refusal(request) or self.get_response(request)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        session = getattr(request, "session", None)
        if session is not None and await session.aget(MUST_CHANGE_PASSWORD):
            return _refusal(request) or await get_response(request)
        return await get_response(request)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    if request.path in (reverse("accounts:password"), reverse("logout")):
        return None
    if request.path.startswith("/api/"):
        detail = "choose your own password first: your one-time password is spent"
        return JsonResponse({"detail": detail}, status=403)
    return redirect("accounts:password")
