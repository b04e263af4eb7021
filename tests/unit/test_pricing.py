"""Properties of the store's pricing (app.services.pricing), checked with hypothesis: proration by day,
coupons, rounding half-up once per line, and lines that always add up to the totals."""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.models.enums import Cadence, CouponDuration, CouponKind
from app.money import MINOR_UNITS, Money, minor_unit
from app.services import pricing
from app.services.periods import BillingPeriod, period_containing, period_named

CURRENCIES = ["EUR", "BRL", "JPY"]
CATEGORIES = ["STORAGE", "USERS", "INTEGRATIONS", "SERVICES"]

# Per test, not a global profile: other modules' hypothesis tests keep their own settings.
PROPERTY = settings(max_examples=200, deadline=None)


def amount_of(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-MINOR_UNITS[currency])


def is_rounded(value: Money) -> bool:
    return value.amount == value.amount.quantize(minor_unit(value.currency))


@st.composite
def periods(draw: st.DrawFn) -> BillingPeriod:
    year = draw(st.integers(2022, 2030))
    month = draw(st.integers(1, 12))
    return period_named(f"{year:04d}-{month:02d}", draw(st.integers(1, 28)))


@st.composite
def days_in(draw: st.DrawFn, period: BillingPeriod) -> dt.date:
    return period.start + dt.timedelta(days=draw(st.integers(0, period.days - 1)))


def prices(currency: str, *, max_minor: int = 2_000_000) -> st.SearchStrategy[Money]:
    return st.integers(0, max_minor).map(lambda minor: Money(amount_of(minor, currency), currency))


@st.composite
def cart_items(draw: st.DrawFn, currency: str) -> list[pricing.CartItem]:
    items = []
    for index in range(draw(st.integers(0, 6))):
        is_free = draw(st.booleans())
        items.append(
            pricing.CartItem(
                code=f"add-on-{index}",
                name=f"Add-on {index}",
                category=draw(st.sampled_from(CATEGORIES)),
                cadence=draw(st.sampled_from([Cadence.MONTHLY, Cadence.ONE_OFF])),
                is_free=is_free,
                unit_price=Money.zero(currency) if is_free else draw(prices(currency)),
                quantity=draw(st.integers(1, 20)),
            )
        )
    return items


@st.composite
def coupons(draw: st.DrawFn, currency: str) -> pricing.CouponTerms:
    kind = draw(st.sampled_from([CouponKind.PERCENT, CouponKind.FIXED]))
    restricted = draw(st.booleans())
    duration = draw(st.sampled_from(list(CouponDuration)))
    return pricing.CouponTerms(
        code="PROPERTY",
        kind=kind,
        duration=duration,
        percent_off=Decimal(draw(st.integers(1, 10000))) / 100 if kind == CouponKind.PERCENT else None,
        amount_off=amount_of(draw(st.integers(1, 100_000)), currency) if kind == CouponKind.FIXED else None,
        duration_months=draw(st.integers(1, 24)) if duration == CouponDuration.REPEATING else None,
        categories=frozenset(draw(st.sets(st.sampled_from(CATEGORIES), min_size=1)))
        if restricted
        else frozenset(),
    )


def total_of(amounts: list[Money], currency: str) -> Money:
    total = Money.zero(currency)
    for amount in amounts:
        total += amount
    return total


# --- Proration by day ----------------------------------------------------------------------------


@PROPERTY
@given(period=periods(), data=st.data(), currency=st.sampled_from(CURRENCIES))
def test_proration_is_the_day_share_rounded_half_up_once(
    period: BillingPeriod, data: st.DataObject, currency: str
) -> None:
    full = data.draw(prices(currency))
    days = data.draw(st.integers(0, period.days))

    prorated = pricing.prorate(full, days, period.days)

    exact = full.amount * days / period.days
    assert prorated.amount == exact.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
    assert Money.zero(currency).amount <= prorated.amount <= full.amount
    assert is_rounded(prorated)


