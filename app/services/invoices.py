"""The invoice preview of a billing period (docs/design.md: "Priced add-ons are added to the monthly
bill from the contract date (the first bill is prorated by day). One-off items are billed once.")

Lines: the plan in force at the start of the period (``PlanChange`` rows keep every plan a tenant
had); each change of plan taking effect in the period (the difference of the monthly prices from its
day to the end of the period, and its change fee once: ``pricing.PlanChangeCharge``); each monthly
add-on prorated by the days it was available in the period (``contracted_at`` to ``ends_at``); the
one-off items ordered in the period; the storage overage of OVERAGE plans (2.30 EUR per started GB
over the effective storage limit, i.e. the included 10 GB plus storage packs, measured on the storage
in force at the period's end: the last report applied before it, so that a period's invoice does not
change with later reports (``storage_at``); the limit is the one in force in that period, see
``limits_instant``: next period's preview bills the overage a cancelled pack will cause); then the coupon
discounts of the
orders whose coupon still covers the period. The total is the sum of the lines.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from tortoise.expressions import Q

from app import money
from app.auth.principal import Principal
from app.i18n import _
from app.models.billing import AddOnSubscription, PlanChange
from app.models.enums import Cadence, PlanChangeStatus, StoragePolicy
from app.models.store import Order, OrderLine
from app.models.tenancy import Tenant
from app.services import coupons as coupon_rules
from app.services import pricing, usage_history
from app.services.access import require_store_access
from app.services.cart import plan_price
from app.services.errors import DomainError, ErrorCode, shown
from app.services.periods import BillingPeriod, period_containing, period_named
from app.services.subscriptions import load_tenant_plan
from app.services.usage import current_usage


class InvalidPeriod(DomainError):
    code = ErrorCode.INVALID_PERIOD
    default_message = _('A billing period is named "YYYY-MM", e.g. "2026-11".')


def parse_period(name: str | None, *, anchor_day: int, now: dt.datetime) -> BillingPeriod:
    if name is None:
        return period_containing(now, anchor_day)
    try:
        return period_named(name.strip(), anchor_day)
    except ValueError:
        raise InvalidPeriod(
            _('{name} is not a billing period: use "YYYY-MM", e.g. "2026-11".', name=shown(name)),
            field="period",
        ) from None


def limits_instant(period: BillingPeriod, now: dt.datetime) -> dt.datetime:
    """When the limits that bill ``period`` are taken: now for the current period, its last instant for
    a past one, and its first instant for a future one: the limits in force in that period, so an
    add-on cancelled now (it ends when the current period does) no longer raises them."""
    last = period.end_instant() - dt.timedelta(microseconds=1)
    return max(period.start_instant(), min(now, last))


async def invoice_preview(
    principal: Principal, *, period_name: str | None, eligible_since: dt.date, now: dt.datetime
) -> pricing.Invoice:
    """The invoice of ``period_name`` (default: the current period) as it stands now."""
    require_store_access(principal, eligible_since=eligible_since)
    tenant = principal.tenant
    period = parse_period(period_name, anchor_day=tenant.billing_anchor_day, now=now)
    return await tenant_invoice(tenant, period, now=now)


def change_charge(change: PlanChange, currency: str) -> pricing.PlanChangeCharge:
    return pricing.PlanChangeCharge(
        from_code=change.from_code,
        from_name=change.from_name,
        from_price=money.Money.of(change.from_unit_price, currency),
        to_code=change.to_code,
        to_name=change.to_name,
        to_price=money.Money.of(change.to_unit_price, currency),
        effective_at=change.effective_at,
        fee=money.Money.of(change.change_fee, currency),
    )


async def plan_history(tenant: Tenant) -> list[PlanChange]:
    """Every change of the tenant's plan that took or will take effect, in the order they do."""
    return (
        await PlanChange.filter(tenant_id=tenant.id)
        .exclude(status=PlanChangeStatus.CANCELLED)
        .order_by("effective_at", "requested_at")
    )


async def storage_at(tenant_id: uuid.UUID | str, instant: dt.datetime) -> int:
    """The storage reported as in force at ``instant``: the usage in force when it was measured before
    ``instant`` (always so for a period not yet ended), else the last applied report measured before it
    (usage reports are all kept), else nothing (0)."""
    usage = await current_usage(tenant_id)
    if usage.measured_at is None or usage.measured_at < instant:
        return usage.storage_bytes
    before = await usage_history.in_force_before(tenant_id, instant)
    return before.storage_bytes if before else 0


