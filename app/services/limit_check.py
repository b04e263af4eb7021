"""May the environment add that many users, integrations or bytes now? (``limitCheck``, issue 15).

The ERP and the back office ask before creating a user, enabling an integration or storing a file. The
answer compares the use as last reported (the applied usage report; zeros before any) plus ``adding`` with
the effective limit (the plan plus its active add-ons; storage in bytes, 1 MB = 1 MiB):

- Within the limit (used + adding <= limit, at the limit included): allowed, no reason.
- Users and integrations beyond it: refused, ``LIMIT_REACHED``; ``available`` says how many still fit.
- Storage beyond the storage included: a ``HARD_CAP`` plan refuses (``STORAGE_CAP``); an ``OVERAGE`` plan
  allows (``STORAGE_OVERAGE``) and says what the extra costs a month: the overage cost after adding minus
  the overage cost now, each in whole GB rounded up at the plan's price per GB in the tenant's currency
  (``credits.storage_figures``, the figures of ``creditUsage``). Adding bytes that stay within a GB already
  billed costs nothing more.
- No active plan: refused, ``PLAN_INACTIVE`` (as ``quota``).

Like ``quota`` this is advice, a pre-check: it counts and reserves nothing, two callers may both be told
yes for the last seat, and the limits are read through the plan cache (an entry is never looser than the
truth, see ``plan_cache``). What is enforced is what the usage reports then show (alerts, plan changes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from app import money
from app.i18n import _
from app.models.catalog import Plan
from app.models.enums import StoragePolicy
from app.models.tenancy import Tenant
from app.services.credits import BYTES_PER_MB, storage_figures
from app.services.errors import InvalidInput
from app.services.limits import Limits
from app.services.plan_cache import PlanCache, current_plan
from app.services.usage import CurrentUsage, current_usage


class LimitResource(StrEnum):
    USERS = "USERS"
    INTEGRATIONS = "INTEGRATIONS"
    STORAGE = "STORAGE"  # in bytes


class LimitCheckReason(StrEnum):
    LIMIT_REACHED = "LIMIT_REACHED"  # denied: more users or integrations than the limit
    STORAGE_CAP = "STORAGE_CAP"  # denied: beyond the storage included, under a hard cap
    STORAGE_OVERAGE = "STORAGE_OVERAGE"  # allowed: beyond the storage included, billed per extra GB
    PLAN_INACTIVE = "PLAN_INACTIVE"  # denied: no active plan


# The most one check may ask to add: far above any plan, small enough for every engine's BIGINT sums.
MAX_ADDING = {
    LimitResource.USERS: 1_000_000_000,
    LimitResource.INTEGRATIONS: 1_000_000_000,
    LimitResource.STORAGE: 10**16,  # bytes: 10 PB
}


@dataclass(frozen=True, slots=True)
class LimitCheck:
    resource: LimitResource
    adding: int
    allowed: bool
    reason: LimitCheckReason | None
    limit: int  # bytes for storage; 0 without an active plan
    used: int  # bytes for storage
    policy: StoragePolicy | None = None  # storage with an active plan only
    extra_monthly_cost: money.Money | None = None  # storage overage only
    overage_cost_after: money.Money | None = None  # storage with an active plan only

    @property
    def available(self) -> int:
        """What still fits within the limit (bytes for storage); 0 at or beyond it."""
        return max(self.limit - self.used, 0)


def validate_adding(resource: LimitResource, adding: int) -> int:
    """0 asks "are we within the limit now?"; negative or absurdly large amounts are refused."""
    if adding < 0:
        raise InvalidInput(_("adding may not be negative."), field="adding")
    if adding > MAX_ADDING[resource]:
        raise InvalidInput(
            _(
                "adding may be at most {maximum} for {resource}.",
                maximum=format(MAX_ADDING[resource], ","),
                resource=resource.value,
            ),
            field="adding",
        )
    return adding


def used_of(usage: CurrentUsage, resource: LimitResource) -> int:
    if resource == LimitResource.USERS:
        return usage.users
    if resource == LimitResource.INTEGRATIONS:
        return usage.integrations
    return usage.storage_bytes


def limit_of(limits: Limits, resource: LimitResource) -> int:
    if resource == LimitResource.USERS:
        return limits.users
    if resource == LimitResource.INTEGRATIONS:
        return limits.integrations
    return limits.storage_mb * BYTES_PER_MB


def decide(
    resource: LimitResource, adding: int, *, used: int, limits: Limits, plan: Plan, currency: str
) -> LimitCheck:
    """The answer under an active ``plan`` with ``limits`` (pure: no database)."""
    limit = limit_of(limits, resource)
    within = used + adding <= limit
    if resource != LimitResource.STORAGE:
        reason = None if within else LimitCheckReason.LIMIT_REACHED
        return LimitCheck(resource, adding, within, reason, limit, used)
    now = storage_figures(used, limits.storage_mb, plan, currency)
    after = storage_figures(used + adding, limits.storage_mb, plan, currency)
    if within:
        allowed, reason, extra = True, None, None
    elif plan.storage_policy == StoragePolicy.HARD_CAP:
        allowed, reason, extra = False, LimitCheckReason.STORAGE_CAP, None
    else:
        allowed, reason = True, LimitCheckReason.STORAGE_OVERAGE
        extra = after.overage_cost - now.overage_cost
    return LimitCheck(
        resource,
        adding,
        allowed,
        reason,
        limit,
        used,
        policy=plan.storage_policy,
        extra_monthly_cost=extra,
        overage_cost_after=after.overage_cost,
    )


def inactive(resource: LimitResource, adding: int, used: int) -> LimitCheck:
    """No active plan: nothing may be added (there is no limit to measure against)."""
    return LimitCheck(resource, adding, False, LimitCheckReason.PLAN_INACTIVE, 0, used)


async def check_limit(
    tenant: Tenant,
    resource: LimitResource,
    adding: int,
    *,
    now: dt.datetime,
    plan_cache: PlanCache | None = None,
) -> LimitCheck:
    """May ``tenant`` add ``adding`` users, integrations or bytes now? Counts and reserves nothing; the
    plan comes through ``plan_cache`` when given, the use from the database (one query)."""
    validate_adding(resource, adding)
    plan = await current_plan(tenant, now=now, cache=plan_cache)
    used = used_of(await current_usage(tenant.id), resource)
    if plan is None:
        return inactive(resource, adding, used)
    return decide(
        resource,
        adding,
        used=used,
        limits=plan.effective_limits,
        plan=plan.subscription.plan,
        currency=tenant.currency,
    )