@PROPERTY
@given(period=periods(), data=st.data())
def test_proration_grows_with_the_days_and_a_whole_period_costs_the_full_price(
    period: BillingPeriod, data: st.DataObject
) -> None:
    full = data.draw(prices("EUR"))
    fewer = data.draw(st.integers(0, period.days))
    more = data.draw(st.integers(fewer, period.days))

    assert pricing.prorate(full, fewer, period.days).amount <= pricing.prorate(full, more, period.days).amount
    assert pricing.prorate(full, period.days, period.days) == full
    assert pricing.prorate(full, 0, period.days) == Money.zero("EUR")


@PROPERTY
@given(period=periods(), data=st.data())
def test_days_left_count_today_up_to_the_end_of_the_period(
    period: BillingPeriod, data: st.DataObject
) -> None:
    today = data.draw(days_in(period))

    left = pricing.days_left(period, today)

    assert period_containing(today, period.start.day) == period
    assert left == (period.end - today).days
    assert 1 <= left <= period.days
    assert pricing.days_left(period, period.start) == period.days
    assert pricing.days_left(period, period.last_day) == 1


@PROPERTY
@given(period=periods(), data=st.data())
def test_active_days_of_a_whole_period_subscription_are_the_period_days(
    period: BillingPeriod, data: st.DataObject
) -> None:
    start = data.draw(days_in(period))
    contracted = dt.datetime.combine(start, dt.time(data.draw(st.integers(0, 23))), dt.UTC)

    assert pricing.active_days(period, period.start_instant() - dt.timedelta(days=40), None) == period.days
    # Contracted during the period: charged from that day (a part day counts whole) to the end.
    assert pricing.active_days(period, contracted, None) == (period.end - start).days
    # Ended at the start of the period: nothing is charged.
    assert pricing.active_days(period, contracted - dt.timedelta(days=90), period.start_instant()) == 0


# --- The summary: coupons, rounding, lines add up ------------------------------------------------


@PROPERTY
@given(
    period=periods(),
    currency=st.sampled_from(CURRENCIES),
    with_coupon=st.booleans(),
    data=st.data(),
)
def test_summary_lines_always_add_up_to_its_totals(
    period: BillingPeriod, currency: str, with_coupon: bool, data: st.DataObject
) -> None:
    items = data.draw(cart_items(currency))
    coupon = data.draw(coupons(currency)) if with_coupon else None
    current = data.draw(prices(currency))
    today = data.draw(days_in(period))

    summary = pricing.summarize(
        items, currency=currency, period=period, today=today, coupon=coupon, current_monthly_total=current
    )

    lines = summary.lines
    assert len(lines) == len(items)
    assert summary.subtotal == total_of([line.amount_due for line in lines], currency)
    assert summary.discount == total_of([line.discount for line in lines], currency)
    assert summary.total == total_of([line.total for line in lines], currency)
    assert summary.total == summary.subtotal - summary.discount
    assert summary.subtotal == summary.due_on_next_invoice + summary.one_off_total
    monthly = [line for line in lines if line.item.cadence == Cadence.MONTHLY]
    assert summary.monthly_increase == total_of([line.line_total for line in monthly], currency)
    assert summary.new_monthly_total == current + summary.monthly_increase
    for line in lines:
        assert line.line_total == line.item.unit_price.times(line.item.quantity)
        assert Decimal(0) <= line.discount.amount <= line.amount_due.amount
        assert line.total == line.amount_due - line.discount
        for value in (line.line_total, line.amount_due, line.discount, line.total):
            assert is_rounded(value)
            assert value.currency == currency
        if line.item.is_free:
            assert line.total == Money.zero(currency)
            assert not line.coupon_applies


