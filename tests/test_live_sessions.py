"""Live sessions end with their credentials, and pay for what they ask (issue 11).

Real uvicorn servers on local ports, in the test's event loop and on its database; real WebSocket clients.
A session whose key is revoked, whose user is disabled or whose token expires is closed with 4403 and gets
nothing more: at once on gateways sharing Redis (the revocation is announced), within
``TOLLGATE_AUTH_CACHE_SECONDS`` without it (each session verifies its credential again that often).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.auth.principal import REVOKED_CHANNEL, announce_user_disabled
from app.auth.tokens import issue_user_token
from app.broadcast import broadcaster_from_settings
from app.clock import SystemClock
from app.main import create_app
from app.models.tenancy import ApiKey, User
from app.seed import SeedResult
from app.settings import Settings
from tests.live import PROTOCOLS, WAIT, serving, subscriber

SUBSCRIPTION = "subscription { limitAlerts { kind } }"
REDIS_URL = os.environ.get("TOLLGATE_REDIS_URL")
WITH_AND_WITHOUT_REDIS = pytest.mark.parametrize(
    "redis",
    [
        pytest.param(False, id="alone"),
        pytest.param(
            True,
            id="redis",
            marks=pytest.mark.skipif(not REDIS_URL, reason="needs TOLLGATE_REDIS_URL (CI sets it)"),
        ),
    ],
)


def live_settings(settings: Settings, *, redis: bool, **changes: Any) -> Settings:
    # Channels and rate-limit buckets of its own with Redis; without it, none (whatever the environment says).
    shared = {"redis_url": REDIS_URL if redis else None, "redis_channel_prefix": f"t-{uuid.uuid4().hex}:"}
    return settings.model_copy(update={**shared, **changes})


@contextlib.asynccontextmanager
async def gateways(settings: Settings, count: int = 1) -> AsyncIterator[list[str]]:
    """``count`` gateways on the test database (sharing Redis when ``settings`` name it), on real sockets."""
    async with contextlib.AsyncExitStack() as stack:
        addresses = []
        for _ in range(count):
            app = create_app(settings, clock=SystemClock(), manage_orm=False, run_background_tasks=False)
            addresses.append(await stack.enter_async_context(serving(app)))
        yield addresses


async def ended(socket: ClientConnection, within: float) -> tuple[int | None, list[Any], float]:
    """Waits for the server to close: its code, what arrived before the close, and how long it took."""
    started = time.monotonic()
    received = []
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(within):
            while True:
                received.append(json.loads(await socket.recv()))
    return socket.close_code, received, time.monotonic() - started


async def still_open(socket: ClientConnection) -> bool:
    await socket.send(json.dumps({"type": "ping"}))
    async with asyncio.timeout(WAIT):
        return json.loads(await socket.recv())["type"] == "pong"


def bearer(credential: str) -> str:
    return f"Bearer {credential}"


async def user_token(email: str, ttl: dt.timedelta, settings: Settings) -> str:
    user = await User.get(email=email)
    return issue_user_token(
        user_id=str(user.id),
        tenant_id=str(user.tenant_id),
        email=email,
        secret=settings.jwt_secret,
        now=dt.datetime.now(dt.UTC),
        ttl=ttl,
    )


@WITH_AND_WITHOUT_REDIS
async def test_a_session_whose_key_is_revoked_is_closed(
    settings: Settings, demo: SeedResult, redis: bool
) -> None:
    # With Redis the cache may keep credentials a minute: only the announcement can end the session fast.
    config = live_settings(settings, redis=redis, auth_cache_seconds=60 if redis else 1)
    key = demo.connector_keys["acme"]
    prefix = key.split("_")[1]
    async with gateways(config, count=2 if redis else 1) as addresses:
        async with subscriber(addresses[-1], bearer(key), SUBSCRIPTION) as socket:
            assert await still_open(socket)

            # What `tollgate apikey revoke` does: the update, then the announcement on the broadcaster.
            await ApiKey.filter(prefix=prefix).update(revoked_at=dt.datetime.now(dt.UTC))
            if redis:
                broadcaster = broadcaster_from_settings(config)
                await broadcaster.publish(REVOKED_CHANNEL, prefix)
                await broadcaster.aclose()
            code, received, took = await ended(socket, within=WAIT)

        # The instance that held the session had the key in its credential cache: dropped too.
        async with httpx.AsyncClient(base_url=f"http://{addresses[-1]}") as http:
            refused = await http.post(
                "/graphql", json={"query": "{ viewer { kind } }"}, headers={"Authorization": bearer(key)}
            )

    assert code == 4403
    assert received == []
    assert took < (2.0 if redis else 1 + 2.0)
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@WITH_AND_WITHOUT_REDIS
async def test_a_session_whose_user_is_disabled_is_closed(
    settings: Settings, demo: SeedResult, redis: bool
) -> None:
    config = live_settings(settings, redis=redis, auth_cache_seconds=60 if redis else 1)
    token = await user_token("admin@acme.test", dt.timedelta(hours=1), config)
    admin = await User.get(email="admin@acme.test")
    async with (
        gateways(config, count=2 if redis else 1) as addresses,
        subscriber(addresses[-1], bearer(token), SUBSCRIPTION) as socket,
    ):
        assert await still_open(socket)

        await User.filter(id=admin.id).update(is_active=False)
        if redis:
            broadcaster = broadcaster_from_settings(config)
            await announce_user_disabled(str(admin.id), broadcaster)
            await broadcaster.aclose()
        code, received, took = await ended(socket, within=WAIT)
        async with httpx.AsyncClient(base_url=f"http://{addresses[-1]}") as http:
            refused = await http.post(
                "/graphql", json={"query": "{ viewer { kind } }"}, headers={"Authorization": bearer(token)}
            )

    assert code == 4403
    assert received == []
    assert took < (2.0 if redis else 1 + 2.0)
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@WITH_AND_WITHOUT_REDIS
async def test_a_session_is_closed_when_its_token_expires(
    settings: Settings, demo: SeedResult, redis: bool
) -> None:
    config = live_settings(settings, redis=redis, auth_cache_seconds=60)
    token = await user_token("admin@acme.test", dt.timedelta(seconds=2), config)
    async with gateways(config) as (address,), subscriber(address, bearer(token), SUBSCRIPTION) as socket:
        assert await still_open(socket)
        code, received, took = await ended(socket, within=WAIT)

    assert code == 4403
    assert received == []
    assert took < 4.0  # the token's exp is a whole second: at most 2 s from now, plus scheduling


async def test_a_session_with_valid_credentials_stays_open(settings: Settings, demo: SeedResult) -> None:
    config = live_settings(settings, redis=False, auth_cache_seconds=0)  # verified again every second
    async with (
        gateways(config) as (address,),
        subscriber(address, bearer(demo.connector_keys["acme"]), SUBSCRIPTION) as socket,
    ):
        await asyncio.sleep(2.5)
        assert await still_open(socket)


async def test_websocket_operations_share_the_http_budget_and_the_connection_stays_usable(
    settings: Settings, demo: SeedResult
) -> None:
    # One token a second: a slow request on a loaded machine (a few hundred ms) refills nothing.
    config = live_settings(settings, redis=False, rate_limit_per_second=1, rate_limit_burst=3)
    key = demo.connector_keys["acme"]
    query = {"query": "query Me { viewer { kind } }"}
    async with gateways(config) as (address,):
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            spent = [
                (await http.post("/graphql", json=query, headers={"Authorization": bearer(key)})).status_code
                for _ in range(3)
            ]
        async with connect(f"ws://{address}/graphql", subprotocols=PROTOCOLS) as socket:
            await socket.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": bearer(key)}})
            )
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            await socket.send(json.dumps({"id": "over", "type": "subscribe", "payload": query}))
            refused = json.loads(await socket.recv())
            await asyncio.sleep(1.2)  # 1 per second: a token is back after 1 s
            await socket.send(json.dumps({"id": "again", "type": "subscribe", "payload": query}))
            answered = json.loads(await socket.recv())

    assert spent == [200, 200, 200]
    assert refused["type"] == "error"
    assert refused["id"] == "over"
    assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert answered == {"id": "again", "type": "next", "payload": {"data": {"viewer": {"kind": "API_KEY"}}}}


async def test_a_websocket_message_over_the_cap_closes_with_1009(
    settings: Settings, demo: SeedResult
) -> None:
    config = live_settings(settings, redis=False, max_body_bytes=2_048)
    key = demo.connector_keys["acme"]
    address_of = gateways(config)
    async with address_of as (address,), connect(f"ws://{address}/graphql", subprotocols=PROTOCOLS) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": bearer(key)}}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        padding = "#" * 4_000  # a comment: the document is valid, only too big
        big = {"query": "query Me { viewer { kind } } " + padding}
        await socket.send(json.dumps({"id": "big", "type": "subscribe", "payload": big}))
        code, received, _ = await ended(socket, within=WAIT)

    assert code == 1009
    assert received == []
