"""The tenant's plan and effective limits, cached per app for the hot path (issue 5).

``quota`` and ``startProcess`` run before every sync process of every store, and the back office reads
``myPlan`` and ``creditUsage`` on every screen; recomputing the plan and its limits (two queries) on each
would be most of their cost. The cache is safe for money and limits because the only thing that lowers a
limit is an add-on reaching its end date, and an entry never outlives the earliest end date of the add-ons
it counted (nor its billing period, nor ``ttl``). Every commit that changes a tenant's plan or add-ons (a
purchase, a cancellation or its undoing, an integration's settings) drops the entry at once, here and,
through the broadcaster, in every other instance. Until the broadcast arrives there, an entry is stricter
than the truth, never looser: a cancellation takes effect at the end of the period, which already bounds
the entry. The credit usage itself is never cached: the process start's conditional UPDATE reads it in
the database.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from app.broadcast import Broadcaster
from app.caching import RefreshingCache
from app.models.tenancy import Tenant
from app.services import invalidation
from app.services.subscriptions import TenantPlan, active_plan

CHANNEL = "plan-changed"


@dataclass(frozen=True, slots=True)
class _Entry:
    plan: TenantPlan | None  # None: no active plan
    loaded_at: dt.datetime
    valid_until: dt.datetime


class PlanCache:
    def __init__(self, *, ttl: dt.timedelta = dt.timedelta(seconds=30), max_tenants: int = 100_000) -> None:
        self.ttl = ttl
        self._cache: RefreshingCache[str, _Entry] = RefreshingCache(
            ttl.total_seconds(), max_entries=max_tenants
        )

    async def active_plan(self, tenant: Tenant, *, now: dt.datetime) -> TenantPlan | None:
        """The plan and limits at ``now`` (``None`` without an active plan), from the cache while it is
        provably the same answer."""

        async def load() -> _Entry:
            plan = await active_plan(tenant, now=now)
            return _Entry(plan, now, valid_until(plan, now, self.ttl))

        entry = await self._cache.get(
            str(tenant.id), load, usable=lambda entry: entry.loaded_at <= now < entry.valid_until
        )
        return entry.plan

    def invalidate(self, tenant_id: object) -> None:
        self._cache.invalidate(str(tenant_id))

    def clear(self) -> None:
        """After a catalog change (``tollgate catalog apply``): every entry holds catalog rows."""
        self._cache.clear()


async def current_plan(tenant: Tenant, *, now: dt.datetime, cache: PlanCache | None) -> TenantPlan | None:
    """``active_plan``, through ``cache`` when there is one."""
    return await (cache.active_plan(tenant, now=now) if cache else active_plan(tenant, now=now))


def valid_until(plan: TenantPlan | None, now: dt.datetime, ttl: dt.timedelta) -> dt.datetime:
    """The first instant the answer could change without a write: an add-on's end, the period's end."""
    bounds = [now + ttl]
    if plan is not None:
        bounds.append(dt.datetime.combine(plan.period.end, dt.time(), tzinfo=dt.UTC))
        bounds += [add_on.ends_at for add_on in plan.add_ons if add_on.ends_at is not None]
    return min(bounds)


async def plan_changed(
    tenant_id: object, *, cache: PlanCache | None, broadcaster: Broadcaster | None
) -> None:
    """After a commit that changed a tenant's plan or add-ons: drop the entry here and in every other
    instance (meanwhile theirs are stricter than the truth, and expire by themselves)."""
    if cache is not None:
        cache.invalidate(tenant_id)
    await invalidation.announce(CHANNEL, tenant_id, broadcaster)


def following_changes(cache: PlanCache, broadcaster: Broadcaster) -> AbstractAsyncContextManager[None]:
    """In the app's lifespan: drop the entries other instances report as changed."""
    return invalidation.following(CHANNEL, cache.invalidate, broadcaster)