@PROPERTY
@given(period=periods(), data=st.data())
def test_monthly_lines_are_prorated_by_day_and_one_off_lines_are_charged_in_full(
    period: BillingPeriod, data: st.DataObject
) -> None:
    items = data.draw(cart_items("EUR"))
    today = data.draw(days_in(period))

    summary = pricing.summarize(
        items,
        currency="EUR",
        period=period,
        today=today,
        coupon=None,
        current_monthly_total=Money.zero("EUR"),
    )

    left = (period.end - today).days
    assert summary.days_left == left
    for line in summary.lines:
        if line.item.cadence == Cadence.MONTHLY:
            assert line.amount_due == pricing.prorate(line.line_total, left, period.days)
        else:
            assert line.amount_due == line.line_total


@PROPERTY
@given(period=periods(), currency=st.sampled_from(CURRENCIES), data=st.data())
def test_percent_coupon_takes_its_share_of_each_line_it_applies_to(
    period: BillingPeriod, currency: str, data: st.DataObject
) -> None:
    items = data.draw(cart_items(currency))
    coupon = data.draw(coupons(currency).filter(lambda c: c.kind == CouponKind.PERCENT))

    summary = pricing.summarize(
        items,
        currency=currency,
        period=period,
        today=data.draw(days_in(period)),
        coupon=coupon,
        current_monthly_total=Money.zero(currency),
    )

    assert coupon.percent_off is not None
    for line in summary.lines:
        applies = line.amount_due.amount > 0 and coupon.matches(
            line.item.code, line.item.category, line.item.cadence
        )
        assert line.coupon_applies is applies
        expected = line.amount_due.amount * coupon.percent_off / 100 if applies else Decimal(0)
        assert line.discount == Money.of(min(expected, line.amount_due.amount), currency)


@PROPERTY
@given(period=periods(), currency=st.sampled_from(CURRENCIES), data=st.data())
def test_fixed_coupon_takes_its_amount_at_most_once_and_never_beyond_a_line(
    period: BillingPeriod, currency: str, data: st.DataObject
) -> None:
    items = data.draw(cart_items(currency))
    coupon = data.draw(coupons(currency).filter(lambda c: c.kind == CouponKind.FIXED))

    summary = pricing.summarize(
        items,
        currency=currency,
        period=period,
        today=data.draw(days_in(period)),
        coupon=coupon,
        current_monthly_total=Money.zero(currency),
    )

    assert coupon.amount_off is not None
    eligible = total_of([line.amount_due for line in summary.lines if line.coupon_applies], currency)
    assert summary.discount.amount == min(coupon.amount_off, eligible.amount)
    assert summary.total.amount >= 0
    # Spent in cart order: a line is discounted only once every earlier eligible line is fully covered.
    for index, line in enumerate(summary.lines):
        if line.discount.amount > 0:
            earlier = [previous for previous in summary.lines[:index] if previous.coupon_applies]
            assert all(previous.total.amount == 0 for previous in earlier)


@PROPERTY
@given(period=periods(), currency=st.sampled_from(CURRENCIES), data=st.data())
def test_restricted_coupon_discounts_only_matching_lines(
    period: BillingPeriod, currency: str, data: st.DataObject
) -> None:
    items = data.draw(cart_items(currency))
    coupon = data.draw(coupons(currency).filter(lambda c: bool(c.categories)))

    summary = pricing.summarize(
        items,
        currency=currency,
        period=period,
        today=data.draw(days_in(period)),
        coupon=coupon,
        current_monthly_total=Money.zero(currency),
    )

    for line in summary.lines:
        if line.item.category not in coupon.categories:
            assert line.discount == Money.zero(currency)
            assert not line.coupon_applies


