"""A coupon honours its own terms, and says the same thing in the cart summary, in the order and in the
invoice preview (issue 11): one split of its amount between the lines, in cart position order.

acme (EUR, anchor 1) on 2026-11-23, 8 of 30 days left: users-1 x2 is 2.61 due, users-5 5.31, the
one-off Start Pack 490.00.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.models.coupons import Coupon
from app.seed import SeedResult
from tests.api.test_checkout import checkout
from tests.api.test_invoice_preview import preview
from tests.api.test_store import ADMIN, CART, add, apply, eur
from tests.conftest import GraphQLClient

# The Start Pack is sold per ERP: acme buys it here as a bling environment (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("acme_runs_bling")


def cart_discounts(cart: dict[str, Any]) -> dict[str, str]:
    return {line["addOnCode"]: line["discount"]["amount"] for line in cart["lines"]}


def order_discounts(order: dict[str, Any]) -> dict[str, str]:
    return {line["addOnCode"]: line["discount"]["amount"] for line in order["lines"]}


def invoice_discounts(invoice: dict[str, Any], coupon: str, names: dict[str, str]) -> dict[str, str]:
    """The invoice's discount lines of ``coupon``, by add-on code (they are described by name)."""
    found = dict.fromkeys(names.values(), "0.00")
    for line in invoice["lines"]:
        if line["kind"] == "DISCOUNT" and line["code"] == coupon:
            name = line["description"].removeprefix(f"Coupon {coupon}: ")
            found[names[name]] = line["amount"]["amount"].removeprefix("-")
    return found


async def test_a_coupon_for_the_monthly_bill_takes_nothing_off_a_one_off_service(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1", 2)
    await add(gql, "start-pack")
    applied = (await apply(gql, "WELCOME10"))["cart"]  # 10% off monthly add-ons for 3 months

    order = (await checkout(gql, "monthly-coupon"))["order"]
    invoice = await preview(gql, "2026-11")

    assert cart_discounts(applied) == {"users-1": "0.26", "start-pack": "0.00"}
    assert order_discounts(order) == {"users-1": "0.26", "start-pack": "0.00"}
    names = {"1 extra user": "users-1", "Start Pack": "start-pack"}
    assert invoice_discounts(invoice, "WELCOME10", names) == {"users-1": "0.26", "start-pack": "0.00"}
    assert order["discount"] == invoice["discount"] == eur("0.26")


async def test_a_coupon_for_the_monthly_bill_does_not_apply_to_a_cart_of_one_off_services(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "start-pack")

    refused = await apply(gql, "WELCOME10")

    assert (refused["__typename"], refused["code"]) == ("CouponNotApplicableError", "COUPON_NOT_APPLICABLE")


async def test_a_coupon_naming_a_one_off_service_discounts_it_whatever_its_duration(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await Coupon.create(
        code="PACK10",
        kind="PERCENT",
        percent_off=10,
        duration="FOREVER",
        applies_to_add_on_codes=["start-pack"],
    )
    await add(gql, "start-pack")

    assert cart_discounts((await apply(gql, "PACK10"))["cart"]) == {"start-pack": "49.00"}


async def test_a_fixed_coupon_is_split_alike_in_the_summary_the_order_and_the_invoice(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    # 493.00 off, once: spent in cart order, 2.61 + 490.00 + 0.39 of the 5.31 of users-5.
    await Coupon.create(code="BIG", kind="FIXED", amounts_off={"EUR": "493.00"}, duration="ONCE")
    await add(gql, "users-1", 2)
    await add(gql, "start-pack")
    await add(gql, "users-5")
    await apply(gql, "BIG")
    summary = (await gql.post(CART, as_=ADMIN))["data"]["cart"]

    order = (await checkout(gql, "split"))["order"]
    invoice = await preview(gql, "2026-11")

    expected = {"users-1": "2.61", "start-pack": "490.00", "users-5": "0.39"}
    assert cart_discounts(summary) == expected
    assert order_discounts(order) == expected
    names = {"1 extra user": "users-1", "Start Pack": "start-pack", "5 extra users": "users-5"}
    assert invoice_discounts(invoice, "BIG", names) == expected
    assert order["discount"] == invoice["discount"] == eur("493.00")
