"""The forecasts of ``creditUsage`` (docs/design.md, "Credits and processes"): processes and credits.

Processes: at the pace of the period so far (processes per day since the period started), how many
processes the period will end with, and on which day the allowance (credits x 30 + 33%) would be passed.

Credits (issue 15): the daily growth of the credits used, fitted by ordinary least squares over the
applied usage reports of the last 30 days, and the day the credit limit would be passed at that pace.
Least squares rather than "last minus first": one odd report (a recount, a bulk import undone the next
day) moves the line a little instead of deciding it. The fit is exact (integer sums, ``Fraction``);
``None`` when there is no upward trend to speak of (see ``forecast_credits``).

Pure arithmetic: no database, no clock of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction

from app.services.periods import BillingPeriod

SECONDS_PER_DAY = Decimal(86400)


@dataclass(frozen=True, slots=True)
class ProcessForecast:
    daily_pace: Decimal  # processes per day so far, two decimals
    expected_by_period_end: int
    allowance_passed_on: dt.date | None  # None: not within this period at this pace


def pace_per_day(used: int, *, period: BillingPeriod, now: dt.datetime) -> Decimal:
    """``used / days elapsed`` since the period's first instant (fractional days, up to its end); 0
    before anything was counted or before the period began."""
    elapsed_seconds = Decimal(int((min(now, period.end_instant()) - period.start_instant()).total_seconds()))
    if used <= 0 or elapsed_seconds <= 0:
        return Decimal(0)
    return Decimal(used) * SECONDS_PER_DAY / elapsed_seconds


def two_decimals(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def forecast_processes(
    *, used: int, allowance: int, period: BillingPeriod, now: dt.datetime
) -> ProcessForecast:
    """Linear extrapolation of ``used`` over the whole period.

    ``pace = used / days elapsed`` (fractional days since the period's first instant);
    ``expected = pace x days in the period`` rounded half-up; the allowance is passed on the day
    ``allowance / pace`` days after the start (the day the cumulative count exceeds it), or never
    within the period when that is on or after its end.
    """
    pace = pace_per_day(used, period=period, now=now)
    if not pace:
        return ProcessForecast(
            daily_pace=Decimal("0.00"), expected_by_period_end=max(used, 0), allowance_passed_on=None
        )
    expected = int((pace * period.days).to_integral_value(rounding=ROUND_HALF_UP))
    days_to_allowance = Decimal(allowance) / pace
    passed_on: dt.date | None = None
    if days_to_allowance < period.days:
        passed_on = period.start + dt.timedelta(
            days=int(days_to_allowance.to_integral_value(rounding=ROUND_FLOOR))
        )
    return ProcessForecast(
        daily_pace=two_decimals(pace),
        expected_by_period_end=max(expected, used),
        allowance_passed_on=passed_on,
    )


# --- Credits ---------------------------------------------------------------------------------------

CREDIT_WINDOW = dt.timedelta(days=30)  # the reports a forecast is fitted on: those of the last 30 days
MIN_REPORTS = 3  # two points always make a line: three are the least that can disagree with it
HORIZON_DAYS = 36_525  # a limit more than 100 years away at this pace is not a forecast: as good as flat
_US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class CreditForecast:
    daily_growth: Decimal  # the fitted slope, credits per day, two decimals (half-up)
    limit_passed_on: dt.date  # UTC day the fitted line, from the latest report, reaches the limit
    days_left: int  # whole days from today (UTC) to that day; 0 when it is today or already passed
    based_on_reports: int
    since: dt.datetime  # the first report of the fit


def forecast_credits(
    points: Sequence[tuple[dt.datetime, int]], *, limit: int, now: dt.datetime
) -> CreditForecast | None:
    """The credits' trend over ``points`` (measured time, credits used), and when it passes ``limit``.

    The slope is the ordinary least squares fit of credits on time (x in days since the first point):
    ``slope = (n Sxy - Sx Sy) / (n Sxx - Sx^2)``, computed exactly on microseconds. From the latest
    point's value at that slope, the limit is reached ``(limit - latest) / slope`` days after the latest
    point: ``limit_passed_on`` is that instant's UTC day, ``days_left`` the whole days from today to it.

    ``None``: fewer than 3 points; every point at one instant (no time to fit on); a slope of 0 or less
    (flat or falling: the limit is never passed at that pace); or the limit more than 100 years away.
    At or above the limit already (a limit of 0 included), ``days_left`` is 0 and ``limit_passed_on``
    is the latest point's day.
    """
    if len(points) < MIN_REPORTS:
        return None
    ordered = sorted(points, key=lambda point: point[0])
    first_at, latest_at = ordered[0][0], ordered[-1][0]
    n = len(ordered)
    xs = [(at - first_at) // dt.timedelta(microseconds=1) for at, _ in ordered]
    ys = [credits for _, credits in ordered]
    sum_x, sum_y = sum(xs), sum(ys)
    spread = n * sum(x * x for x in xs) - sum_x * sum_x  # n x variance: 0 when all x are equal
    if spread == 0:
        return None
    covariance = n * sum(x * y for x, y in zip(xs, ys, strict=True)) - sum_x * sum_y
    slope = Fraction(covariance * _US_PER_DAY, spread)  # credits per day
    if slope <= 0:
        return None
    latest = ys[-1]
    if latest >= limit:
        passed_on = latest_at.astimezone(dt.UTC).date()
    else:
        days = Fraction(limit - latest) / slope
        if days > HORIZON_DAYS:
            return None
        passed_at = latest_at + dt.timedelta(microseconds=int(days * _US_PER_DAY))
        passed_on = passed_at.astimezone(dt.UTC).date()
    growth = Decimal(slope.numerator) / Decimal(slope.denominator)
    return CreditForecast(
        daily_growth=two_decimals(growth),
        limit_passed_on=passed_on,
        days_left=max((passed_on - now.astimezone(dt.UTC).date()).days, 0),
        based_on_reports=n,
        since=first_at,
    )
