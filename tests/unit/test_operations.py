"""The rules of the operator's coupon and operations services, without HTTP: which draft is a valid coupon,
what a retry is compared on, and which billing period a process alert must belong to to be open."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.models.enums import AddOnCategory, CouponDuration, CouponKind
from app.services import coupon_admin, operations
from app.services.coupon_admin import CouponDraft
from app.services.errors import InvalidInput
from app.services.periods import period_containing

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def draft(**changes: object) -> CouponDraft:
    values: dict[str, object] = {
        "code": "welcome-26",
        "kind": CouponKind.PERCENT,
        "duration": CouponDuration.ONCE,
        "percent_off": Decimal("12.5"),
    }
    values.update(changes)
    return CouponDraft(**values)  # type: ignore[arg-type]


def test_a_valid_draft_becomes_the_row_checkout_reads() -> None:
    fields = coupon_admin.validated(
        draft(applies_to_categories=[AddOnCategory.USERS, AddOnCategory.USERS]), now=NOW
    )
    assert fields["code"] == "WELCOME-26"
    assert fields["percent_off"] == Decimal("12.50")
    assert fields["amounts_off"] == {}
    assert fields["duration_months"] is None
    assert fields["applies_to_categories"] == ["USERS"]


def test_repeating_periods_are_stored_as_the_months_checkout_counts() -> None:
    fields = coupon_admin.validated(draft(duration=CouponDuration.REPEATING, duration_periods=120), now=NOW)
    assert fields["duration_months"] == 120


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "-"}, "input.code"),
        ({"code": "\uff21bc"}, "input.code"),  # full-width letter
        ({"code": "ab\tc"}, "input.code"),
        ({"description": "\x07bell"}, "input.description"),
        ({"description": "\ud800"}, "input.description"),
        ({"percent_off": Decimal("sNaN")}, "input.percentOff"),
        ({"kind": CouponKind.FIXED}, "input.percentOff"),
        ({"kind": CouponKind.FIXED, "percent_off": None}, "input.amountsOff"),
        (
            {"kind": CouponKind.FIXED, "percent_off": None, "amounts_off": [("EUR", Decimal("-1"))]},
            "input.amountsOff[0].amount",
        ),
        (
            {"kind": CouponKind.FIXED, "percent_off": None, "amounts_off": [("eur", Decimal("1"))]},
            "input.amountsOff[0].currency",
        ),
        ({"duration": CouponDuration.REPEATING}, "input.durationPeriods"),
        ({"duration_periods": 3}, "input.durationPeriods"),
        ({"valid_until": NOW}, "input.validUntil"),
        (
            {"valid_from": NOW + dt.timedelta(days=2), "valid_until": NOW + dt.timedelta(days=1)},
            "input.validUntil",
        ),
        ({"max_redemptions": 0}, "input.maxRedemptions"),
    ],
)
def test_an_inconsistent_draft_names_its_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        coupon_admin.validated(draft(**changes), now=NOW)
    assert refused.value.field == field


def test_a_retry_is_compared_on_terms_not_on_how_they_were_written() -> None:
    written = coupon_admin.validated(
        draft(valid_until=dt.datetime(2027, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))), now=NOW
    )
    again = coupon_admin.validated(
        draft(
            code=" WELCOME-26",
            percent_off=Decimal("12.50"),
            valid_until=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        ),
        now=NOW,
    )
    assert coupon_admin.terms_of(written) == coupon_admin.terms_of(again)
    other = coupon_admin.validated(draft(percent_off=Decimal("12.51")), now=NOW)
    assert coupon_admin.terms_of(other) != coupon_admin.terms_of(written)


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC),  # the last day of a short month: every anchor turned
        dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 31, tzinfo=dt.UTC),
        dt.datetime(2026, 4, 30, tzinfo=dt.UTC),
    ],
)
def test_the_current_period_split_matches_each_anchor_day(now: dt.datetime) -> None:
    """The open-alert query's (name, anchors up to, previous name) says the same as ``period_containing``."""
    this_month, split, last_month = operations._current_period_split(now)
    for anchor in range(1, 32):
        expected = period_containing(now, anchor).name
        assert expected == (this_month if anchor <= split else last_month), anchor