def test_rounding_is_half_up_at_the_line() -> None:
    # 0.125 rounds up to 0.13 (half-up, not banker's 0.12); the total is the sum of rounded lines.
    items = [
        pricing.CartItem("a", "A", "USERS", Cadence.ONE_OFF, False, Money.of("0.25", "EUR"), 1),
        pricing.CartItem("b", "B", "USERS", Cadence.ONE_OFF, False, Money.of("0.25", "EUR"), 1),
    ]
    coupon = pricing.CouponTerms("HALF", CouponKind.PERCENT, CouponDuration.ONCE, percent_off=Decimal(50))
    period = period_named("2026-11", 1)

    summary = pricing.summarize(
        items, currency="EUR", period=period, today=period.start, coupon=coupon,
        current_monthly_total=Money.zero("EUR"),
    )  # fmt: skip

    assert [line.discount.amount for line in summary.lines] == [Decimal("0.13"), Decimal("0.13")]
    assert summary.discount.amount == Decimal("0.26")
    assert summary.total.amount == Decimal("0.24")


# --- Coupon durations over later invoices ------------------------------------------------------


@PROPERTY
@given(
    first=periods(),
    later=st.integers(0, 48),
    duration=st.sampled_from(list(CouponDuration)),
    n=st.integers(1, 24),
)
def test_coupon_duration_covers_once_n_months_or_forever(
    first: BillingPeriod, later: int, duration: CouponDuration, n: int
) -> None:
    terms = pricing.CouponTerms(
        "D", CouponKind.PERCENT, duration, percent_off=Decimal(10),
        duration_months=n if duration == CouponDuration.REPEATING else None,
    )  # fmt: skip
    index = first.start.year * 12 + first.start.month - 1 + later
    period = period_named(f"{index // 12:04d}-{index % 12 + 1:02d}", first.start.day)

    covered = terms.covers_period(first, period)

    expected = {
        CouponDuration.ONCE: later == 0,
        CouponDuration.REPEATING: later < n,
        CouponDuration.FOREVER: True,
    }[duration]
    assert covered is expected


# --- The invoice -------------------------------------------------------------------------------


@st.composite
def recurring_charges(draw: st.DrawFn, period: BillingPeriod, currency: str) -> list[pricing.RecurringCharge]:
    charges = []
    for index in range(draw(st.integers(1, 6))):
        start = period.start_instant() + dt.timedelta(hours=draw(st.integers(-24 * 60, 24 * 40)))
        end = None
        if draw(st.booleans()):
            end = start + dt.timedelta(hours=draw(st.integers(1, 24 * 60)))
        charges.append(
            pricing.RecurringCharge(
                code=f"r{index}",
                name=f"R{index}",
                unit_price=draw(prices(currency)),
                quantity=draw(st.integers(1, 5)),
                start=start,
                end=end,
                order_key=draw(st.sampled_from(["o1", "o2", None])),
                coupon_applies=draw(st.booleans()),
                is_plan=index == 0,
            )
        )
    return charges


@PROPERTY
@given(period=periods(), currency=st.sampled_from(CURRENCIES), data=st.data())
def test_invoice_lines_always_add_up_to_the_total(
    period: BillingPeriod, currency: str, data: st.DataObject
) -> None:
    recurring = data.draw(recurring_charges(period, currency))
    one_offs = [
        pricing.OneOffCharge(
            f"x{i}", f"X{i}", data.draw(prices(currency)), data.draw(st.integers(1, 3)), "o1",
            data.draw(st.booleans()),
        )
        for i in range(data.draw(st.integers(0, 2)))
    ]  # fmt: skip
    overage = pricing.StorageOverage(
        used_bytes=data.draw(st.integers(0, 40 * 1024**3)),
        included_mb=10 * 1024,
        price_per_gb=Money.of("2.30", currency),
    )
    coupons_by_order = {
        key: pricing.OrderCoupon(data.draw(coupons(currency)), period)
        for key in ("o1", "o2")
        if data.draw(st.booleans())
    }

    invoice = pricing.compose_invoice(
        period=period, currency=currency, recurring=recurring, one_offs=one_offs, overage=overage,
        coupons=coupons_by_order,
    )  # fmt: skip

    assert invoice.total == total_of([line.amount for line in invoice.lines], currency)
    assert invoice.total == invoice.subtotal - invoice.discount
    assert invoice.total.amount >= 0
    for line in invoice.lines:
        assert is_rounded(line.amount)
        if line.kind == pricing.InvoiceLineKind.DISCOUNT:
            assert line.amount.amount < 0
        else:
            assert line.amount.amount >= 0
        if line.days is not None:
            assert 1 <= line.days <= period.days
            assert line.amount == pricing.prorate(
                line.unit_price.times(line.quantity), line.days, period.days
            )
    overage_lines = [line for line in invoice.lines if line.kind == pricing.InvoiceLineKind.STORAGE_OVERAGE]
    over_gb = math.ceil(max(0, overage.used_bytes - 10 * 1024**3) / 1024**3)
    assert sum(line.quantity for line in overage_lines) == over_gb
    if over_gb:
        assert overage_lines[0].amount == Money.of("2.30", currency).times(over_gb)


