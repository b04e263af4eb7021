"""The process forecast of ``creditUsage`` (DESIGN.md 1, "Credits and processes").

At the pace of the period so far (processes per day since the period started), how many processes
the period will end with, and on which day the allowance (credits x 30 + 33%) would be passed.
Pure arithmetic in ``Decimal``: no database, no clock of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from app.services.periods import BillingPeriod

SECONDS_PER_DAY = Decimal(86400)


@dataclass(frozen=True, slots=True)
class ProcessForecast:
    daily_pace: Decimal  # processes per day so far, two decimals
    expected_by_period_end: int
    allowance_passed_on: dt.date | None  # None: not within this period at this pace


def forecast_processes(
    *, used: int, allowance: int, period: BillingPeriod, now: dt.datetime
) -> ProcessForecast:
    """Linear extrapolation of ``used`` over the whole period.

    ``pace = used / days elapsed`` (fractional days since the period's first instant);
    ``expected = pace x days in the period`` rounded half-up; the allowance is passed on the day
    ``allowance / pace`` days after the start (the day the cumulative count exceeds it), or never
    within the period when that is on or after its end.
    """
    elapsed_seconds = Decimal(int((min(now, period.end_instant()) - period.start_instant()).total_seconds()))
    if used <= 0 or elapsed_seconds <= 0:
        return ProcessForecast(
            daily_pace=Decimal("0.00"), expected_by_period_end=max(used, 0), allowance_passed_on=None
        )
    pace = Decimal(used) * SECONDS_PER_DAY / elapsed_seconds
    expected = int((pace * period.days).to_integral_value(rounding=ROUND_HALF_UP))
    days_to_allowance = Decimal(allowance) / pace
    passed_on: dt.date | None = None
    if days_to_allowance < period.days:
        passed_on = period.start + dt.timedelta(
            days=int(days_to_allowance.to_integral_value(rounding=ROUND_FLOOR))
        )
    return ProcessForecast(
        daily_pace=pace.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
        expected_by_period_end=max(expected, used),
        allowance_passed_on=passed_on,
    )
