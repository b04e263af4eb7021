"""The live figures of a quota answer and of the credits screen, cached per app for the hot paths (issue 5).

``quota`` answers from the credits used (the last applied usage report), the processes counted in the
billing period, in all and per kind, and the kinds' controls (a pause, a monthly cap: issue 15). Reading
them is one statement, but on the hot path that round trip costs more than the rest of the answer. Every
commit that changes them (an applied report, a counted start, a control set) drops the tenant's entry here
at once and, through the broadcaster, in every other instance (``app.services.invalidation``); an entry
whose broadcast was lost lives ``ttl`` seconds at most (``app.caching`` says the rest).

A quota answer is advice: the process start decides in the database, where its conditional UPDATE reads
the credits, the kind's count and its control, so a cached figure can never let a process start past the
credit limit, a pause or a kind's cap.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from app.broadcast import Broadcaster
from app.caching import RefreshingCache
from app.models.metering import ProcessKind
from app.services import invalidation
from app.services.usage import Control, Controls, CurrentUsage, ProcessCounts, control_of, usage_and_counts

CHANNEL = "usage-changed"


@dataclass(frozen=True, slots=True)
class Figures:
    credits_used: int
    processes_used: int
    by_kind: Mapping[ProcessKind, int] = field(default_factory=dict)  # a kind not started: left out
    controls: Controls = field(default_factory=dict)  # the kinds paused or capped by the admins
    # The whole usage row, read by the same statement: the credits screen's figures (``credits.credit_usage``)
    # come from the same entry, so a dashboard polling ``creditUsage`` costs no statement either.
    usage: CurrentUsage = field(default_factory=CurrentUsage, compare=False)

    @property
    def counts(self) -> ProcessCounts:
        return ProcessCounts(self.processes_used, self.by_kind, self.controls)

    def kind_starts(self, process: ProcessKind) -> int:
        """The starts of ``process`` counted in the period (a kind's monthly cap is measured on it)."""
        return self.by_kind.get(process, 0)

    def control(self, process: ProcessKind) -> Control:
        return control_of(self.controls, process)


async def read_figures(tenant_id: object, period: str) -> Figures:
    """The figures as committed, from the database (the credits screen's statement)."""
    usage, counts = await usage_and_counts(uuid.UUID(str(tenant_id)), period)
    return Figures(usage.credits, counts.used, counts.by_kind, counts.controls, usage)


class FiguresCache:
    def __init__(self, *, ttl: float = 60.0, max_tenants: int = 100_000) -> None:
        self._cache: RefreshingCache[str, tuple[str, Figures]] = RefreshingCache(ttl, max_entries=max_tenants)

    async def figures(self, tenant_id: object, period: str) -> Figures:
        async def load() -> tuple[str, Figures]:
            return period, await read_figures(tenant_id, period)

        _, figures = await self._cache.get(str(tenant_id), load, usable=lambda entry: entry[0] == period)
        return figures

    def invalidate(self, tenant_id: object) -> None:
        self._cache.invalidate(str(tenant_id))


async def current_figures(tenant_id: object, period: str, *, cache: FiguresCache | None) -> Figures:
    """The figures through ``cache`` when there is one."""
    return await (cache.figures(tenant_id, period) if cache else read_figures(tenant_id, period))


async def usage_changed(
    tenant_id: object, *, cache: FiguresCache | None, broadcaster: Broadcaster | None
) -> None:
    """After a commit that applied a usage report, counted a start or changed a kind's control."""
    if cache is not None:
        cache.invalidate(tenant_id)
    await invalidation.announce(CHANNEL, tenant_id, broadcaster)


def following_changes(cache: FiguresCache, broadcaster: Broadcaster) -> AbstractAsyncContextManager[None]:
    """In the app's lifespan: drop the entries other instances report as changed."""
    return invalidation.following(CHANNEL, cache.invalidate, broadcaster)
