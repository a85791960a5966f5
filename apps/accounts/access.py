"""Revoking what a user was granted, at once, in every process: a per-user access generation.

Some answers are remembered outside the database for speed: the deep-zoom fast path
(``apps.slides.tile_asgi``) remembers that a session may see a slide. Each such memory records
the user's generation when it was made and is trusted only while the generation is unchanged.
:func:`revoke` moves it on: on logout, on any change of the user's memberships, and when their
API token is deleted (``apps.accounts.signals``).

The generation lives in two places: a dict in this process, which nothing can evict, and the
Django cache, which with Redis (``settings.REDIS_URL``) every daphne process reads. Checking it
costs one cache read per remembered answer, much less than the database queries it replaces.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction

Generation = tuple[int, int]

_local: dict[int, int] = {}


def _key(user_id: int) -> str:
    return f"access-generation:{user_id}"


def revoke(user_id: int) -> None:
    """Forget every remembered grant of ``user_id``, now and again when the transaction commits.

    Again on commit: a grant asked for between now and the commit still saw the old rows.
    """
    _bump(user_id)
    transaction.on_commit(lambda: _bump(user_id))


def _bump(user_id: int) -> None:
    _local[user_id] = _local.get(user_id, 0) + 1
    key = _key(user_id)
    cache.add(key, 0, timeout=None)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add and incr: a fresh value differs from the old too
        cache.set(key, _local[user_id], timeout=None)


async def ageneration(user_id: int) -> Generation:
    """``user_id``'s generation: a grant made under another one is void."""
    return _local.get(user_id, 0), await cache.aget(_key(user_id), 0)
