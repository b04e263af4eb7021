"""The hot path's plan cache is never looser than the truth (app.services.plan_cache)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from typing import Any

import httpx
import pytest

from app.clock import FrozenClock
from app.main import create_app
from app.seed import SeedResult
from app.services.periods import BillingPeriod
from app.services.plan_cache import valid_until
from app.settings import Settings
from tests.api.test_cancellation import add_on_id, cancel
from tests.api.test_checkout import checkout
from tests.api.test_store import add
from tests.conftest import GraphQLClient

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
    shared = settings.model_copy(
        update={
            "redis_url": os.environ["TOLLGATE_REDIS_URL"],
            "redis_channel_prefix": f"t-{uuid.uuid4().hex}:",
        }
    )
    key = {"Authorization": f"Bearer {demo.connector_keys['acme']}"}
    admin = {"Authorization": f"Bearer {await gql.token_for('admin@acme.test')}"}
    first = create_app(shared, clock=clock, manage_orm=False, run_background_tasks=False)
    second = create_app(shared, clock=clock, manage_orm=False, run_background_tasks=False)

    async def post(app: Any, query: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return (
                await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
            ).json()

    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        assert (await post(second, QUOTA, {}, key))["data"]["quota"]["creditsLimit"] == 4000  # cached on 2nd
        add_mutation = 'mutation { addToCart(addOnCode: "credits-1000") { __typename } }'
        await post(first, add_mutation, {}, admin)
        bought = await post(first, 'mutation { checkout(idempotencyKey: "x") { __typename } }', {}, admin)
        assert bought["data"]["checkout"]["__typename"] == "CheckoutSuccess"

        for _ in range(100):  # the invalidation crosses Redis asynchronously
            limit = (await post(second, QUOTA, {}, key))["data"]["quota"]["creditsLimit"]
            if limit == 5000:
                break
            await asyncio.sleep(0.02)
    assert limit == 5000
