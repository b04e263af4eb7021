"""Billing periods follow the tenant's anchor day (DESIGN.md 2, "Time")."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_PERIOD_NAME = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


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


def period_named(name: str, anchor_day: int) -> BillingPeriod:
    match = _PERIOD_NAME.match(name)
    if not match:
        raise ValueError(f"a billing period is named YYYY-MM, got {name!r}")
    year, month = int(match[1]), int(match[2])
    next_year, next_month = _add_months(year, month, 1)
    return BillingPeriod(dt.date(year, month, anchor_day), dt.date(next_year, next_month, anchor_day))


def period_containing(day: dt.date | dt.datetime, anchor_day: int) -> BillingPeriod:
    if isinstance(day, dt.datetime):
        day = day.astimezone(dt.UTC).date()
    year, month = day.year, day.month
    if day.day < anchor_day:
        year, month = _add_months(year, month, -1)
    return period_named(f"{year:04d}-{month:02d}", anchor_day)
