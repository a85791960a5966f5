"""The one cache of agreement: an adjudication's disagreement list, decoded.

Every decision needs the list. The fill job stores it on the adjudication row (every process
reads that, whatever its cache backend); this keeps the decoded list in Django's cache under a
key that holds the two sets' *source state* (:func:`apps.agreement.selectors.source_state`):
any change to either set changes the key, so a stale list is never served, only left to expire.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from django.core.cache import cache

if TYPE_CHECKING:
    from .models import Adjudication
    from .selectors import Item

CACHE_SECONDS = 3600


def _key(adjudication: Adjudication, state: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(state, sort_keys=True).encode()).hexdigest()
    return f"agreement:adjudication:{adjudication.pk}:{adjudication.iou_threshold}:{digest}"


def get_items(adjudication: Adjudication, state: dict[str, Any]) -> list[Item] | None:
    """The cached disagreements of ``adjudication`` for source ``state``, or None."""
    return cache.get(_key(adjudication, state))


def put_items(adjudication: Adjudication, state: dict[str, Any], items: list[Item]) -> None:
    cache.set(_key(adjudication, state), items, CACHE_SECONDS)
