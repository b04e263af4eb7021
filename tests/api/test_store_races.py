"""The store's money under concurrency (issue 11), through two gateway instances sharing PostgreSQL and
Redis where ``TOLLGATE_REDIS_URL`` is set, through one instance otherwise (SQLite serialises writers;
PostgreSQL is where these race): an add-on's maximum holds when several admins of one tenant check out
at once, and coupon or cart edits racing a checkout end as one order of events or the other."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.billing import AddOnSubscription
from app.models.coupons import Coupon
from app.models.enums import Role
from app.models.store import Cart, CouponRedemption, Order, OrderLine
from app.models.tenancy import Tenant, User
from app.seed import SeedResult
from app.settings import Settings
from tests.api.test_checkout import CHECKOUT
from tests.api.test_store import ADD, ADMIN, APPLY_COUPON, REMOVE, REMOVE_COUPON, UPDATE
from tests.conftest import GraphQLClient, instances_sharing_redis, post_to

# The Start Pack is sold per ERP: acme buys it here as a bling environment (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("acme_runs_bling")

Post = Callable[[int, str, dict[str, Any], str], Awaitable[dict[str, Any]]]


@asynccontextmanager
async def gateways(
    settings: Settings, clock: FrozenClock, gql: GraphQLClient, app: Any
) -> AsyncIterator[Post]:
    """``post(n, document, variables, as_)``: request ``n`` goes to instance ``n % 2`` (one instance
    without Redis). The answer is the ``data`` of the body, which must hold no GraphQL error."""

    async def answer(app: Any, document: str, variables: dict[str, Any], as_: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {await gql.token_for(as_)}"}
        body = await post_to(app, document, variables, headers)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    if os.environ.get("TOLLGATE_REDIS_URL"):
        async with instances_sharing_redis(settings, clock) as apps:

            async def post(n: int, document: str, variables: dict[str, Any], as_: str) -> dict[str, Any]:
                return await answer(apps[n % 2], document, variables, as_)

            yield post
    else:

        async def post(n: int, document: str, variables: dict[str, Any], as_: str) -> dict[str, Any]:
            return await answer(app, document, variables, as_)

        yield post


ADMINS = ["admin@acme.test", *(f"admin{n}@acme.test" for n in range(2, 6))]


async def five_admins_with_it_in_their_carts(post: Post, gql: GraphQLClient, code: str) -> None:
    acme = await Tenant.get(slug="acme")
    for email in ADMINS[1:]:
        await User.create(tenant=acme, email=email, name=email, role=Role.ADMIN)
    for n, admin in enumerate(ADMINS):
        await gql.token_for(admin)
        added = await post(n, ADD, {"code": code}, admin)
        assert added["addToCart"]["__typename"] == "AddToCartSuccess", added


@pytest.mark.parametrize(
    ("code", "monthly"),
    [
        pytest.param("report-abc-curve", True, id="monthly-add-on-at-most-1"),
        pytest.param("start-pack", False, id="one-off-service-at-most-1"),
    ],
)
async def test_five_admins_checking_out_an_add_on_of_at_most_one_at_once_buy_it_once(
    settings: Settings,
    clock: FrozenClock,
    demo: SeedResult,
    gql: GraphQLClient,
    app: Any,
    code: str,
    monthly: bool,
) -> None:
    async with gateways(settings, clock, gql, app) as post:
        await five_admins_with_it_in_their_carts(post, gql, code)

        answers = await asyncio.gather(
            *(post(n, CHECKOUT, {"key": f"max-{n}"}, admin) for n, admin in enumerate(ADMINS))
        )

    results = [answer["checkout"] for answer in answers]
    assert Counter(result["__typename"] for result in results) == {
        "CheckoutSuccess": 1,
        "QuantityAboveMaximumError": 4,
    }, results
    assert {result["code"] for result in results if "code" in result} == {"QUANTITY_ABOVE_MAXIMUM"}
    assert await OrderLine.filter(add_on_code=code).count() == 1
    assert await Order.all().count() == 1
    if monthly:
        assert await AddOnSubscription.filter(add_on__code=code).count() == 1
    # The losers' carts are still open with the add-on: nothing of theirs was written.
    assert await Cart.filter(status="OPEN", tenant__slug="acme").count() == 4


async def test_admins_checking_out_a_pack_at_once_buy_no_more_than_its_maximum(
    settings: Settings, clock: FrozenClock, demo: SeedResult, gql: GraphQLClient, app: Any
) -> None:
    # storage-10gb: at most 10, acme has 1; five admins want 3 each: three orders fit (1 + 9 = 10).
    async with gateways(settings, clock, gql, app) as post:
        acme = await Tenant.get(slug="acme")
        for email in ADMINS[1:]:
            await User.create(tenant=acme, email=email, name=email, role=Role.ADMIN)
        for n, admin in enumerate(ADMINS):
            added = await post(n, ADD, {"code": "storage-10gb", "quantity": 3}, admin)
            assert added["addToCart"]["__typename"] == "AddToCartSuccess", added

        answers = await asyncio.gather(
            *(post(n, CHECKOUT, {"key": f"pack-{n}"}, admin) for n, admin in enumerate(ADMINS))
        )

    names = Counter(answer["checkout"]["__typename"] for answer in answers)
    assert names == {"CheckoutSuccess": 3, "QuantityAboveMaximumError": 2}, answers
    units = sum(s.quantity for s in await AddOnSubscription.filter(add_on__code="storage-10gb"))
    assert units == 10


PAIRS = 100  # of each kind: applyCoupon against checkout, removeCoupon against checkout


async def after(delay: float, call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    await asyncio.sleep(delay)
    return await call


async def test_coupon_applied_or_removed_while_a_checkout_runs_ends_as_one_order_of_events(
    settings: Settings, clock: FrozenClock, demo: SeedResult, gql: GraphQLClient, app: Any
) -> None:
    """For each pair, whatever the timing: the coupon is on the order if and only if its application
    was answered as done (or its removal as not done), and a one-use coupon is redeemed if and only if
    it is on an order."""
    rng = random.Random(11)
    await Coupon.bulk_create(
        [Coupon(code=f"RACE{n}", kind="PERCENT", percent_off=10, max_redemptions=1) for n in range(2 * PAIRS)]
    )
    outcomes: Counter[str] = Counter()
    async with gateways(settings, clock, gql, app) as post:
        for n in range(2 * PAIRS):
            code, key, removing = f"RACE{n}", f"coupon-race-{n}", n % 2 == 1
            added = await post(n, ADD, {"code": "storage-500mb"}, ADMIN)
            assert added["addToCart"]["__typename"] == "AddToCartSuccess", added
            if removing:
                applied = await post(n, APPLY_COUPON, {"code": code}, ADMIN)
                assert applied["applyCoupon"]["__typename"] == "ApplyCouponSuccess", applied
            edit = (
                post(n + 1, REMOVE_COUPON, {}, ADMIN)
                if removing
                else post(n + 1, APPLY_COUPON, {"code": code}, ADMIN)
            )
            bought, edited = await asyncio.gather(
                # The edit does more work before it writes: the checkout's delays reach further.
                after(rng.uniform(0, 0.03), post(n, CHECKOUT, {"key": key}, ADMIN)),
                after(rng.uniform(0, 0.01), edit),
            )

            result = bought["checkout"]
            answer = edited["removeCoupon" if removing else "applyCoupon"]
            assert result["__typename"] == "CheckoutSuccess", (n, result)
            if answer["__typename"] in ("ApplyCouponSuccess", "RemoveCouponSuccess"):
                edit_first = True
                # What the answer showed is what the cart held when the checkout confirmed it.
                shown = answer["cart"]["coupon"]
                assert (shown is None) if removing else (shown["code"] == code), (n, answer)
                assert answer["cart"]["summary"]["discount"] == result["order"]["discount"], (
                    n,
                    answer,
                    result,
                )
            else:
                edit_first = False
                expected = {"CART_CHECKED_OUT"} if removing else {"CART_CHECKED_OUT", "COUPON_NOT_APPLICABLE"}
                assert answer["code"] in expected, (n, answer)
            coupon_on_order = edit_first != removing  # applied first, or removed after
            outcomes[f"{'remove' if removing else 'apply'}-{'first' if edit_first else 'after'}"] += 1
            assert result["order"]["couponCode"] == (code if coupon_on_order else None), (n, answer, result)
            redeemed = (await Coupon.get(code=code)).times_redeemed
            assert redeemed == (1 if coupon_on_order else 0), (n, answer, result)
            assert await CouponRedemption.filter(coupon__code=code).count() == redeemed
    print(dict(outcomes))


EDIT_PAIRS = 50  # of each kind: updateCartItem against checkout, removeFromCart against checkout


async def test_cart_line_edits_while_a_checkout_runs_end_as_one_order_of_events(
    settings: Settings, clock: FrozenClock, demo: SeedResult, gql: GraphQLClient, app: Any
) -> None:
    """An edit answered as done is in the order, at the total the answer showed; an edit answered as
    not done (the line is no longer in an open cart) is not."""
    rng = random.Random(12)
    outcomes: Counter[str] = Counter()
    async with gateways(settings, clock, gql, app) as post:
        for n in range(2 * EDIT_PAIRS):
            key, removing = f"edit-race-{n}", n % 2 == 1
            for code in ("storage-500mb", "integration-shopify"):
                added = await post(n, ADD, {"code": code}, ADMIN)
                assert added["addToCart"]["__typename"] == "AddToCartSuccess", added
            edit = (
                post(n + 1, REMOVE, {"code": "integration-shopify"}, ADMIN)
                if removing
                else post(n + 1, UPDATE, {"code": "storage-500mb", "quantity": 3}, ADMIN)
            )
            bought, edited = await asyncio.gather(
                # The edit does more work before it writes: the checkout's delays reach further.
                after(rng.uniform(0, 0.03), post(n, CHECKOUT, {"key": key}, ADMIN)),
                after(rng.uniform(0, 0.01), edit),
            )

            result = bought["checkout"]
            answer = edited["removeFromCart" if removing else "updateCartItem"]
            assert result["__typename"] == "CheckoutSuccess", (n, result)
            lines = {line["addOnCode"]: line["quantity"] for line in result["order"]["lines"]}
            if answer["__typename"] in ("UpdateCartItemSuccess", "RemoveFromCartSuccess"):
                assert answer["cart"]["summary"]["total"] == result["order"]["total"], (n, answer, result)
                expected = (
                    {"storage-500mb": 1} if removing else {"storage-500mb": 3, "integration-shopify": 1}
                )
            else:
                # Confirmed before the edit read the cart (no such line in an open cart), or while it
                # was writing (the cart it read was confirmed meanwhile).
                assert answer["code"] in {"NOT_FOUND", "CART_CHECKED_OUT"}, (n, answer)
                expected = {"storage-500mb": 1, "integration-shopify": 1}
            outcomes[f"{'remove' if removing else 'update'}-{answer['__typename']}"] += 1
            assert lines == expected, (n, answer, result)
            # Nothing was left behind in an open cart.
            assert not await Cart.filter(status="OPEN", lines__id__isnull=False).exists(), n
    print(dict(outcomes))
