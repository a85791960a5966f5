"""The one least-recently-used cache: bounded by entry count or by total size, thread-safe.

Django-free, so ``ml/`` and the apps share it (open slide handles, encoded tiles, SAM
embeddings). Hand-written ``OrderedDict`` caches elsewhere are a second copy of this.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _one(_: object) -> int:
    return 1


class LRU(Generic[K, V]):
    """Keeps entries while ``sum(size_of(v)) <= max_size``, dropping the least recently used.

    ``size_of`` defaults to 1 per entry, so ``max_size`` is then an entry count. A value
    larger than ``max_size`` on its own is returned but not kept, and evicts nothing. Dropped
    values are only forgotten, never closed: another thread may still be using one.
    """

    def __init__(self, max_size: int, *, size_of: Callable[[V], int] = _one) -> None:
        self.max_size = max_size
        self._size_of = size_of
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        """Store ``value`` unless ``key`` is already present; return the value kept.

        The first value wins so that two threads that built the same entry share one.
        """
        with self._lock:
            kept = self._items.get(key)
            if kept is not None:
                self._items.move_to_end(key)
                return kept
            size = self._size_of(value)
            if size > self.max_size:
                return value
            self._items[key] = value
            self._size += size
            while self._size > self.max_size and self._items:
                _, old = self._items.popitem(last=False)
                self._size -= self._size_of(old)
            return value

    def find(self, match: Callable[[K, V], bool]) -> tuple[K, V] | None:
        """The least recently used entry that ``match`` accepts (now the most recent), or None.

        For caches whose lookups are not by equal key (e.g. "a region that contains a point").
        """
        with self._lock:
            for key, value in self._items.items():
                if match(key, value):
                    self._items.move_to_end(key)
                    return key, value
            return None

    def keys(self) -> list[K]:
        """The keys from least to most recently used."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._items)
