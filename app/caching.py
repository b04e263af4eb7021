"""The per-app caches of the hot path share one discipline (issue 5): ``RefreshingCache``.

- An entry lives ``ttl`` seconds at most; each cache adds its own bounds (``usable``).
- Past a random point between 50% and 90% of its life, a read still gets the entry and reloads it in the
  background, once per key: a key in use never waits for the database, and entries loaded together (a
  fleet of connectors starting at once, a restart) are not reloaded together, in one herd.
- ``invalidate`` drops an entry after a commit changed what it holds; a load that overlapped it (it may
  have read the database before the commit) is not kept.
- A background reload that fails drops the entry: the next read loads it and meets the failure itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

logger = logging.getLogger("tollgate.caching")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    refresh_at: float  # on the cache's monotonic clock
    expires_at: float


def _always(_value: object) -> bool:
    return True


class RefreshingCache(Generic[K, V]):
    def __init__(
        self, ttl: float, *, max_entries: int = 100_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self.max_entries = max_entries
        self._entries: dict[K, _Entry[V]] = {}
        self._versions: dict[K, int] = {}  # bumped by each invalidation
        self._epoch = 0  # bumped by each clear
        self._reloading: dict[K, asyncio.Task[None]] = {}

    async def get(
        self, key: K, load: Callable[[], Awaitable[V]], *, usable: Callable[[V], bool] = _always
    ) -> V:
        """The entry for ``key``, else what ``load`` returns (kept unless ``invalidate`` ran meanwhile)."""
        entry = self._entries.get(key)
        if entry is not None and usable(entry.value):
            now = self.monotonic()
            if now < entry.expires_at:
                if now >= entry.refresh_at and key not in self._reloading:
                    self._reload_in_background(key, load)
                return entry.value
        return await self._load(key, load)

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)
        if len(self._versions) >= self.max_entries:
            self.clear()
        self._versions[key] = self._versions.get(key, 0) + 1

    def clear(self) -> None:
        self._entries.clear()
        self._versions.clear()
        self._epoch += 1

    def __iter__(self) -> Iterator[K]:
        """The keys held now (a copy: invalidating while iterating is fine)."""
        return iter(list(self._entries))

    def items(self) -> list[tuple[K, V]]:
        """The entries held now, expired ones included (a copy: invalidating while iterating is fine)."""
        return [(key, entry.value) for key, entry in self._entries.items()]

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        seen = (self._epoch, self._versions.get(key, 0))
        value = await load()
        if self.ttl > 0 and seen == (self._epoch, self._versions.get(key, 0)):
            if len(self._entries) >= self.max_entries:
                self.clear()  # crude but bounded: entries are cheap to rebuild
            now = self.monotonic()
            refresh_at = now + self.ttl * random.uniform(0.5, 0.9)
            self._entries[key] = _Entry(value, refresh_at, now + self.ttl)
        return value

    def _reload_in_background(self, key: K, load: Callable[[], Awaitable[V]]) -> None:
        async def reload() -> None:
            try:
                await self._load(key, load)
            except Exception:
                logger.debug("background reload failed: entry dropped", exc_info=True)
                self._entries.pop(key, None)
            finally:
                self._reloading.pop(key, None)

        self._reloading[key] = asyncio.create_task(reload(), name="cache-reload")
