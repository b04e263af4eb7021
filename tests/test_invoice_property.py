"""An issued invoice equals the last preview of its period, line for line (issue 14), over random
histories within the period: monthly add-ons contracted and cancelled on any day, one-off purchases,
orders with a coupon (percent or fixed, once / repeating / forever), changes of plan (with or without a
fee), all written as the services write them (rows), and the issue running at any moment after the
period ended (minutes or weeks late).

Each example gets a tenant of its own (anchor day 1, EUR, storefront-m since 2026-01-01) and the period
2026-11 of the demo clock.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models.billing import AddOnSubscription, PlanChange, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.models.enums import (
    AddOnStatus,
    Cadence,
    CouponDuration,
    CouponKind,
    PlanChangeKind,
    PlanChangeStatus,
)
from app.models.invoices import IssuedInvoice
from app.models.store import Order, OrderLine
from app.models.tenancy import Tenant
from app.seed import SeedResult
from app.services import invoice_issuing, invoices
from app.services.coupons import terms_snapshot
from app.services.periods import period_named
from app.services.pricing import CouponTerms

PERIOD = period_named("2026-11", 1)
START = PERIOD.start_instant()
END = PERIOD.end_instant()
LAST_INSTANT = END - dt.timedelta(microseconds=1)
SERIAL = itertools.count()

instants = st.integers(0, PERIOD.days * 24 - 1).map(lambda hours: START + dt.timedelta(hours=hours))
add_on_events = st.lists(
    st.tuples(
        st.sampled_from(["storage-10gb", "users-1", "credits-1000"]),
        st.integers(1, 3),
        instants,
        st.one_of(st.none(), instants),
        st.booleans(),
    ),
    max_size=4,
)
one_offs = st.lists(st.tuples(st.integers(1, 3), instants, st.booleans()), max_size=2)
coupons = st.one_of(
    st.none(),
    st.builds(
        lambda kind, duration, value: CouponTerms(
            code="PROP",
            kind=kind,
            duration=duration,
            percent_off=Decimal(value) if kind == CouponKind.PERCENT else None,
            amount_off=Decimal(value) / 3 if kind == CouponKind.FIXED else None,
            duration_months=2 if duration == CouponDuration.REPEATING else None,
        ),
        st.sampled_from(list(CouponKind)),
        st.sampled_from(list(CouponDuration)),
        st.integers(5, 60),
    ),
)
plan_changes = st.lists(
    st.tuples(st.sampled_from(["storefront-s", "storefront-l"]), instants, st.sampled_from(["0", "25.00"])),
    max_size=2,
)
lateness = st.integers(0, 30 * 24 * 60)  # minutes after the period ended


async def new_tenant() -> Tenant:
    n = next(SERIAL)
    tenant = await Tenant.create(
        slug=f"prop{n}-{uuid.uuid4().hex[:6]}",
        name=f"Property {n}",
        currency="EUR",
        billing_anchor_day=1,
        created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    plan = await Plan.get(code="storefront-m")
    await PlanSubscription.create(
        tenant=tenant,
        plan=plan,
        started_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        unit_price=Decimal(plan.prices["EUR"]),
        currency="EUR",
    )
    return tenant


async def order(tenant: Tenant, at: dt.datetime, coupon: CouponTerms | None) -> Order:
    zero = Decimal("0")
    return await Order.create(
        tenant=tenant,
        idempotency_key=uuid.uuid4().hex,
        request_fingerprint="p",
        currency="EUR",
        period_start=PERIOD.start,
        period_end=PERIOD.end,
        subtotal=zero,
        discount=zero,
        total=zero,
        monthly_increase=zero,
        due_on_next_invoice=zero,
        one_off_total=zero,
        new_monthly_total=zero,
        coupon_terms=terms_snapshot(coupon) if coupon else None,
        created_at=at,
    )


async def line(
    placed: Order, add_on: AddOn, position: int, quantity: int, applies: bool, sub: AddOnSubscription | None
) -> None:
    price = Decimal(add_on.prices.get("EUR", "0"))
    await OrderLine.create(
        order=placed,
        add_on=add_on,
        position=position,
        add_on_code=add_on.code,
        name=add_on.name,
        cadence=add_on.cadence,
        is_free=price == 0,
        quantity=quantity,
        unit_price=price,
        line_total=price * quantity,
        amount_due=price * quantity,
        discount=Decimal("0"),
        total=price * quantity,
        coupon_applies=applies,
        subscription=sub,
    )


async def write_history(tenant: Tenant, data: dict[str, Any]) -> None:
    placed = await order(tenant, START + dt.timedelta(hours=1), data["coupon"]) if data["coupon"] else None
    for position, (code, quantity, start, end, applies) in enumerate(data["add_ons"]):
        add_on = await AddOn.get(code=code)
        ends_at = None if end is None or end <= start else end
        sub = await AddOnSubscription.create(
            tenant=tenant,
            add_on=add_on,
            quantity=quantity,
            unit_price=Decimal(add_on.prices["EUR"]),
            currency="EUR",
            contracted_at=start,
            status=AddOnStatus.CANCELLING if ends_at else AddOnStatus.ACTIVE,
            cancelled_at=start if ends_at else None,
            ends_at=ends_at,
        )
        bought_in = placed or await order(tenant, start, None)
        await line(bought_in, add_on, position, quantity, applies and placed is not None, sub)
    one_off = await AddOn.filter(cadence=Cadence.ONE_OFF, prices__not="{}").order_by("code").first()
    assert one_off is not None
    for quantity, at, applies in data["one_offs"]:
        await line(await order(tenant, at, data["coupon"]), one_off, 0, quantity, applies, None)
    current = await Plan.get(code="storefront-m")
    for code, at, fee in sorted(data["plan_changes"], key=lambda change: change[1]):
        target = await Plan.get(code=code)
        upgrade = Decimal(target.prices["EUR"]) >= Decimal(current.prices["EUR"])
        await PlanChange.create(
            tenant=tenant,
            kind=PlanChangeKind.UPGRADE if upgrade else PlanChangeKind.DOWNGRADE,
            status=PlanChangeStatus.APPLIED,
            from_plan=current,
            from_code=current.code,
            from_name=current.name,
            from_unit_price=Decimal(current.prices["EUR"]),
            to_plan=target,
            to_code=target.code,
            to_name=target.name,
            to_unit_price=Decimal(target.prices["EUR"]),
            currency="EUR",
            change_fee=Decimal(fee),
            requested_at=at,
            effective_at=at,
            applied_at=at,
        )
        await PlanSubscription.filter(tenant_id=tenant.id).update(plan_id=target.id)
        current = target


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    history=st.fixed_dictionaries(
        {"add_ons": add_on_events, "one_offs": one_offs, "coupon": coupons, "plan_changes": plan_changes}
    ),
    late=lateness,
)
async def test_an_issued_invoice_is_the_last_preview_of_its_period(
    demo: SeedResult, history: dict[str, Any], late: int
) -> None:
    tenant = await new_tenant()
    await write_history(tenant, history)
    preview = await invoices.tenant_invoice(tenant, PERIOD, now=LAST_INSTANT)

    issued = await invoice_issuing.issue_period(tenant, PERIOD, END + dt.timedelta(minutes=late))

    assert issued is not None
    invoice = await IssuedInvoice.get(number=issued.number).prefetch_related("lines")
    assert [
        (line.kind, line.code, line.description, line.quantity, line.unit_price, line.days, line.amount)
        for line in sorted(invoice.lines, key=lambda line: line.position)
    ] == [
        (
            str(line.kind),
            line.code,
            line.description,
            line.quantity,
            line.unit_price.amount,
            line.days,
            line.amount.amount,
        )
        for line in preview.lines
    ]
    assert (invoice.subtotal, invoice.discount, invoice.total, invoice.currency) == (
        preview.subtotal.amount,
        preview.discount.amount,
        preview.total.amount,
        "EUR",
    )
    assert invoice.total == sum((line.amount for line in invoice.lines), Decimal("0"))
