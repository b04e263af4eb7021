"""The credit forecast (least squares over the last reports), on series computed by hand.

Notation: x in days since the first report, n points, Sx = sum x, Sy = sum y, Sxx = sum x^2, Sxy = sum xy;
slope = (n Sxy - Sx Sy) / (n Sxx - Sx^2) credits a day.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from app.services.forecast import forecast_credits


def at(day: int, hour: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


def test_a_perfect_line_of_100_a_day_passes_2000_seven_days_after_the_latest_report() -> None:
    # y = 1000 + 100 x: slope 100. Latest 1,300 on the 13th at noon; (2,000 - 1,300) / 100 = 7 days
    # -> the 20th at noon; today is the 13th: 7 days left.
    points = [(at(10 + i, 12), 1000 + 100 * i) for i in range(4)]

    forecast = forecast_credits(points, limit=2000, now=at(13, 13))

    assert forecast is not None
    assert forecast.daily_growth == Decimal("100.00")
    assert forecast.limit_passed_on == dt.date(2026, 11, 20)
    assert forecast.days_left == 7
    assert (forecast.based_on_reports, forecast.since) == (4, at(10, 12))


def test_a_noisy_series_follows_the_least_squares_slope_not_the_last_step() -> None:
    # x = 0..4, y = 1000, 1030, 1010, 1060, 1050 (the last step falls by 10).
    # Sx = 10, Sy = 5150, Sxx = 30, Sxy = 1030 + 2020 + 3180 + 4200 = 10430;
    # slope = (5 x 10430 - 10 x 5150) / (5 x 30 - 100) = 650 / 50 = 13 a day.
    # Latest 1,050 on Nov 5 00:00; (1,400 - 1,050) / 13 = 26.92 days -> Dec 1 22:09 -> Dec 1;
    # from today, Nov 5: 26 days.
    values = [1000, 1030, 1010, 1060, 1050]
    points = [(at(1 + i), value) for i, value in enumerate(values)]

    forecast = forecast_credits(points, limit=1400, now=at(5, 6))

    assert forecast is not None
    assert forecast.daily_growth == Decimal("13.00")
    assert forecast.limit_passed_on == dt.date(2026, 12, 1)
    assert forecast.days_left == 26


def test_uneven_spacing_counts_time_not_reports_and_growth_rounds_to_two_decimals() -> None:
    # x = 0, 0.25, 1 (0 h, 6 h, 24 h), y = 100, 110, 130. Sx = 1.25, Sy = 340, Sxx = 1.0625,
    # Sxy = 27.5 + 130 = 157.5; slope = (472.5 - 425) / (3.1875 - 1.5625) = 47.5 / 1.625 = 29.2307...
    # Latest 130 on Nov 21 00:00; (200 - 130) / 29.2307 = 2.3947 days -> Nov 23 09:28; today Nov 21: 2.
    points = [(at(20, 6), 110), (at(21), 130), (at(20), 100)]  # in any order

    forecast = forecast_credits(points, limit=200, now=at(21, 1))

    assert forecast is not None
    assert forecast.daily_growth == Decimal("29.23")
    assert forecast.limit_passed_on == dt.date(2026, 11, 23)
    assert (forecast.days_left, forecast.since) == (2, at(20))


def test_the_limit_passed_in_ten_days() -> None:
    # 3,400, 3,450, 3,500 a day apart: 50 a day; (4,000 - 3,500) / 50 = 10 days after Nov 23 noon.
    points = [(at(21, 12), 3400), (at(22, 12), 3450), (at(23, 12), 3500)]

    forecast = forecast_credits(points, limit=4000, now=at(23, 12))

    assert forecast is not None
    assert (forecast.limit_passed_on, forecast.days_left) == (dt.date(2026, 12, 3), 10)


def test_a_flat_trend_has_no_forecast() -> None:
    # 1,000 three times: Sxy = Sx Sy / n, slope 0.
    assert forecast_credits([(at(d), 1000) for d in (1, 2, 3)], limit=2000, now=at(3)) is None


def test_a_falling_trend_has_no_forecast() -> None:
    # 1,200, 1,100, 1,000: slope -100.
    points = [(at(1), 1200), (at(2), 1100), (at(3), 1000)]
    assert forecast_credits(points, limit=2000, now=at(3)) is None


def test_a_rise_then_a_larger_fall_is_falling_overall() -> None:
    # x = 0, 1, 2; y = 1000, 1300, 900: Sx = 3, Sy = 3200, Sxx = 5, Sxy = 1300 + 1800 = 3100;
    # slope = (9300 - 9600) / (15 - 9) = -50: falling, though the first step rose.
    points = [(at(1), 1000), (at(2), 1300), (at(3), 900)]
    assert forecast_credits(points, limit=2000, now=at(3)) is None


def test_two_reports_are_not_enough() -> None:
    assert forecast_credits([(at(1), 1000), (at(2), 1500)], limit=2000, now=at(2)) is None
    assert forecast_credits([], limit=2000, now=at(2)) is None


def test_reports_all_measured_at_one_instant_have_no_time_to_fit_on() -> None:
    assert forecast_credits([(at(1), 1000), (at(1), 1100), (at(1), 1200)], limit=2000, now=at(2)) is None


def test_already_over_the_limit_leaves_no_day_and_dates_the_latest_report() -> None:
    # 4,100, 4,200, 4,300 against 4,000: passed already; the latest report (Nov 22) saw it.
    points = [(at(20, 8), 4100), (at(21, 8), 4200), (at(22, 8), 4300)]

    forecast = forecast_credits(points, limit=4000, now=at(23, 12))

    assert forecast is not None
    assert (forecast.daily_growth, forecast.days_left) == (Decimal("100.00"), 0)
    assert forecast.limit_passed_on == dt.date(2026, 11, 22)


def test_at_the_limit_exactly_a_rising_trend_passes_it_now() -> None:
    points = [(at(21), 3800), (at(22), 3900), (at(23), 4000)]

    forecast = forecast_credits(points, limit=4000, now=at(23, 12))

    assert forecast is not None
    assert (forecast.limit_passed_on, forecast.days_left) == (dt.date(2026, 11, 23), 0)


def test_a_limit_of_zero_is_passed_by_any_usage() -> None:
    forecast = forecast_credits([(at(21), 1), (at(22), 2), (at(23), 3)], limit=0, now=at(23))

    assert forecast is not None
    assert (forecast.limit_passed_on, forecast.days_left) == (dt.date(2026, 11, 23), 0)


def test_a_date_in_the_past_at_that_pace_leaves_zero_days() -> None:
    # 100 a day, latest 1,900 on Nov 1: 2,000 reached on Nov 2; today, Nov 23, it is behind us.
    points = [(at(1, 0, 11) - dt.timedelta(days=2 - i), 1700 + 100 * i) for i in range(3)]

    forecast = forecast_credits(points, limit=2000, now=at(23))

    assert forecast is not None
    assert (forecast.limit_passed_on, forecast.days_left) == (dt.date(2026, 11, 2), 0)


def test_a_limit_more_than_a_century_away_is_no_forecast() -> None:
    # 1 credit a day, 40,000 credits to go: 109 years.
    points = [(at(21), 0), (at(22), 1), (at(23), 2)]
    assert forecast_credits(points, limit=40_002, now=at(23)) is None
    # 36,000 to go: 98.6 years, still a date.
    forecast = forecast_credits(points, limit=36_002, now=at(23))
    assert forecast is not None
    assert forecast.days_left == 36_000
