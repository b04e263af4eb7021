"""The process forecast, on cases computed by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from app.services.forecast import forecast_processes
from app.services.periods import BillingPeriod, period_containing

NOVEMBER = BillingPeriod(dt.date(2026, 11, 1), dt.date(2026, 12, 1))  # 30 days


def at(day: int, hour: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


def test_pace_of_6000_a_day_ends_at_180000_and_passes_159600_on_day_27() -> None:
    # 22.5 days elapsed: 135,000 / 22.5 = 6,000 a day; x 30 = 180,000; 159,600 / 6,000 = 26.6 days.
    forecast = forecast_processes(used=135_000, allowance=159_600, period=NOVEMBER, now=at(23, 12))

    assert forecast.daily_pace == Decimal("6000.00")
    assert forecast.expected_by_period_end == 180_000
    assert forecast.allowance_passed_on == dt.date(2026, 11, 27)


def test_a_pace_that_stays_within_the_allowance_passes_it_on_no_day() -> None:
    # 10 days: 40,000 -> 4,000 a day -> 120,000 by the end, below 159,600.
    forecast = forecast_processes(used=40_000, allowance=159_600, period=NOVEMBER, now=at(11))

    assert (forecast.daily_pace, forecast.expected_by_period_end) == (Decimal("4000.00"), 120_000)
    assert forecast.allowance_passed_on is None


def test_an_allowance_reached_exactly_on_the_last_instant_is_not_passed_within_the_period() -> None:
    # 15 days: 1,500 -> 100 a day -> 3,000 by the end, exactly the allowance: not exceeded.
    forecast = forecast_processes(used=1500, allowance=3000, period=NOVEMBER, now=at(16))

    assert forecast.expected_by_period_end == 3000
    assert forecast.allowance_passed_on is None


def test_an_allowance_already_passed_is_dated_by_the_pace() -> None:
    # 20 days: 2,400 -> 120 a day; 1,000 / 120 = 8.33 days -> November 9.
    forecast = forecast_processes(used=2400, allowance=1000, period=NOVEMBER, now=at(21))

    assert forecast.expected_by_period_end == 3600
    assert forecast.allowance_passed_on == dt.date(2026, 11, 9)


def test_fractional_expectations_round_half_up() -> None:
    # 7 days: 7 -> 1 a day; x 30 = 30. 3 days: 1 -> 0.333.. a day -> 10; 2 days: 1 -> 0.5 -> 15.
    assert forecast_processes(used=7, allowance=100, period=NOVEMBER, now=at(8)).expected_by_period_end == 30
    assert forecast_processes(used=1, allowance=100, period=NOVEMBER, now=at(4)).expected_by_period_end == 10
    # 4 days, 1 process: 0.25 a day -> 7.5 -> 8 (half-up).
    thin = forecast_processes(used=1, allowance=100, period=NOVEMBER, now=at(5))
    assert (thin.daily_pace, thin.expected_by_period_end) == (Decimal("0.25"), 8)


def test_nothing_used_forecasts_nothing() -> None:
    forecast = forecast_processes(used=0, allowance=159_600, period=NOVEMBER, now=at(23))

    assert (forecast.daily_pace, forecast.expected_by_period_end, forecast.allowance_passed_on) == (
        Decimal("0.00"), 0, None,
    )  # fmt: skip


def test_the_first_instant_of_a_period_has_no_pace_yet() -> None:
    forecast = forecast_processes(used=3, allowance=10, period=NOVEMBER, now=at(1))

    assert (forecast.expected_by_period_end, forecast.allowance_passed_on) == (3, None)


def test_a_period_with_an_anchor_day_counts_its_own_days() -> None:
    # Anchor day 10: the period of November 20 is November 10 to December 10 (30 days).
    period = period_containing(at(20), 10)
    # 10 days elapsed, 3,000 used -> 300 a day -> 9,000; 5,000 / 300 = 16.67 days -> November 26.
    forecast = forecast_processes(used=3000, allowance=5000, period=period, now=at(20))

    assert (period.start, period.days) == (dt.date(2026, 11, 10), 30)
    assert forecast.expected_by_period_end == 9000
    assert forecast.allowance_passed_on == dt.date(2026, 11, 26)


def test_a_31_day_month_extrapolates_over_31_days() -> None:
    december = BillingPeriod(dt.date(2026, 12, 1), dt.date(2027, 1, 1))
    # 10 days: 1,000 -> 100 a day -> 3,100.
    forecast = forecast_processes(used=1000, allowance=99_999, period=december, now=at(11, month=12))

    assert forecast.expected_by_period_end == 3100
