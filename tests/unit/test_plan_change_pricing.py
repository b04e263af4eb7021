"""The lines a change of plan adds to an invoice (``pricing.plan_change_lines``): hand-computed amounts,
and a property: the plan line plus the change lines bill each plan for its own days, within a cent a line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.money import Money
from app.services import pricing
from app.services.periods import BillingPeriod

NOVEMBER = BillingPeriod(dt.date(2026, 11, 1), dt.date(2026, 12, 1))  # 30 days
Kind = pricing.InvoiceLineKind


def eur(amount: str) -> Money:
    return Money.of(Decimal(amount), "EUR")


def charge(
    from_price: str, to_price: str, at: dt.datetime, fee: str = "0.00", currency: str = "EUR"
) -> pricing.PlanChangeCharge:
    return pricing.PlanChangeCharge(
        from_code="from",
        from_name="From",
        from_price=Money.of(Decimal(from_price), currency),
        to_code="to",
        to_name="To",
        to_price=Money.of(Decimal(to_price), currency),
        effective_at=at,
        fee=Money.of(Decimal(fee), currency),
    )


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_an_upgrade_adds_the_difference_for_the_days_left_counting_today_and_its_fee() -> None:
    lines = pricing.plan_change_lines(
        NOVEMBER, [charge("79.00", "199.00", utc(2026, 11, 23, 12), fee="49.00")]
    )

    assert [(line.kind, line.days, line.unit_price, line.amount) for line in lines] == [
        (Kind.PLAN_CHANGE, 8, eur("120.00"), eur("32.00")),  # 120 x 8 / 30
        (Kind.CHANGE_FEE, None, eur("49.00"), eur("49.00")),
    ]
    assert lines[0].description == "Plan change: From to To"


def test_a_downgrade_mid_period_gives_a_negative_line_rounded_half_up_once() -> None:
    period = BillingPeriod(dt.date(2026, 11, 10), dt.date(2026, 12, 10))  # 30 days
    lines = pricing.plan_change_lines(period, [charge("349.90", "149.90", utc(2026, 11, 20), currency="BRL")])

    # -200.00 x 20 / 30 = -133.333...
    assert [(line.kind, line.days, line.amount) for line in lines] == [
        (Kind.PLAN_CHANGE, 20, Money.of(Decimal("-133.33"), "BRL"))
    ]


def test_rounding_is_half_up_per_line() -> None:
    # 0.15 x 1 / 30 = 0.005 -> 0.01; 10.00 x 1 / 30 = 0.333... -> 0.33
    lines = pricing.plan_change_lines(
        NOVEMBER, [charge("1.00", "1.15", utc(2026, 11, 30)), charge("1.15", "11.15", utc(2026, 11, 30, 6))]
    )
    assert [line.amount for line in lines] == [eur("0.01"), eur("0.33")]


def test_a_change_at_the_period_start_bills_only_its_fee_and_one_outside_nothing() -> None:
    at_start = pricing.plan_change_lines(NOVEMBER, [charge("79.00", "39.00", utc(2026, 11, 1), fee="10.00")])
    outside = pricing.plan_change_lines(
        NOVEMBER,
        [charge("79.00", "199.00", utc(2026, 12, 1), fee="10.00"), charge("1", "2", utc(2026, 10, 31))],
    )

    assert [(line.kind, line.amount) for line in at_start] == [(Kind.CHANGE_FEE, eur("10.00"))]
    assert outside == []


def test_a_free_change_has_no_fee_line() -> None:
    lines = pricing.plan_change_lines(NOVEMBER, [charge("79.00", "79.00", utc(2026, 11, 5))])
    assert [(line.kind, line.amount) for line in lines] == [(Kind.PLAN_CHANGE, eur("0.00"))]


prices = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("9999.99"), places=2)


@settings(max_examples=300, deadline=None)
@given(
    start=st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2030, 12, 1)),
    anchor=st.integers(min_value=1, max_value=28),
    data=st.data(),
)
def test_each_plan_is_billed_for_its_own_days_within_a_cent_a_line(
    start: dt.date, anchor: int, data: st.DataObject
) -> None:
    first = dt.date(start.year, start.month, anchor)
    month = first.month % 12 + 1
    period = BillingPeriod(first, dt.date(first.year + (first.month == 12), month, anchor))
    days = period.days
    change_days = sorted(
        data.draw(st.sets(st.integers(min_value=1, max_value=days - 1), max_size=4), label="change days")
    )
    plan_prices = [data.draw(prices, label=f"price {n}") for n in range(len(change_days) + 1)]
    changes = [
        charge(
            str(plan_prices[n]),
            str(plan_prices[n + 1]),
            period.start_instant()
            + dt.timedelta(days=day, hours=data.draw(st.integers(0, 23), label="hour")),
        )
        for n, day in enumerate(change_days)
    ]

    invoice = pricing.compose_invoice(
        period=period,
        currency="EUR",
        recurring=[
            pricing.RecurringCharge(
                code="plan",
                name="Plan",
                unit_price=Money.of(plan_prices[0], "EUR"),
                quantity=1,
                start=period.start_instant() - dt.timedelta(days=40),
                is_plan=True,
            )
        ],
        plan_changes=changes,
    )

    billed = [line for line in invoice.lines if line.kind in (Kind.PLAN, Kind.PLAN_CHANGE)]
    assert len(billed) == 1 + len(changes)
    bounds = [0, *change_days, days]  # a change's day is billed whole on the new plan
    exact = sum(
        (plan_prices[n] * (bounds[n + 1] - bounds[n]) / Decimal(days) for n in range(len(plan_prices))),
        Decimal(0),
    )
    total = sum((line.amount.amount for line in billed), Decimal(0))
    assert abs(total - exact) <= Decimal("0.005") * len(billed)
    assert invoice.total.amount == total  # no fee: the plan lines are the whole invoice
