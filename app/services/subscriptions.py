"""A tenant's plan and its add-ons as they stand at a moment ("My plan")."""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache

import orjson
from tortoise.expressions import Q

from app.auth.principal import Principal
from app.models.billing import AddOnSubscription, PlanChange, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.models.enums import PlanChangeStatus, PlanSubscriptionStatus
from app.models.tenancy import Tenant
from app.services import sql
from app.services.access import require_store_access
from app.services.errors import NoActivePlan
from app.services.limits import Limits, effective_features, effective_limits
from app.services.periods import BillingPeriod, period_containing


@dataclass(frozen=True, slots=True)
class TenantPlan:
    tenant: Tenant
    subscription: PlanSubscription  # with ``plan`` loaded
    add_ons: list[AddOnSubscription]  # counting at ``at``, with ``add_on`` loaded
    effective_limits: Limits
    features: list[str]
    period: BillingPeriod
    at: dt.datetime


def counting_at(now: dt.datetime) -> Q:
    """Add-on subscriptions that count towards the limits at ``now``: contracted, not yet ended."""
    return Q(contracted_at__lte=now) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))


async def active_plan(tenant: Tenant, *, now: dt.datetime) -> TenantPlan | None:
    """The plan and limits at ``now``, or ``None`` when the tenant has no active plan (nothing may start)."""
    try:
        return await load_tenant_plan(tenant, now=now)
    except NoActivePlan:
        return None


@cache
def _plan_statement() -> str:
    """The plan subscription with its plan and the add-on subscriptions counting at ``{1}`` with their add-on
    (none: one row of NULLs for them), in the order ``add_ons`` lists them."""
    tables = (("s", PlanSubscription), ("p", Plan), ("a", AddOnSubscription), ("o", AddOn))
    return (
        f"SELECT {', '.join(sql.columns_of(model, alias) for alias, model in tables)}"
        ' FROM "plan_subscription" AS s JOIN "plan" AS p ON p."id" = s."plan_id"'
        ' LEFT JOIN "add_on_subscription" AS a ON a."tenant_id" = s."tenant_id" AND a."contracted_at" <= {1}'
        ' AND (a."ends_at" IS NULL OR a."ends_at" > {1}) LEFT JOIN "add_on" AS o ON o."id" = a."add_on_id"'
        ' WHERE s."tenant_id" = {0} ORDER BY a."contracted_at", a."id"'
    )


async def load_tenant_plan(tenant: Tenant, *, now: dt.datetime) -> TenantPlan:
    """The plan, the add-ons counting at ``now`` and the effective limits, in one query (two while a plan
    change is scheduled: from its ``effective_at`` on, its plan is the one in force)."""
    rows = await sql.fetch_all(_plan_statement(), tenant.id, now)
    if not rows or rows[0]["s_status"] != PlanSubscriptionStatus.ACTIVE.value:
        raise NoActivePlan()
    subscription = sql.instance_of(PlanSubscription, "s", rows[0])
    subscription.plan = sql.instance_of(Plan, "p", rows[0])
    if subscription.pending_change_id is not None:  # one more query, only while a change is scheduled
        await _apply_pending_change(subscription, now)
    add_ons: list[AddOnSubscription] = []
    for row in rows:
        if row["a_id"] is not None:  # NULL: no add-on counts at ``now``
            add_on_subscription = sql.instance_of(AddOnSubscription, "a", row)
            add_on_subscription.add_on = shared_add_on(sql.instance_of(AddOn, "o", row))
            add_ons.append(add_on_subscription)
    return TenantPlan(
        tenant=tenant,
        subscription=subscription,
        add_ons=add_ons,
        effective_limits=effective_limits(subscription.plan, add_ons),
        features=effective_features(subscription.plan, add_ons),
        period=period_containing(now, tenant.billing_anchor_day),
        at=now,
    )


async def _apply_pending_change(subscription: PlanSubscription, now: dt.datetime) -> None:
    """From its ``effective_at`` on, a scheduled change's plan is in force, even before the task that
    moves the row (``plan_changes.apply_due_plan_changes``) has run: the row is changed here, in memory."""
    change = await PlanChange.get_or_none(
        id=subscription.pending_change_id, status=PlanChangeStatus.SCHEDULED
    ).select_related("to_plan")
    if change is None or change.effective_at > now:
        return
    subscription.plan = change.to_plan
    subscription.unit_price = change.to_unit_price
    subscription.currency = change.currency
    subscription.pending_change_id = None  # in force: no longer pending


# The add-ons that loaded plans point to, one instance per catalog row as it was read (see shared_add_on).
_ADD_ONS: weakref.WeakValueDictionary[bytes, AddOn] = weakref.WeakValueDictionary()


def shared_add_on(add_on: AddOn) -> AddOn:
    """One instance for every subscription to the same add-on, as long as its row reads the same.

    The plan cache holds the plans of thousands of tenants; each subscription loaded with its own copy of
    the add-on (name, prices, features, conditions) made the cache grow with every purchase by far more
    than the purchase itself (the soak run of issue 11). Instances are shared read-only; a row that
    changed reads differently, so its new content gets an instance of its own.
    """
    row = [getattr(add_on, name) for name in sorted(add_on._meta.fields_db_projection)]
    return _ADD_ONS.setdefault(orjson.dumps(row, default=str), add_on)


PlanLoader = Callable[[Tenant, dt.datetime], Awaitable[TenantPlan]]


async def _load(tenant: Tenant, now: dt.datetime) -> TenantPlan:
    return await load_tenant_plan(tenant, now=now)


async def my_plan(
    principal: Principal, *, eligible_since: dt.date, now: dt.datetime, plans: PlanLoader = _load
) -> TenantPlan:
    """ "My plan": admins of eligible environments only (seed 000, "Como visualizar...")."""
    require_store_access(principal, eligible_since=eligible_since)
    return await plans(principal.tenant, now)