@pytest.mark.parametrize(
    ("used_bytes", "gigabytes"),
    [(0, 0), (10 * 1024**3, 0), (10 * 1024**3 + 1, 1), (11 * 1024**3, 1), (11 * 1024**3 + 1, 2)],
)
def test_storage_overage_counts_every_started_gigabyte(used_bytes: int, gigabytes: int) -> None:
    assert pricing.storage_overage_gb(used_bytes, 10 * 1024) == gigabytes


def test_fixed_coupon_is_spent_in_cart_position_order_whatever_order_the_lines_come_in() -> None:
    coupon = pricing.CouponTerms("BIG", CouponKind.FIXED, CouponDuration.ONCE, amount_off=Decimal("6.00"))
    amounts = [Money.of("5.31", "EUR"), Money.of("2.61", "EUR")]  # read as users-5, users-1

    by_position = pricing.allocate_discounts(amounts, [True, True], coupon, positions=[1, 0])

    assert by_position == [Money.of("3.39", "EUR"), Money.of("2.61", "EUR")]  # users-1 (position 0) first
    assert pricing.allocate_discounts(amounts, [True, True], coupon) == [
        Money.of("5.31", "EUR"),
        Money.of("0.69", "EUR"),
    ]


@pytest.mark.parametrize(
    ("duration", "add_on_codes", "one_off_matches"),
    [
        (CouponDuration.ONCE, frozenset(), True),
        (CouponDuration.REPEATING, frozenset(), False),
        (CouponDuration.FOREVER, frozenset(), False),
        (CouponDuration.FOREVER, frozenset({"start-pack"}), True),
    ],
)
def test_a_coupon_lasting_months_discounts_the_monthly_bill_only_unless_it_names_the_one_off_item(
    duration: CouponDuration, add_on_codes: frozenset[str], one_off_matches: bool
) -> None:
    coupon = pricing.CouponTerms(
        "C",
        CouponKind.PERCENT,
        duration,
        percent_off=Decimal(10),
        duration_months=3,
        add_on_codes=add_on_codes,
    )

    assert coupon.matches("start-pack", "SERVICES", Cadence.ONE_OFF) is one_off_matches
    assert coupon.matches("users-1", "USERS", Cadence.MONTHLY) is not bool(add_on_codes)


def test_a_quote_reads_back_as_recorded_and_an_unreadable_one_as_none() -> None:
    period = BillingPeriod(dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    item = pricing.CartItem(
        "users-1", "1 extra user", "USERS", Cadence.MONTHLY, False, Money.of("4.90", "EUR"), 2
    )
    summary = pricing.summarize(
        [item],
        currency="EUR",
        period=period,
        today=dt.date(2026, 11, 23),
        coupon=None,
        current_monthly_total=Money.of("123.00", "EUR"),
    )
    quote = pricing.Quote.of(summary)

    assert pricing.Quote.from_json(quote.to_json()) == quote
    assert quote.to_json()["total"] == "2.61"
    assert pricing.Quote.from_json({"total": "2.61"}) is None
    assert pricing.Quote.from_json(None) is None
