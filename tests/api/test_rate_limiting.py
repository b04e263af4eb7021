"""One runaway caller cannot starve the others: a token bucket per key, user and address (issue 6)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from typing import Any

import pytest

from app.clock import FrozenClock
from app.edge.rate_limit import client_address
from app.models.tenancy import User
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import client_for

QUERY = {"query": "query Me { viewer { kind } }"}


def limited_client(settings: Settings, clock: FrozenClock, **changes: Any) -> Any:
    # Buckets of its own when TOLLGATE_REDIS_URL is set (tests running in parallel share the Redis).
    changes.setdefault("redis_channel_prefix", f"t-{uuid.uuid4().hex}:")
    # One token a second: a slow request on a loaded machine (a few hundred ms) refills nothing.
    return client_for(settings, clock, rate_limit_per_second=1, rate_limit_burst=3, **changes)


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
        await asyncio.sleep(1.2)  # 1 per second: a token is back after 1 s
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


def unsigned_token(subject: str) -> str:
    """A JWT-shaped token naming ``subject``, with a signature nobody made."""
    claims = base64.urlsafe_b64encode(json.dumps({"sub": subject, "tid": subject}).encode()).rstrip(b"=")
    return f"eyJhbGciOiJIUzI1NiJ9.{claims.decode()}.c2lnbmF0dXJl"


async def test_forged_keys_carrying_a_real_prefix_do_not_throttle_the_real_key(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    real = demo.connector_keys["acme"]
    forged = "_".join(real.split("_")[:2]) + "_" + "f" * 32  # the real prefix, a made-up secret
    async with limited_client(settings, clock) as client:
        flood = [
            (await client.post("/graphql", json=QUERY, headers=bearer(forged))).status_code for _ in range(6)
        ]
        genuine = [
            (await client.post("/graphql", json=QUERY, headers=bearer(real))).status_code for _ in range(3)
        ]

    assert flood[:3] == [200, 200, 200]  # answered UNAUTHENTICATED, charged to the sender's address
    assert flood[3:] == [429, 429, 429]
    assert genuine == [200, 200, 200]


async def test_rotating_forged_key_prefixes_does_not_escape_the_limit(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    async with limited_client(settings, clock) as client:
        answers = [
            (
                await client.post("/graphql", json=QUERY, headers=bearer(f"tg_{index:08x}_{'s' * 32}"))
            ).status_code
            for index in range(6)
        ]

    assert answers == [200, 200, 200, 429, 429, 429]


async def test_rotating_unsigned_token_subjects_does_not_escape_the_limit(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    async with limited_client(settings, clock) as client:
        answers = [
            (
                await client.post("/graphql", json=QUERY, headers=bearer(unsigned_token(str(uuid.uuid4()))))
            ).status_code
            for _ in range(6)
        ]

    assert answers == [200, 200, 200, 429, 429, 429]


async def test_a_forged_token_naming_a_real_user_does_not_throttle_that_user(
    settings: Settings, clock: FrozenClock, demo: SeedResult, gql: Any
) -> None:
    admin = await User.get(email="admin@acme.test")
    genuine = bearer(await gql.token_for("admin@acme.test"))
    forged = bearer(unsigned_token(str(admin.id)))
    async with limited_client(settings, clock) as client:
        for _ in range(5):
            await client.post("/graphql", json=QUERY, headers=forged)
        answers = [(await client.post("/graphql", json=QUERY, headers=genuine)).status_code for _ in range(3)]

    assert answers == [200, 200, 200]


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    def forwarded(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": address}

    async with limited_client(settings, clock) as client:  # no trusted proxy: the header means nothing
        untrusted = [
            (await client.post("/graphql", json=QUERY, headers=forwarded(f"198.51.100.{i}"))).status_code
            for i in range(5)
        ]
    # The test transport's peer is 127.0.0.1: trusted, with the proxies' own network.
    async with limited_client(settings, clock, trusted_proxies="127.0.0.1, 10.0.0.0/8") as client:
        spread = [
            (await client.post("/graphql", json=QUERY, headers=forwarded(f"198.51.100.{i}"))).status_code
            for i in range(5)
        ]
        # The client writes the left part: rotating it buys nothing, the right-most untrusted hop counts.
        spoofed = [
            (
                await client.post(
                    "/graphql", json=QUERY, headers=forwarded(f"203.0.113.{i}, 192.0.2.1, 10.1.2.3")
                )
            ).status_code
            for i in range(5)
        ]

    assert untrusted == [200, 200, 200, 429, 429]
    assert spread == [200] * 5
    assert spoofed == [200, 200, 200, 429, 429]


def test_the_client_address_is_the_right_most_untrusted_hop() -> None:
    proxies = Settings(trusted_proxies="10.0.0.0/8, 192.0.2.7, 2001:db8::/32").trusted_proxy_networks

    def address(peer: str, *forwarded: str) -> str:
        headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
        return client_address({"type": "http", "headers": headers, "client": (peer, 5000)}, proxies)

    assert address("203.0.113.9", "198.51.100.1") == "203.0.113.9"  # the peer is no proxy
    assert address("10.0.0.2", "198.51.100.1") == "198.51.100.1"
    assert address("10.0.0.2", "evil, 198.51.100.1, 192.0.2.7") == "198.51.100.1"
    assert address("10.0.0.2", "198.51.100.1, 10.9.9.9", "192.0.2.7") == "198.51.100.1"
    assert address("2001:db8::1", "2001:db9::5") == "2001:db9::5"
    assert address("10.0.0.2") == "10.0.0.2"  # a proxy that forwarded nothing
    assert address("10.0.0.2", "10.0.0.3") == "10.0.0.3"  # every hop trusted: the furthest one
    with pytest.raises(ValueError, match="TOLLGATE_TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/8, not-an-address")


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_instances_share_one_budget_through_redis(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    key = bearer(demo.connector_keys["acme"])
    redis_url = os.environ["TOLLGATE_REDIS_URL"]
    prefix = f"t-{uuid.uuid4().hex}:"  # one deployment: one namespace
    async with (
        limited_client(settings, clock, redis_url=redis_url, redis_channel_prefix=prefix) as first,
        limited_client(settings, clock, redis_url=redis_url, redis_channel_prefix=prefix) as second,
    ):
        answers = [
            (await (first if index % 2 else second).post("/graphql", json=QUERY, headers=key)).status_code
            for index in range(4)
        ]

    assert answers == [200, 200, 200, 429]
