"""Billing periods follow the tenant's anchor day (docs/design.md, "Time").

A period starts on the anchor day of a month and ends (exclusive) on the anchor day of the next one.
The anchor is any day from 1 to 31: in a month shorter than the anchor, the period starts on the
month's last day instead, as Stripe's billing cycle anchor does (anchor 31: Jan 31, Feb 28 or 29,
Mar 31, Apr 30...; anchor 30: Jan 30, Feb 28 or 29, Mar 30). Each period ends where the next one
starts, so periods tile time with no gap and no overlap, and every day belongs to exactly one
period, named after the month it starts in (tests/unit/test_periods.py). Anchors outside 1..31 are
refused where a tenant gets one (``validate_anchor_day``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_PERIOD_NAME = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")  # ASCII digits: \d takes "٢٠٢٦" too

MIN_ANCHOR_DAY = 1
MAX_ANCHOR_DAY = 31


def validate_anchor_day(anchor_day: int) -> int:
    """A billing anchor day is a day of the month, 1..31 (29-31 are clamped in shorter months)."""
    if isinstance(anchor_day, bool) or not MIN_ANCHOR_DAY <= anchor_day <= MAX_ANCHOR_DAY:
        raise ValueError(
            f"a billing anchor day is between {MIN_ANCHOR_DAY} and {MAX_ANCHOR_DAY}, got {anchor_day!r}"
        )
    return anchor_day


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """``[start, end)`` in dates; named after the month it starts in ("2026-11")."""

    start: dt.date
    end: dt.date

    @property
    def name(self) -> str:
        return f"{self.start.year:04d}-{self.start.month:02d}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def start_instant(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), dt.UTC)

    def end_instant(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time(), dt.UTC)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def period_start(year: int, month: int, anchor_day: int) -> dt.date:
    """The day the period of ``year``-``month`` starts: the anchor day, or the month's last day when
    the month is shorter."""
    validate_anchor_day(anchor_day)
    return dt.date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def _period_of_month(year: int, month: int, anchor_day: int) -> BillingPeriod:
    next_year, next_month = _add_months(year, month, 1)
    return BillingPeriod(
        period_start(year, month, anchor_day), period_start(next_year, next_month, anchor_day)
    )


def period_named(name: str, anchor_day: int) -> BillingPeriod:
    match = _PERIOD_NAME.match(name)
    if not match:
        raise ValueError(f"a billing period is named YYYY-MM, got {name!r}")
    return _period_of_month(int(match[1]), int(match[2]), anchor_day)


def period_containing(day: dt.date | dt.datetime, anchor_day: int) -> BillingPeriod:
    if isinstance(day, dt.datetime):
        day = day.astimezone(dt.UTC).date()
    year, month = day.year, day.month
    if day < period_start(year, month, anchor_day):
        year, month = _add_months(year, month, -1)
    return _period_of_month(year, month, anchor_day)