async def tenant_invoice(
    tenant: Tenant, period: BillingPeriod, *, now: dt.datetime, planned: Sequence[PlanChange] = ()
) -> pricing.Invoice:
    """The invoice of ``period`` as it stands at ``now``; ``planned``: changes of plan not yet saved
    that it should hold too (a preview of one)."""
    view = await load_tenant_plan(tenant, now=limits_instant(period, now))
    currency = tenant.currency
    plan = view.subscription.plan
    changes = sorted([*await plan_history(tenant), *planned], key=lambda change: change.effective_at)

    started_at = view.subscription.started_at
    opening = max(period.start_instant(), started_at)
    before = [change for change in changes if change.effective_at <= opening]
    if before:  # the plan in force when the period (or the subscription) starts
        code, name, price = before[-1].to_code, before[-1].to_name, before[-1].to_unit_price
    elif changes:
        code, name, price = changes[0].from_code, changes[0].from_name, changes[0].from_unit_price
    else:
        code, name, price = plan.code, plan.name, plan_price(view.subscription, currency).amount
    recurring = [
        pricing.RecurringCharge(
            code=code,
            name=f"Plan {name}",
            unit_price=money.Money.of(price, currency),
            quantity=1,
            start=started_at,
            is_plan=True,
        )
    ]
    subscriptions = (
        await AddOnSubscription.filter(
            Q(ends_at__isnull=True) | Q(ends_at__gt=period.start_instant()),
            tenant_id=tenant.id,
            contracted_at__lt=period.end_instant(),
            add_on__cadence=Cadence.MONTHLY,
        )
        .select_related("add_on")
        .order_by("contracted_at", "id")
    )
    origin = {
        str(row["subscription_id"]): row
        for row in await OrderLine.filter(subscription_id__in=[s.id for s in subscriptions]).values(
            "subscription_id", "order_id", "coupon_applies", "position"
        )
    }
    for subscription in subscriptions:
        bought = origin.get(str(subscription.id))
        recurring.append(
            pricing.RecurringCharge(
                code=subscription.add_on.code,
                name=subscription.add_on.name,
                unit_price=money.Money.of(subscription.unit_price, subscription.currency),
                quantity=subscription.quantity,
                start=subscription.contracted_at,
                end=subscription.ends_at,
                order_key=str(bought["order_id"]) if bought else None,
                coupon_applies=bool(bought["coupon_applies"]) if bought else False,
                position=int(bought["position"]) if bought else 0,
            )
        )
    one_off_lines = await OrderLine.filter(
        order__tenant_id=tenant.id,
        order__created_at__gte=period.start_instant(),
        order__created_at__lt=period.end_instant(),
        cadence=Cadence.ONE_OFF,
    ).order_by("order__created_at", "position")
    one_offs = [
        pricing.OneOffCharge(
            code=line.add_on_code,
            name=line.name,
            unit_price=money.Money.of(line.unit_price, currency),
            quantity=line.quantity,
            order_key=str(line.order_id),
            coupon_applies=line.coupon_applies,
            position=line.position,
        )
        for line in one_off_lines
    ]
    order_ids = {charge.order_key for charge in recurring if charge.order_key} | {
        c.order_key for c in one_offs
    }
    coupons = {
        str(row["id"]): pricing.OrderCoupon(
            coupon_rules.terms_from_snapshot(row["coupon_terms"]),
            BillingPeriod(row["period_start"], row["period_end"]),
        )
        for row in await Order.filter(id__in=list(order_ids), coupon_terms__isnull=False).values(
            "id", "coupon_terms", "period_start", "period_end"
        )
    }
    overage = None
    if plan.storage_policy == StoragePolicy.OVERAGE and currency in plan.overage_prices_per_gb:
        overage = pricing.StorageOverage(
            used_bytes=await storage_at(tenant.id, period.end_instant()),
            included_mb=view.effective_limits.storage_mb,
            price_per_gb=money.price_in(plan.overage_prices_per_gb, currency),
        )
    return pricing.compose_invoice(
        period=period,
        currency=currency,
        recurring=recurring,
        one_offs=one_offs,
        overage=overage,
        coupons=coupons,
        plan_changes=[change_charge(change, currency) for change in changes],
    )
