"""Pricing rules of the store, as pure functions (no ORM): proration, coupons, the purchase summary
and the invoice preview (docs/design.md, "The add-on store", "Money and time").

Every amount is rounded half-up to the currency's minor unit once, where a line is computed; every
total is the sum of its lines, so lines always add up to totals exactly.

Rules:
- A monthly item contracted today is charged on the current period's invoice for the days from
  today (inclusive) to the end of the period: ``unit x quantity x days_left / period_days``.
- One-off items are charged in full, once.
- A PERCENT coupon takes ``percent`` of each line it applies to, rounded per line. A FIXED coupon's
  amount is spent on the lines it applies to in cart order (greedily), never beyond a line's
  amount, so a discount never makes a line negative. The split is ``allocate_discounts``, the one
  function behind the cart summary, the order's lines and the invoice preview, always in the
  lines' cart position (never in the order rows happen to be read), so all three agree.
- A coupon applies to a line when the line costs something and matches the coupon's restriction
  (categories or add-on codes; none means every line) and its cadence: a coupon whose duration
  spans months (REPEATING, FOREVER) is a discount on the monthly bill, so it applies to monthly
  lines only ("10% off monthly add-ons for 3 months" takes nothing off the one-off Start Pack);
  a one-off line is discounted by such a coupon only when the coupon names its add-on code.
  A ONCE coupon applies to both cadences.
- Duration, for later invoices: ONCE applies to the purchase's own period only, REPEATING N to the
  first N billing periods counting the purchase's period, FOREVER to every period.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from app.models.enums import Cadence, CouponDuration, CouponKind
from app.money import Money
from app.services.periods import BillingPeriod

BYTES_PER_GB = 1024**3
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class CouponTerms:
    """A coupon's terms in one currency (a FIXED coupon's amount is per currency)."""

    code: str
    kind: CouponKind
    duration: CouponDuration
    percent_off: Decimal | None = None
    amount_off: Decimal | None = None
    duration_months: int | None = None
    categories: frozenset[str] = frozenset()
    add_on_codes: frozenset[str] = frozenset()

    @property
    def monthly_only(self) -> bool:
        """A discount on the monthly bill (it lasts months): one-off items are not part of it."""
        return self.duration in (CouponDuration.REPEATING, CouponDuration.FOREVER)

    def matches(self, code: str, category: str, cadence: Cadence = Cadence.MONTHLY) -> bool:
        if code in self.add_on_codes:
            return True
        if cadence == Cadence.ONE_OFF and self.monthly_only:
            return False
        if not self.categories and not self.add_on_codes:
            return True
        return category in self.categories

    def covers_period(self, first: BillingPeriod, period: BillingPeriod) -> bool:
        """Whether the coupon still discounts ``period`` for a purchase made in ``first``."""
        months = (period.start.year - first.start.year) * 12 + period.start.month - first.start.month
        if months < 0:
            return False
        if self.duration == CouponDuration.ONCE:
            return months == 0
        if self.duration == CouponDuration.REPEATING:
            return months < (self.duration_months or 0)
        return True


def days_left(period: BillingPeriod, today: dt.date) -> int:
    """Days from ``today`` (inclusive) to the end of the period."""
    return max(0, min((period.end - today).days, period.days))


def prorate(full: Money, days: int, period_days: int) -> Money:
    """``full`` for ``days`` out of ``period_days``, rounded once."""
    if days >= period_days:
        return full
    return Money.of(full.amount * Decimal(days) / Decimal(period_days), full.currency)


def active_days(period: BillingPeriod, start: dt.datetime, end: dt.datetime | None) -> int:
    """Days of ``period`` on which something contracted at ``start`` and ending at ``end`` was
    available; a day it was available for part of counts whole."""
    first = max(period.start, start.astimezone(dt.UTC).date())
    last = period.end
    if end is not None:
        end = end.astimezone(dt.UTC)
        end_day = end.date() if end.time() == dt.time() else end.date() + dt.timedelta(days=1)
        last = min(last, end_day)
    return max(0, (last - first).days)


def allocate_discounts(
    amounts: Sequence[Money],
    applies: Sequence[bool],
    coupon: CouponTerms | None,
    positions: Sequence[int] | None = None,
) -> list[Money]:
    """The discount of each line, in the order given. Never negative, never more than the line's
    amount. A FIXED amount is spent in cart position order (``positions``; default: the order given)."""
    discounts = [Money.zero(amount.currency) for amount in amounts]
    if coupon is None:
        return discounts
    if coupon.kind == CouponKind.PERCENT:
        percent = coupon.percent_off or Decimal(0)
        for index, amount in enumerate(amounts):
            if applies[index] and amount.amount > 0:
                discounts[index] = min(
                    Money.of(amount.amount * percent / HUNDRED, amount.currency), amount, key=_amount
                )
        return discounts
    remaining = coupon.amount_off or Decimal(0)
    order = list(range(len(amounts)))
    if positions is not None:
        order.sort(key=lambda index: positions[index])
    for index in order:
        amount = amounts[index]
        if remaining <= 0:
            break
        if applies[index] and amount.amount > 0:
            taken = min(remaining, amount.amount)
            discounts[index] = Money.of(taken, amount.currency)
            remaining -= discounts[index].amount
    return discounts


def _amount(money: Money) -> Decimal:
    return money.amount


@dataclass(frozen=True, slots=True)
class CartItem:
    """A line of the cart as priced: the unit price is the one the admin saw."""

    code: str
    name: str
    category: str
    cadence: Cadence
    is_free: bool
    unit_price: Money
    quantity: int


@dataclass(frozen=True, slots=True)
class SummaryLine:
    item: CartItem
    line_total: Money  # unit x quantity: the monthly amount, or the one-off price
    amount_due: Money  # on the next invoice: prorated (monthly) or in full (one-off)
    discount: Money
    total: Money  # amount_due - discount
    coupon_applies: bool


@dataclass(frozen=True, slots=True)
class Summary:
    currency: str
    period: BillingPeriod
    days_left: int
    lines: list[SummaryLine]
    coupon: CouponTerms | None
    subtotal: Money  # sum of amount_due
    discount: Money
    total: Money
    monthly_increase: Money
    due_on_next_invoice: Money  # monthly lines, prorated
    one_off_total: Money
    new_monthly_total: Money  # current monthly subscription + monthly_increase (before coupons)

    @property
    def coupon_applies(self) -> bool:
        return any(line.coupon_applies for line in self.lines)


@dataclass(frozen=True, slots=True)
class Quote:
    """The figures of a purchase as the summary showed them: what checkout confirms (``Cart.quote``).

    The new monthly total is not part of it: it also moves when another admin of the tenant buys
    something, which does not change what this purchase costs."""

    currency: str
    period: BillingPeriod
    subtotal: Money
    discount: Money
    total: Money
    monthly_increase: Money
    due_on_next_invoice: Money
    one_off_total: Money

    _AMOUNTS = ("subtotal", "discount", "total", "monthly_increase", "due_on_next_invoice", "one_off_total")

    @classmethod
    def of(cls, summary: Summary) -> Quote:
        amounts = {name: getattr(summary, name) for name in cls._AMOUNTS}
        return cls(currency=summary.currency, period=summary.period, **amounts)

    def to_json(self) -> dict[str, str]:
        figures = {name: str(getattr(self, name).amount) for name in self._AMOUNTS}
        return {
            "currency": self.currency,
            "period_start": self.period.start.isoformat(),
            "period_end": self.period.end.isoformat(),
            **figures,
        }

    @classmethod
    def from_json(cls, data: object) -> Quote | None:
        """The stored quote; None when there is none (or it cannot be read: then nothing is confirmed)."""
        if not isinstance(data, dict):
            return None
        try:
            currency = str(data["currency"])
            amounts = {name: Money.of(str(data[name]), currency) for name in cls._AMOUNTS}
            period = BillingPeriod(
                dt.date.fromisoformat(str(data["period_start"])),
                dt.date.fromisoformat(str(data["period_end"])),
            )
        except (KeyError, ValueError, ArithmeticError):
            return None
        return cls(currency=currency, period=period, **amounts)


def _sum(amounts: Sequence[Money], currency: str) -> Money:
    total = Money.zero(currency)
    for amount in amounts:
        total += amount
    return total


def summarize(
    items: Sequence[CartItem],
    *,
    currency: str,
    period: BillingPeriod,
    today: dt.date,
    coupon: CouponTerms | None,
    current_monthly_total: Money,
) -> Summary:
    """The "finish purchase" summary (seed 000): each line, what it adds to the monthly bill,
    what the next invoice gets (prorated by day), the discount and the total."""
    left = days_left(period, today)
    line_totals = [item.unit_price.times(item.quantity) for item in items]
    amounts_due = [
        prorate(line_total, left, period.days) if item.cadence == Cadence.MONTHLY else line_total
        for item, line_total in zip(items, line_totals, strict=True)
    ]
    applies = [
        coupon is not None and amount.amount > 0 and coupon.matches(item.code, item.category, item.cadence)
        for item, amount in zip(items, amounts_due, strict=True)
    ]
    discounts = allocate_discounts(amounts_due, applies, coupon)
    lines = [
        SummaryLine(item, line_total, due, discount, due - discount, applied)
        for item, line_total, due, discount, applied in zip(
            items, line_totals, amounts_due, discounts, applies, strict=True
        )
    ]
    monthly = [line for line in lines if line.item.cadence == Cadence.MONTHLY]
    monthly_increase = _sum([line.line_total for line in monthly], currency)
    return Summary(
        currency=currency,
        period=period,
        days_left=left,
        lines=lines,
        coupon=coupon,
        subtotal=_sum([line.amount_due for line in lines], currency),
        discount=_sum([line.discount for line in lines], currency),
        total=_sum([line.total for line in lines], currency),
        monthly_increase=monthly_increase,
        due_on_next_invoice=_sum([line.amount_due for line in monthly], currency),
        one_off_total=_sum(
            [line.amount_due for line in lines if line.item.cadence == Cadence.ONE_OFF], currency
        ),
        new_monthly_total=current_monthly_total + monthly_increase,
    )


# --- The invoice preview ----------------------------------------------------------------------


class InvoiceLineKind(StrEnum):
    PLAN = "PLAN"
    PLAN_CHANGE = "PLAN_CHANGE"
    CHANGE_FEE = "CHANGE_FEE"
    ADD_ON = "ADD_ON"
    ONE_OFF = "ONE_OFF"
    STORAGE_OVERAGE = "STORAGE_OVERAGE"
    DISCOUNT = "DISCOUNT"


@dataclass(frozen=True, slots=True)
class RecurringCharge:
    """The plan or a monthly add-on, available from ``start`` until ``end`` (exclusive)."""

    code: str
    name: str
    unit_price: Money  # per month
    quantity: int
    start: dt.datetime
    end: dt.datetime | None = None
    order_key: str | None = None  # the order that bought it (for its coupon)
    coupon_applies: bool = False
    is_plan: bool = False
    position: int = 0  # its line's position in that order (the cart's), which a coupon is split in


@dataclass(frozen=True, slots=True)
class OneOffCharge:
    code: str
    name: str
    unit_price: Money
    quantity: int
    order_key: str
    coupon_applies: bool = False
    position: int = 0  # its line's position in the order


@dataclass(frozen=True, slots=True)
class PlanChangeCharge:
    """A change of plan taking effect at ``effective_at``. From that day (counted whole, as a purchase's
    day is) to the end of the period the invoice adds the difference of the monthly prices, prorated by
    day; its fee is billed once, in the period it takes effect in. A change at the very start of a period
    has no difference to add: that period's plan line is already the new plan's."""

    from_code: str
    from_name: str
    from_price: Money  # per month
    to_code: str
    to_name: str
    to_price: Money  # per month
    effective_at: dt.datetime
    fee: Money


@dataclass(frozen=True, slots=True)
class OrderCoupon:
    """A coupon redeemed by an order, with the billing period the order was placed in."""

    terms: CouponTerms
    first_period: BillingPeriod


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    kind: InvoiceLineKind
    code: str
    description: str
    quantity: int
    unit_price: Money
    days: int | None
    amount: Money


@dataclass(frozen=True, slots=True)
class Invoice:
    period: BillingPeriod
    currency: str
    lines: list[InvoiceLine]
    subtotal: Money  # every line but the discounts
    discount: Money  # positive: what the discount lines take off
    total: Money  # the sum of every line


@dataclass(frozen=True, slots=True)
class StorageOverage:
    used_bytes: int
    included_mb: int
    price_per_gb: Money

    @property
    def gigabytes(self) -> int:
        """Whole GB over the included storage, each started GB counting (seed 002)."""
        over = self.used_bytes - self.included_mb * 1024 * 1024
        return max(0, math.ceil(over / BYTES_PER_GB))


def storage_overage_gb(used_bytes: int, included_mb: int) -> int:
    return StorageOverage(used_bytes, included_mb, Money.zero("EUR")).gigabytes


def plan_change_lines(period: BillingPeriod, changes: Sequence[PlanChangeCharge]) -> list[InvoiceLine]:
    """The lines ``changes`` add to the invoice of ``period`` (see ``PlanChangeCharge``)."""
    lines: list[InvoiceLine] = []
    start, end = period.start_instant(), period.end_instant()
    for change in sorted(changes, key=lambda change: change.effective_at):
        if not start <= change.effective_at < end:
            continue
        description = f"Plan change: {change.from_name} to {change.to_name}"
        if change.effective_at > start:
            days = days_left(period, change.effective_at.astimezone(dt.UTC).date())
            difference = change.to_price - change.from_price
            lines.append(
                InvoiceLine(
                    InvoiceLineKind.PLAN_CHANGE,
                    change.to_code,
                    description,
                    1,
                    difference,
                    days,
                    prorate(difference, days, period.days),
                )
            )
        if change.fee.amount > 0:
            lines.append(
                InvoiceLine(
                    InvoiceLineKind.CHANGE_FEE,
                    change.to_code,
                    f"{description} (change fee)",
                    1,
                    change.fee,
                    None,
                    change.fee,
                )
            )
    return lines


def compose_invoice(
    *,
    period: BillingPeriod,
    currency: str,
    recurring: Sequence[RecurringCharge],
    one_offs: Sequence[OneOffCharge] = (),
    overage: StorageOverage | None = None,
    coupons: dict[str, OrderCoupon] | None = None,
    plan_changes: Sequence[PlanChangeCharge] = (),
) -> Invoice:
    """The invoice of ``period``: recurring charges prorated by the days they were available (the plan
    first, then the plan changes of the period), one-off charges, storage overage, then one discount
    line per discounted charge."""
    coupons = coupons or {}
    lines: list[InvoiceLine] = []
    by_order: dict[str, list[tuple[InvoiceLine, bool, int]]] = {}
    for charge in recurring:
        days = active_days(period, charge.start, charge.end)
        if days == 0:
            continue
        amount = prorate(charge.unit_price.times(charge.quantity), days, period.days)
        line = InvoiceLine(
            InvoiceLineKind.PLAN if charge.is_plan else InvoiceLineKind.ADD_ON,
            charge.code,
            charge.name,
            charge.quantity,
            charge.unit_price,
            days,
            amount,
        )
        lines.append(line)
        if charge.order_key is not None:
            by_order.setdefault(charge.order_key, []).append((line, charge.coupon_applies, charge.position))
        if charge.is_plan:
            lines += plan_change_lines(period, plan_changes)
    for item in one_offs:
        line = InvoiceLine(
            InvoiceLineKind.ONE_OFF,
            item.code,
            item.name,
            item.quantity,
            item.unit_price,
            None,
            item.unit_price.times(item.quantity),
        )
        lines.append(line)
        by_order.setdefault(item.order_key, []).append((line, item.coupon_applies, item.position))
    if overage is not None and overage.gigabytes > 0:
        lines.append(
            InvoiceLine(
                InvoiceLineKind.STORAGE_OVERAGE,
                "storage-overage",
                f"Storage over the included {overage.included_mb // 1024} GB",
                overage.gigabytes,
                overage.price_per_gb,
                None,
                overage.price_per_gb.times(overage.gigabytes),
            )
        )
    discount_lines: list[InvoiceLine] = []
    for order_key, charged in by_order.items():
        coupon = coupons.get(order_key)
        if coupon is None or not coupon.terms.covers_period(coupon.first_period, period):
            continue
        # In the order's line positions, as the summary and the order split it.
        charged.sort(key=lambda entry: entry[2])
        discounts = allocate_discounts(
            [line.amount for line, _, _ in charged],
            [applies for _, applies, _ in charged],
            coupon.terms,
            [position for _, _, position in charged],
        )
        for (line, _, _), discount in zip(charged, discounts, strict=True):
            if discount.amount > 0:
                discount_lines.append(
                    InvoiceLine(
                        InvoiceLineKind.DISCOUNT,
                        coupon.terms.code,
                        f"Coupon {coupon.terms.code}: {line.description}",
                        1,
                        -discount,
                        None,
                        -discount,
                    )
                )
    lines.extend(discount_lines)
    return Invoice(
        period=period,
        currency=currency,
        lines=lines,
        subtotal=_sum([line.amount for line in lines if line.kind != InvoiceLineKind.DISCOUNT], currency),
        discount=-_sum([line.amount for line in discount_lines], currency),
        total=_sum([line.amount for line in lines], currency),
    )
