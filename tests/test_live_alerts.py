"""Live limit alerts over graphql-transport-ws, against real uvicorn servers on local ports.

The servers run in the test's event loop and share its database; clients are real WebSocket and
HTTP clients speaking to the sockets. With ``TOLLGATE_REDIS_URL``, two servers share Redis too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tortoise.context import TortoiseContext
from websockets.asyncio.client import ClientConnection, connect

from app.auth.tokens import issue_user_token
from app.clock import FrozenClock
from app.main import create_app
from app.models.tenancy import Tenant, User
from app.observability import REGISTRY
from app.seed import SeedResult
from app.services.alerts import channel_of
from app.settings import Settings
from tests.conftest import database_url
from tests.live import ALERTS as SUBSCRIPTION
from tests.live import WAIT, serving, subscriber

REPORT = """
mutation Report($input: UsageReportInput!) {
  reportUsage(input: $input) { __typename ... on ReportUsageSuccess { applied report { creditsUsed } } }
}
"""


def live_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        env="test",
        mail_dir=tmp_path / "mail",
        database_url=database_url(),
        rate_limit_per_second=0,
        **overrides,
    )


async def wait_for_subscribers(app: Starlette, tenant_slug: str, count: int = 1) -> None:
    """The subscription is registered on the server: from now on nothing published is missed."""
    channel = channel_of((await Tenant.get(slug=tenant_slug)).id)
    broadcaster = app.state.services.broadcaster
    for _ in range(int(WAIT / 0.01)):
        if broadcaster.subscriber_count(channel) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no subscriber of {tenant_slug} registered within {WAIT} s")


async def next_alert(socket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        message = json.loads(await socket.recv())
    assert message["type"] == "next", message
    assert message["id"] == "alerts"
    alert: dict[str, Any] = message["payload"]["data"]["limitAlerts"]
    return alert


async def report_credits(
    address: str, key: str, clock: FrozenClock, credits: int, *, admin_users: int = 3
) -> None:
    """A usage report over real HTTP: ``credits`` in all, ``admin_users`` of them admin users."""
    clock.advance(dt.timedelta(minutes=1))
    counts = {"variants": credits - admin_users, "customers": 0, "contacts": 0, "salesReps": 0}
    variables = {
        "input": {
            **counts,
            "adminUsers": admin_users,
            "storageBytes": 0,
            "measuredAt": clock.now().isoformat(),
        }
    }
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        response = await http.post(
            "/graphql",
            json={"query": REPORT, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.json()["data"]["reportUsage"]["applied"] is True, response.text


async def close_code(socket: ClientConnection) -> int | None:
    """The code the server closed the connection with."""
    await asyncio.wait_for(socket.wait_closed(), WAIT)
    return socket.close_code


async def test_a_subscriber_receives_80_90_100_in_order_then_resolved_and_nothing_of_other_tenants(
    db: TortoiseContext, demo: SeedResult, clock: FrozenClock, tmp_path: Path
) -> None:
    app = create_app(live_settings(tmp_path), clock=clock, manage_orm=False, run_background_tasks=False)
    acme_key, nova_key = demo.connector_keys["acme"], demo.connector_keys["nova"]
    connections_before = REGISTRY.get_sample_value("tollgate_websocket_connections") or 0
    async with (
        serving(app) as address,
        subscriber(address, f"Bearer {acme_key}") as acme,
        subscriber(address, f"Bearer {nova_key}") as nova,
    ):
        await wait_for_subscribers(app, "acme")
        await wait_for_subscribers(app, "nova")
        assert REGISTRY.get_sample_value("tollgate_websocket_connections") == connections_before + 2

        # acme: 4,000 credits. 75%, 80%, 90%, 100%, then back to 92.5%.
        for credits in (3000, 3200, 3600, 4000, 3700):
            await report_credits(address, acme_key, clock, credits)

        received = [await next_alert(acme) for _ in range(4)]
        assert [(a["kind"], a["threshold"], a["state"], a["used"]) for a in received] == [
            ("CREDITS", 80, "TRIGGERED", 3200),
            ("CREDITS", 90, "TRIGGERED", 3600),
            ("CREDITS", 100, "TRIGGERED", 4000),
            ("CREDITS", 100, "RESOLVED", 3700),
        ]
        assert {a["limit"] for a in received} == {4000}

        # nova (5,000 credits) then crosses 80% itself: its subscriber's first message is its own
        # alert, so none of acme's four reached it.
        await report_credits(address, nova_key, clock, 4000)
        first_for_nova = await next_alert(nova)
        assert (first_for_nova["threshold"], first_for_nova["used"], first_for_nova["limit"]) == (
            80,
            4000,
            5000,
        )
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await acme.recv()


async def test_an_admin_user_token_may_subscribe_too(
    db: TortoiseContext, demo: SeedResult, clock: FrozenClock, tmp_path: Path
) -> None:
    settings = live_settings(tmp_path)
    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False)
    admin = await User.get(email="admin@acme.test")
    token = issue_user_token(
        user_id=str(admin.id),
        tenant_id=str(admin.tenant_id),
        email=admin.email,
        secret=settings.jwt_secret,
        now=clock.now(),
        ttl=dt.timedelta(hours=1),
    )
    async with serving(app) as address, subscriber(address, f"Bearer {token}") as socket:
        await wait_for_subscribers(app, "acme")
        await report_credits(address, demo.connector_keys["acme"], clock, 3300)

        alert = await next_alert(socket)

    assert (alert["kind"], alert["threshold"], alert["state"]) == ("CREDITS", 80, "TRIGGERED")


@pytest.mark.parametrize(
    "payload",
    [{}, {"Authorization": "Bearer tg_unknown_key"}, {"Authorization": "Basic abc"}],
    ids=["without-credentials", "unknown-key", "not-bearer"],
)
async def test_connection_init_without_valid_credentials_is_closed_with_4403(
    db: TortoiseContext, demo: SeedResult, clock: FrozenClock, tmp_path: Path, payload: dict[str, str]
) -> None:
    app = create_app(live_settings(tmp_path), clock=clock, manage_orm=False, run_background_tasks=False)
    async with (
        serving(app) as address,
        connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as socket,  # type: ignore[list-item]
    ):
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))

        assert await close_code(socket) == 4403


async def test_subscribing_before_connection_init_is_closed_with_4401(
    db: TortoiseContext, demo: SeedResult, clock: FrozenClock, tmp_path: Path
) -> None:
    app = create_app(live_settings(tmp_path), clock=clock, manage_orm=False, run_background_tasks=False)
    async with (
        serving(app) as address,
        connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as socket,  # type: ignore[list-item]
    ):
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))

        assert await close_code(socket) == 4401


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_an_alert_raised_on_one_instance_reaches_a_subscriber_of_another_through_redis(
    db: TortoiseContext, demo: SeedResult, clock: FrozenClock, tmp_path: Path
) -> None:
    # A channel prefix of its own: other test runs may share this Redis.
    shared = {
        "redis_url": os.environ["TOLLGATE_REDIS_URL"],
        "redis_channel_prefix": f"test-{uuid.uuid4().hex}:",
    }
    first = create_app(
        live_settings(tmp_path, **shared), clock=clock, manage_orm=False, run_background_tasks=False
    )
    second = create_app(
        live_settings(tmp_path, **shared), clock=clock, manage_orm=False, run_background_tasks=False
    )
    key = demo.connector_keys["acme"]
    async with (
        serving(first) as raising,
        serving(second) as listening,
        subscriber(listening, f"Bearer {key}") as socket,
    ):
        await wait_for_subscribers(second, "acme")
        assert (
            first.state.services.broadcaster.subscriber_count(channel_of((await Tenant.get(slug="acme")).id))
            == 0
        )

        await report_credits(raising, key, clock, 3300)

        alert = await next_alert(socket)
    assert (alert["kind"], alert["threshold"], alert["state"], alert["used"]) == (
        "CREDITS",
        80,
        "TRIGGERED",
        3300,
    )
