"""A small thread-safe cache whose entries expire after a fixed time.

The prediction path uses it to skip database round trips that would otherwise dominate a
request's overhead: API key → project, and model name/version/alias → resolved version.
Entries are short-lived on purpose: a change made through another API process (a revoked key,
a moved alias, a new ready version) is seen within ``ttl_seconds``; changes made through this
process clear the affected entries at once. ``ttl_seconds`` 0 turns the cache off.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0 or max_entries < 1:
            raise ValueError("ttl_seconds must be >= 0 and max_entries >= 1")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl_seconds == 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)  # the oldest insertion

    def discard_where(self, predicate: Callable[[K], bool]) -> None:
        with self._lock:
            for key in [k for k in self._entries if predicate(k)]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
