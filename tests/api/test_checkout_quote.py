"""A checkout confirms the amount the admin saw (issue 11): when the total changed since the summary was
shown (the billing period turned, or anything else), checkout refuses with TOTAL_CHANGED and the new
figures; confirming again after seeing them charges them.

acme (EUR, anchor 1): on 2026-11-30 one day of November is left, so 2 x credits-5000 (99.00) is
198.00 x 1/30 = 6.60 due; from 2026-12-01 the whole of December: 198.00.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.clock import FrozenClock
from app.models.coupons import Coupon
from app.models.store import Cart, Order
from app.seed import SeedResult
from tests.api.test_store import ADMIN, CART, add, apply, eur
from tests.conftest import GraphQLClient

MONEY = "{ amount currency }"
FIGURES = f"period {{ name }} subtotal {MONEY} discount {MONEY} total {MONEY} dueOnNextInvoice {MONEY}"
CHECKOUT = f"""
mutation($key: String!, $expected: Decimal) {{
  checkout(idempotencyKey: $key, expectedTotal: $expected) {{
    __typename
    ... on Error {{ code message field }}
    ... on TotalChangedError {{ seen {{ {FIGURES} }} current {{ {FIGURES} }} }}
    ... on CheckoutSuccess {{ order {{ total {MONEY} period {{ name }} }} }}
  }}
}}
"""
LAST_SECONDS_OF_NOVEMBER = dt.datetime(2026, 11, 30, 23, 59, 55, tzinfo=dt.UTC)
FIRST_SECONDS_OF_DECEMBER = dt.datetime(2026, 12, 1, 0, 0, 5, tzinfo=dt.UTC)


async def checkout(gql: GraphQLClient, key: str, expected: str | None = None) -> dict[str, Any]:
    body = await gql.post(CHECKOUT, {"key": key, "expected": expected}, as_=ADMIN)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["checkout"]
    return result


async def summary(gql: GraphQLClient) -> dict[str, Any]:
    body = await gql.post(CART, as_=ADMIN)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["cart"]["summary"]
    return result


async def test_checkout_refuses_a_total_that_changed_when_the_period_turned_and_shows_the_new_figures(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    clock.set(LAST_SECONDS_OF_NOVEMBER)
    await add(gql, "credits-5000", 2)
    shown = await summary(gql)
    assert (shown["period"]["name"], shown["total"]) == ("2026-11", eur("6.60"))

    clock.set(FIRST_SECONDS_OF_DECEMBER)
    refused = await checkout(gql, "turn")

    assert (refused["__typename"], refused["code"]) == ("TotalChangedError", "TOTAL_CHANGED")
    assert (refused["seen"]["period"]["name"], refused["seen"]["total"]) == ("2026-11", eur("6.60"))
    assert (refused["current"]["period"]["name"], refused["current"]["total"]) == ("2026-12", eur("198.00"))
    assert refused["current"]["dueOnNextInvoice"] == eur("198.00")
    assert "198.00 EUR" in refused["message"]
    assert await Order.all().count() == 0
    assert await Cart.filter(status="OPEN").count() == 1

    # The new figures were shown with the refusal: confirming again (same key: nothing was bought)
    # charges them.
    accepted = await checkout(gql, "turn")
    assert accepted["__typename"] == "CheckoutSuccess", accepted
    assert (accepted["order"]["period"]["name"], accepted["order"]["total"]) == ("2026-12", eur("198.00"))


async def test_checkout_refuses_a_total_changed_by_a_day_passing(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await add(gql, "credits-5000", 2)  # 2026-11-23: 8 of 30 days, 52.80
    assert (await summary(gql))["total"] == eur("52.80")

    clock.advance(dt.timedelta(days=1))
    refused = await checkout(gql, "next-day")

    assert refused["code"] == "TOTAL_CHANGED"
    assert (refused["seen"]["total"], refused["current"]["total"]) == (eur("52.80"), eur("46.20"))


async def test_checkout_confirms_the_figures_the_cart_query_showed_last(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await add(gql, "credits-5000", 2)
    clock.advance(dt.timedelta(days=1))
    assert (await summary(gql))["total"] == eur("46.20")  # the admin looks again before confirming

    accepted = await checkout(gql, "looked-again")

    assert accepted["order"]["total"] == eur("46.20")


async def test_coupon_withdrawn_between_the_summary_and_the_confirmation_is_not_a_total_change(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    # What changed is the coupon's own condition: its error, not TOTAL_CHANGED.
    await add(gql, "users-1")
    await apply(gql, "FIXED5")
    await Coupon.filter(code="FIXED5").update(is_active=False)

    assert (await checkout(gql, "withdrawn"))["code"] == "COUPON_NOT_FOUND"


async def test_checkout_with_an_expected_total_refuses_any_other_total(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "credits-5000", 2)

    refused = await checkout(gql, "expected", expected="50.00")
    accepted = await checkout(gql, "expected", expected="52.80")

    assert refused["code"] == "TOTAL_CHANGED"
    assert refused["current"]["total"] == eur("52.80")
    assert accepted["__typename"] == "CheckoutSuccess"
    assert accepted["order"]["total"] == eur("52.80")


async def test_an_expected_total_that_is_not_an_amount_is_invalid_input(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "credits-5000", 2)

    for expected in ("sNaN", "NaN", "Infinity", "1e400", "9" * 5000):
        refused = await checkout(gql, "not-an-amount", expected=expected)
        assert (refused["__typename"], refused["field"]) == ("InvalidInputError", "expectedTotal"), expected
        assert len(refused["message"]) < 100
    assert await Order.all().count() == 0
