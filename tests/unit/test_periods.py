"""Billing periods: anchored on a day 1..31, clamped to the last day of shorter months, tiling time."""

import calendar
import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.periods import period_containing, period_named, validate_anchor_day


def test_period_with_anchor_day_one_is_the_calendar_month() -> None:
    period = period_containing(dt.date(2026, 11, 23), 1)
    assert (period.name, period.start, period.end, period.days) == (
        "2026-11",
        dt.date(2026, 11, 1),
        dt.date(2026, 12, 1),
        30,
    )


def test_period_before_the_anchor_day_belongs_to_the_previous_month() -> None:
    period = period_containing(dt.date(2026, 1, 5), 10)
    assert (period.name, period.start, period.end, period.last_day) == (
        "2025-12",
        dt.date(2025, 12, 10),
        dt.date(2026, 1, 10),
        dt.date(2026, 1, 9),
    )


def test_period_of_an_aware_datetime_uses_its_utc_date() -> None:
    brasilia = dt.timezone(dt.timedelta(hours=-3))
    late_evening = dt.datetime(2026, 11, 30, 22, 0, tzinfo=brasilia)  # already December 1st in UTC
    assert period_containing(late_evening, 1).name == "2026-12"


@pytest.mark.parametrize("name", ["2026-13", "2026-1", "26-01", "", "2026-00"])
def test_bad_period_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        period_named(name, 1)


DAYS = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31))
ANCHORS = st.integers(1, 31)


def clamped(day: dt.date, anchor: int) -> int:
    return min(anchor, calendar.monthrange(day.year, day.month)[1])


@given(DAYS, ANCHORS)
def test_every_day_falls_in_exactly_one_period(day: dt.date, anchor: int) -> None:
    period = period_containing(day, anchor)
    assert period.start <= day < period.end
    assert period.start.day == clamped(period.start, anchor)
    assert period.end.day == clamped(period.end, anchor)
    assert 28 <= period.days <= 31
    assert period_named(period.name, anchor) == period
    assert period.name == f"{period.start.year:04d}-{period.start.month:02d}"
    # Exactly one: the neighbours do not hold the day.
    before = period_containing(period.start - dt.timedelta(days=1), anchor)
    after = period_containing(period.end, anchor)
    assert before.end == period.start
    assert not before.start <= day < before.end
    assert after.start == period.end
    assert not after.start <= day < after.end


@given(st.integers(2000, 2100), st.integers(1, 12), ANCHORS)
def test_consecutive_periods_tile_time_without_gap_or_overlap(year: int, month: int, anchor: int) -> None:
    period = period_named(f"{year:04d}-{month:02d}", anchor)
    following = period_containing(period.end, anchor)
    assert following.start == period.end
    assert period_containing(period.last_day, anchor) == period
    assert period_containing(period.start, anchor) == period


@pytest.mark.parametrize("anchor", range(1, 32))
def test_the_periods_of_a_leap_year_and_the_next_tile_every_day_once(anchor: int) -> None:
    periods = {period_containing(dt.date(2027, 12, 31), anchor)}
    day = dt.date(2028, 1, 1)
    while day < dt.date(2030, 1, 1):
        periods.add(period_containing(day, anchor))
        day += dt.timedelta(days=1)
    ordered = sorted(periods, key=lambda period: period.start)
    assert all(a.end == b.start for a, b in itertools.pairwise(ordered))
    assert sum(period.days for period in ordered[1:-1]) == (ordered[-1].start - ordered[1].start).days


@pytest.mark.parametrize(
    ("day", "anchor", "start", "end"),
    [
        (dt.date(2027, 2, 15), 31, dt.date(2027, 1, 31), dt.date(2027, 2, 28)),
        (dt.date(2027, 2, 28), 31, dt.date(2027, 2, 28), dt.date(2027, 3, 31)),
        (dt.date(2028, 2, 28), 31, dt.date(2028, 1, 31), dt.date(2028, 2, 29)),
        (dt.date(2028, 2, 29), 30, dt.date(2028, 2, 29), dt.date(2028, 3, 30)),
        (dt.date(2026, 4, 30), 31, dt.date(2026, 4, 30), dt.date(2026, 5, 31)),
        (dt.date(2026, 4, 29), 31, dt.date(2026, 3, 31), dt.date(2026, 4, 30)),
        (dt.date(2026, 12, 31), 31, dt.date(2026, 12, 31), dt.date(2027, 1, 31)),
    ],
)
def test_an_anchor_beyond_a_months_length_falls_on_its_last_day_as_stripe_does(
    day: dt.date, anchor: int, start: dt.date, end: dt.date
) -> None:
    period = period_containing(day, anchor)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize("anchor", [0, -1, 32, 100])
def test_anchor_days_outside_1_to_31_are_refused(anchor: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 31"):
        validate_anchor_day(anchor)
    with pytest.raises(ValueError, match="between 1 and 31"):
        period_containing(dt.date(2026, 11, 23), anchor)
