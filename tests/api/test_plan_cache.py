"""The plan cache is never looser than the truth and shows every change at once (app.services.plan_cache)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.billing import AddOnSubscription
from app.resolvers.ids import global_id
from app.seed import SeedResult
from app.services.periods import BillingPeriod
from app.services.plan_cache import valid_until
from app.settings import Settings
from tests.api.test_cancellation import CANCEL, MY_PLAN, add_on_id, cancel, my_plan, undo
from tests.api.test_checkout import checkout
from tests.api.test_integrations import NOVA, configure
from tests.api.test_store import add
from tests.conftest import GraphQLClient, count_queries, instances_sharing_redis, post_to

QUOTA = "query Quota { quota(process: PRODUCT_SYNC) { creditsLimit } }"


async def credits_limit(gql: GraphQLClient, key: str) -> int:
    limit: int = (await gql.post(QUOTA, key=key))["data"]["quota"]["creditsLimit"]
    return limit


async def test_a_purchase_shows_in_the_quota_at_once(gql: GraphQLClient, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    assert await credits_limit(gql, key) == 4000  # now cached

    await add(gql, "credits-1000")
    assert (await checkout(gql, "more"))["__typename"] == "CheckoutSuccess"

    assert await credits_limit(gql, key) == 5000


async def test_an_add_on_that_ends_leaves_the_quota_at_its_end_without_any_write(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    ends_at = dt.datetime.fromisoformat((await cancel(gql, await add_on_id("credits-1000")))["endsAt"])
    clock.set(ends_at - dt.timedelta(seconds=1))
    assert await credits_limit(gql, key) == 4000  # cached, one second before the end

    clock.set(ends_at)

    assert await credits_limit(gql, key) == 3000


def status_of(plan: dict[str, Any], code: str) -> str:
    status: str = next(a["status"] for a in plan["activeAddOns"] if a["addOn"]["code"] == code)
    return status


async def test_my_plan_reads_the_cache_and_shows_a_cancellation_and_its_undoing_at_once(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await my_plan(gql)  # now cached
    with count_queries() as queries:
        plan = await my_plan(gql)
    assert not [s for s in queries.statements if "plan_subscription" in s or "addon_subscription" in s]
    assert status_of(plan, "credits-1000") == "ACTIVE"

    add_on = await add_on_id("credits-1000")
    await cancel(gql, add_on)
    assert status_of(await my_plan(gql), "credits-1000") == "CANCELLING"

    await undo(gql, add_on)
    assert status_of(await my_plan(gql), "credits-1000") == "ACTIVE"


async def test_my_plan_shows_an_integration_configured_at_once(gql: GraphQLClient, demo: SeedResult) -> None:
    query = "{ myPlan { ... on MyPlan { activeAddOns { addOn { code } configurationStatus } } } }"

    async def status() -> str:
        add_ons = (await gql.post(query, as_=NOVA))["data"]["myPlan"]["activeAddOns"]
        found: str = next(a for a in add_ons if a["addOn"]["code"] == "integration-mercado-livre")[
            "configurationStatus"
        ]
        return found

    assert await status() == "PENDING"  # now cached
    mercado_livre = await add_on_id("integration-mercado-livre", tenant="nova")
    await configure(gql, mercado_livre, {"api_token": "t0k3n", "shop_url": "https://loja.nova.example"})

    assert await status() == "CONFIGURED"


def test_an_entry_lives_until_the_first_end_the_period_or_its_ttl() -> None:
    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    period = BillingPeriod(dt.date(2026, 11, 10), dt.date(2026, 12, 10))

    class Plan:
        def __init__(self, *ends: dt.datetime | None) -> None:
            self.period = period
            self.add_ons = [type("AddOn", (), {"ends_at": end})() for end in ends]

    ttl = dt.timedelta(days=30)
    assert valid_until(None, now, ttl) == now + ttl
    assert valid_until(Plan(None), now, ttl) == dt.datetime(2026, 12, 10, tzinfo=dt.UTC)  # type: ignore[arg-type]
    soon = now + dt.timedelta(hours=2)
    assert valid_until(Plan(None, soon, now + dt.timedelta(days=3)), now, ttl) == soon  # type: ignore[arg-type]
    assert valid_until(Plan(), now, dt.timedelta(seconds=30)) == now + dt.timedelta(seconds=30)  # type: ignore[arg-type]


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_a_purchase_on_one_instance_clears_the_cache_of_another_through_redis(
    settings: Settings, clock: FrozenClock, demo: SeedResult, gql: GraphQLClient
) -> None:
    key = {"Authorization": f"Bearer {demo.connector_keys['acme']}"}
    admin = {"Authorization": f"Bearer {await gql.token_for('admin@acme.test')}"}
    async with instances_sharing_redis(settings, clock) as (first, second):
        assert (await post_to(second, QUOTA, {}, key))["data"]["quota"]["creditsLimit"] == 4000  # cached
        add_mutation = 'mutation { addToCart(addOnCode: "credits-1000") { __typename } }'
        await post_to(first, add_mutation, {}, admin)
        bought = await post_to(first, 'mutation { checkout(idempotencyKey: "x") { __typename } }', {}, admin)
        assert bought["data"]["checkout"]["__typename"] == "CheckoutSuccess"

        for _ in range(100):  # the invalidation crosses Redis asynchronously
            limit = (await post_to(second, QUOTA, {}, key))["data"]["quota"]["creditsLimit"]
            if limit == 5000:
                break
            await asyncio.sleep(0.02)
        assert limit == 5000

        # A cancellation too (myPlan reads the same cache).
        async def status_on_second() -> str:
            add_ons = (await post_to(second, MY_PLAN, {}, admin))["data"]["myPlan"]["activeAddOns"]
            found: str = next(a["status"] for a in add_ons if a["id"] == original)
            return found

        bought_add_ons = AddOnSubscription.filter(add_on__code="credits-1000").order_by("contracted_at")
        original = global_id("ActiveAddOn", (await bought_add_ons)[0].id)
        assert await status_on_second() == "ACTIVE"
        assert "errors" not in await post_to(first, CANCEL, {"id": original}, admin)
        for _ in range(100):
            status = await status_on_second()
            if status == "CANCELLING":
                break
            await asyncio.sleep(0.02)
        assert status == "CANCELLING"
