import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.periods import period_containing, period_named


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


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)), st.integers(1, 28))
def test_every_day_falls_in_exactly_one_period(day: dt.date, anchor: int) -> None:
    period = period_containing(day, anchor)
    assert period.start <= day < period.end
    assert period.start.day == period.end.day == anchor
    assert 28 <= period.days <= 31
    assert period_named(period.name, anchor) == period
