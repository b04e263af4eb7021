"""One runaway caller cannot starve the others: a token bucket per key, user and address (issue 6)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from app.clock import FrozenClock
from app.rate_limit import caller_of
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import client_for

QUERY = {"query": "query Me { viewer { kind } }"}


def limited_client(settings: Settings, clock: FrozenClock, **changes: Any) -> Any:
    return client_for(settings, clock, rate_limit_per_second=5, rate_limit_burst=3, **changes)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_over_its_burst_gets_429_with_retry_after(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    acme, nova = demo.connector_keys["acme"], demo.connector_keys["nova"]
    async with limited_client(settings, clock) as client:
        burst = [await client.post("/graphql", json=QUERY, headers=bearer(acme)) for _ in range(3)]
        refused = await client.post("/graphql", json=QUERY, headers=bearer(acme))
        other_key = await client.post("/graphql", json=QUERY, headers=bearer(nova))
        health = await client.get("/healthz")
        await asyncio.sleep(0.3)  # 5 per second: a token is back after 0.2 s
        refilled = await client.post("/graphql", json=QUERY, headers=bearer(acme))

    assert [response.status_code for response in burst] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["errors"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1}
    assert other_key.status_code == 200
    assert health.status_code == 200
    assert refilled.status_code == 200


async def test_users_are_limited_one_by_one(
    settings: Settings, clock: FrozenClock, demo: SeedResult, gql: Any
) -> None:
    admin = bearer(await gql.token_for("admin@acme.test"))
    member = bearer(await gql.token_for("member@acme.test"))
    async with limited_client(settings, clock) as client:
        for _ in range(3):
            await client.post("/graphql", json=QUERY, headers=admin)
        admin_again = await client.post("/graphql", json=QUERY, headers=admin)
        member_first = await client.post("/graphql", json=QUERY, headers=member)

    assert admin_again.status_code == 429
    assert member_first.status_code == 200


def test_callers_are_named_without_verifying_anything() -> None:
    def scope(authorization: str | None) -> dict[str, Any]:
        headers = [(b"authorization", authorization.encode())] if authorization else []
        return {"type": "http", "headers": headers, "client": ("203.0.113.9", 5000)}

    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl"  # {"sub": "user-42"}
    assert caller_of(scope("Bearer tg_ab12cd34_secret")) == "key:ab12cd34"
    assert caller_of(scope(f"Bearer {token}")) == "user:user-42"
    assert caller_of(scope("Bearer not-a-token")) == "ip:203.0.113.9"
    assert caller_of(scope(None)) == "ip:203.0.113.9"


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_instances_share_one_budget_through_redis(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    key = bearer(demo.connector_keys["acme"])
    redis_url = os.environ["TOLLGATE_REDIS_URL"]
    async with (
        limited_client(settings, clock, redis_url=redis_url) as first,
        limited_client(settings, clock, redis_url=redis_url) as second,
    ):
        answers = [
            (await (first if index % 2 else second).post("/graphql", json=QUERY, headers=key)).status_code
            for index in range(4)
        ]

    assert answers == [200, 200, 200, 429]
