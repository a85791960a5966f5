"""Sessions end after an idle time (``SESSION_COOKIE_AGE``), renewed by use.

Django's ``SESSION_SAVE_EVERY_REQUEST`` would write the session row on every request, and a
viewer makes dozens a second (tiles, crops, saves): contended writes for no gain. This
middleware renews a session at most once per ``RENEW_EVERY`` seconds instead, so a session
ends between ``SESSION_COOKIE_AGE - RENEW_EVERY`` and ``SESSION_COOKIE_AGE`` after its last
request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

RENEW_EVERY = 60
_KEY = "_renewed_at"


class RenewIdleSession:
    """After ``SessionMiddleware``: mark a used session modified once a minute, so Django
    saves it with a fresh expiry (now + ``SESSION_COOKIE_AGE``) and resends the cookie."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.session_key and not session.is_empty():
            now = time.time()
            if now - session.get(_KEY, 0) >= RENEW_EVERY:
                session[_KEY] = now
        return response
