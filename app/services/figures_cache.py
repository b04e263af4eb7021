"""The two live figures of a quota answer, cached per app for the connector's hot path (issue 5).

``quota`` answers from the credits used (the last applied usage report) and the processes counted in the
billing period. Reading them is one statement, but on the hot path that round trip costs more than the
rest of the answer. Every commit that changes them (an applied report, a counted start) drops the tenant's
entry here at once and, through the broadcaster, in every other instance (``app.services.invalidation``);
an entry whose broadcast was lost lives ``ttl`` seconds at most. A read that raced a change is not kept.

A quota answer is advice: the process start decides in the database, where its conditional UPDATE reads
the credits, so a cached figure can never let a process start past the credit limit.
"""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from app.broadcast import Broadcaster
from app.clock import spread
from app.services import invalidation, sql

CHANNEL = "usage-changed"

# One round trip for both figures, 0 when none.
_FIGURES = (
    "SELECT (SELECT credits FROM tenant_usage WHERE tenant_id = {0}),"
    " (SELECT used FROM process_counter WHERE tenant_id = {0} AND period = {1})"
)


@dataclass(frozen=True, slots=True)
class Figures:
    credits_used: int
    processes_used: int


async def read_figures(tenant_id: object, period: str) -> Figures:
    """The figures as committed, from the database."""
    credits, used = await sql.fetch_one(_FIGURES, uuid.UUID(str(tenant_id)), period)
    return Figures(int(credits or 0), int(used or 0))


class FiguresCache:
    def __init__(self, *, ttl: float = 10.0, max_tenants: int = 100_000) -> None:
        self.ttl = ttl
        self.max_tenants = max_tenants
        self._entries: dict[str, tuple[str, Figures, float]] = {}  # tenant -> (period, figures, expiry)
        # Bumped by every change: a read that started before the change must not be kept after it.
        self._changes: dict[str, int] = {}
        self._epoch = 0

    async def figures(self, tenant_id: object, period: str) -> Figures:
        tenant = str(tenant_id)
        entry = self._entries.get(tenant)
        if entry is not None and entry[0] == period and time.monotonic() < entry[2]:
            return entry[1]
        seen = (self._epoch, self._changes.get(tenant, 0))
        figures = await read_figures(tenant_id, period)
        if self.ttl > 0 and seen == (self._epoch, self._changes.get(tenant, 0)):
            if len(self._entries) >= self.max_tenants:
                self.clear()  # crude but bounded: entries are cheap to rebuild
            self._entries[tenant] = (period, figures, time.monotonic() + spread(self.ttl))
        return figures

    def invalidate(self, tenant_id: object) -> None:
        tenant = str(tenant_id)
        self._entries.pop(tenant, None)
        if len(self._changes) >= self.max_tenants:
            self.clear()
        self._changes[tenant] = self._changes.get(tenant, 0) + 1

    def clear(self) -> None:
        self._entries.clear()
        self._changes.clear()
        self._epoch += 1


async def current_figures(tenant_id: object, period: str, *, cache: FiguresCache | None) -> Figures:
    """The figures through ``cache`` when there is one."""
    return await (cache.figures(tenant_id, period) if cache else read_figures(tenant_id, period))


async def usage_changed(
    tenant_id: object, *, cache: FiguresCache | None, broadcaster: Broadcaster | None
) -> None:
    """After a commit that applied a usage report or counted a start."""
    if cache is not None:
        cache.invalidate(tenant_id)
    await invalidation.announce(CHANNEL, tenant_id, broadcaster)


def following_changes(cache: FiguresCache, broadcaster: Broadcaster) -> AbstractAsyncContextManager[None]:
    """In the app's lifespan: drop the entries other instances report as changed."""
    return invalidation.following(CHANNEL, cache.invalidate, broadcaster)
