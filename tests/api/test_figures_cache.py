"""quota's live figures are cached, and every report or start shows at once (app.services.figures_cache)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

import pytest

from app.clock import FrozenClock
from app.models.metering import ProcessCounter
from app.models.tenancy import Tenant
from app.seed import SeedResult
from app.services.figures_cache import Figures, FiguresCache
from app.settings import Settings
from tests.api.test_process_starts import start
from tests.api.test_quota import QUOTA, quota
from tests.api.test_usage_reports import REPORT_USAGE, report, report_input
from tests.conftest import GraphQLClient, count_queries, instances_sharing_redis, post_to


async def test_a_report_and_a_start_show_in_the_next_quota_answer(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    before = await quota(gql, key)  # now cached
    with count_queries() as queries:
        assert await quota(gql, key) == before
    assert not [s for s in queries.statements if "tenant_usage" in s or "process_counter" in s]

    await report(gql, key, clock.now())
    after_report = await quota(gql, key)
    assert (before["creditsUsed"], after_report["creditsUsed"]) == (0, 2748)

    await start(gql, key, "figures-1")
    assert (await quota(gql, key))["processesUsed"] == after_report["processesUsed"] + 1


async def test_a_read_that_raced_a_change_is_not_kept(demo: SeedResult) -> None:
    tenant = await Tenant.get(slug="acme")
    cache = FiguresCache()
    assert await cache.figures(tenant.id, "2026-11") == Figures(0, 0)
    cache.invalidate(tenant.id)

    reading = asyncio.ensure_future(cache.figures(tenant.id, "2026-11"))
    await asyncio.sleep(0)  # the read is on its way to the database...
    await ProcessCounter.create(tenant=tenant, period="2026-11", used=7)
    cache.invalidate(tenant.id)  # ...when a change commits
    await reading

    assert await cache.figures(tenant.id, "2026-11") == Figures(0, 7)


async def test_an_entry_lives_ttl_seconds_at_most_and_is_per_period(demo: SeedResult) -> None:
    tenant = await Tenant.get(slug="acme")
    cache = FiguresCache(ttl=0.2)
    assert await cache.figures(tenant.id, "2026-11") == Figures(0, 0)
    await ProcessCounter.create(tenant=tenant, period="2026-11", used=3)  # behind the cache's back
    await ProcessCounter.create(tenant=tenant, period="2026-12", used=1)

    assert await cache.figures(tenant.id, "2026-11") == Figures(0, 0)  # cached
    assert await cache.figures(tenant.id, "2026-12") == Figures(0, 1)  # another period
    await asyncio.sleep(0.25)
    assert await cache.figures(tenant.id, "2026-11") == Figures(0, 3)


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_a_report_on_one_instance_shows_in_the_quota_of_another_through_redis(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    key = {"Authorization": f"Bearer {demo.connector_keys['acme']}"}
    async with instances_sharing_redis(settings, clock) as (first, second):

        async def credits_on_second() -> int:
            answer = await post_to(second, QUOTA, {"process": "PRODUCT_SYNC"}, key)
            used: int = answer["data"]["quota"]["creditsUsed"]
            return used

        assert await credits_on_second() == 0  # cached on the second instance
        counts = report_input(clock.now() - dt.timedelta(seconds=1))
        reported = await post_to(first, REPORT_USAGE, {"input": counts}, key)
        assert reported["data"]["reportUsage"]["applied"] is True

        for _ in range(100):  # the invalidation crosses Redis asynchronously
            used = await credits_on_second()
            if used == 2748:
                break
            await asyncio.sleep(0.02)
    assert used == 2748
