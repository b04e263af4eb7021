"""Concurrent checkouts (run on SQLite and on PostgreSQL): a one-use coupon is redeemed once, and one
idempotency key yields one order however many requests race with it."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from app.models.audit import AuditEntry
from app.models.billing import AddOnSubscription
from app.models.catalog import AddOn
from app.models.coupons import Coupon
from app.models.enums import Role
from app.models.notifications import OutboxEmail
from app.models.store import Cart, CartLine, CouponRedemption, Order, OrderLine
from app.models.tenancy import Tenant, User
from app.seed import SeedResult
from tests.api.test_checkout import CHECKOUT, checkout
from tests.api.test_store import add, apply
from tests.conftest import GraphQLClient

# The Start Pack is sold per ERP: acme buys it here as a bling environment (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("acme_runs_bling")

RACERS = 8


async def test_one_use_coupon_checked_out_by_two_tenants_at_once_succeeds_once(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    for admin in ("admin@acme.test", "admin@nova.test"):
        await add(gql, "users-1", as_=admin)
        assert (await apply(gql, "ONEUSE", as_=admin))["__typename"] == "ApplyCouponSuccess"

    results = await asyncio.gather(
        checkout(gql, "race-acme", as_="admin@acme.test"), checkout(gql, "race-nova", as_="admin@nova.test")
    )

    assert sorted(result["__typename"] for result in results) == ["CheckoutSuccess", "CouponExhaustedError"]
    assert (await Coupon.get(code="ONEUSE")).times_redeemed == 1
    assert await CouponRedemption.all().count() == 1
    # The loser wrote nothing: one order, one new subscription, its cart still open with the coupon.
    assert await Order.all().count() == 1
    assert await AddOnSubscription.filter(add_on__code="users-1").count() == 1
    assert await Cart.filter(status="OPEN", coupon__code="ONEUSE").count() == 1
    assert await AuditEntry.filter(action="checkout").count() == 1
    assert await OutboxEmail.all().count() == 1  # the winner's one admin; nothing from the loser


async def test_concurrent_checkouts_with_one_key_make_one_order(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1", 2)
    await add(gql, "start-pack")
    await apply(gql, "WELCOME10")
    await gql.token_for("admin@acme.test")

    results = await asyncio.gather(*(checkout(gql, "one-key") for _ in range(RACERS)))

    assert Counter(result["__typename"] for result in results) == {"CheckoutSuccess": RACERS}
    assert len({result["order"]["id"] for result in results}) == 1
    assert [result["replayed"] for result in results].count(False) == 1
    assert await Order.all().count() == 1
    assert await OrderLine.all().count() == 2
    assert await AddOnSubscription.filter(add_on__code="users-1").count() == 1
    assert await CouponRedemption.all().count() == 1
    assert (await Coupon.get(code="WELCOME10")).times_redeemed == 1
    assert await OutboxEmail.all().count() == 1  # acme has one admin
    assert await AuditEntry.filter(action="checkout").count() == 1


async def test_concurrent_checkouts_of_one_cart_with_different_keys_make_one_order(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1")
    await gql.token_for("admin@acme.test")

    bodies = await asyncio.gather(
        *(gql.post(CHECKOUT, {"key": f"key-{n}"}, as_="admin@acme.test") for n in range(RACERS))
    )

    names = Counter(body["data"]["checkout"]["__typename"] for body in bodies)
    assert names == {"CheckoutSuccess": 1, "CartEmptyError": RACERS - 1}
    assert await Order.all().count() == 1
    assert await AddOnSubscription.filter(add_on__code="users-1").count() == 1


async def test_two_admins_of_one_tenant_cannot_both_use_its_coupon_at_once(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    acme = await Tenant.get(slug="acme")
    await User.create(tenant=acme, email="owner@acme.test", name="Owner", role=Role.ADMIN)
    for admin in ("admin@acme.test", "owner@acme.test"):
        await add(gql, "users-5" if admin == "owner@acme.test" else "users-1", as_=admin)
        assert (await apply(gql, "WELCOME10", as_=admin))["__typename"] == "ApplyCouponSuccess"

    results = await asyncio.gather(
        checkout(gql, "admin", as_="admin@acme.test"), checkout(gql, "owner", as_="owner@acme.test")
    )

    assert sorted(result["__typename"] for result in results) == ["CheckoutSuccess", "CouponAlreadyUsedError"]
    assert await CouponRedemption.all().count() == 1
    assert (await Coupon.get(code="WELCOME10")).times_redeemed == 1
    assert await Order.all().count() == 1


async def test_concurrent_adds_never_pass_the_add_on_maximum(gql: GraphQLClient, demo: SeedResult) -> None:
    # storage-10gb: at most 10, and acme already has one, so the cart holds at most 9.
    await gql.token_for("admin@acme.test")
    await add(gql, "storage-500mb")  # the cart exists; the racers all merge into one new line

    results = await asyncio.gather(*(add(gql, "storage-10gb") for _ in range(12)))

    names = Counter(result["__typename"] for result in results)
    assert names == {"AddToCartSuccess": 9, "QuantityAboveMaximumError": 3}
    lines = await CartLine.filter(add_on__code="storage-10gb")
    assert [line.quantity for line in lines] == [9]


async def test_cart_edits_racing_a_checkout_are_bought_or_kept_never_lost(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await gql.token_for("admin@acme.test")
    users_1 = (await AddOn.get(code="users-1")).id
    for round_ in range(8):
        await add(gql, "storage-500mb")
        # A checkout and an edit of the same cart at once, in whichever order the database takes them.
        result, edit = await asyncio.gather(checkout(gql, f"edit-race-{round_}"), add(gql, "users-1"))
        assert result["__typename"] == "CheckoutSuccess", result
        assert edit["__typename"] == "AddToCartSuccess", edit

        bought = {
            line.add_on_id async for line in OrderLine.filter(order__idempotency_key=f"edit-race-{round_}")
        }
        kept = {line.add_on_id async for line in CartLine.filter(cart__status="OPEN")}
        assert users_1 in bought | kept  # the edit the admin was told succeeded is somewhere
        await CartLine.filter(cart__status="OPEN").delete()

    # Every line of every confirmed cart was bought in that cart's order.
    for line in await CartLine.filter(cart__status="CHECKED_OUT"):
        assert await OrderLine.filter(order__cart_id=line.cart_id, add_on_id=line.add_on_id).exists()
