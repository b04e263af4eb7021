"""Limit alerts are published from their durable record (issue 11): an alert committed by a gateway that
died before pushing it live is pushed after the restart, once per subscriber; the writer marks what it
pushed, and the background task pushes what nobody marked, once, even with two instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from tortoise.context import TortoiseContext
from websockets.asyncio.client import ClientConnection

from app.broadcast.memory import InProcessBroadcaster
from app.clock import FrozenClock
from app.models.metering import AlertKind, AlertState, LimitAlert
from app.models.tenancy import Tenant
from app.resolvers.ids import global_id
from app.seed import SeedResult
from app.services import alerts
from app.services.alert_publisher import publish_pending
from tests.live import gateway_env, live_gateway, subscriber

SUBSCRIPTION = "subscription { limitAlerts { id kind threshold state used limit } }"
REPORT = """
mutation Report($input: UsageReportInput!) {
  reportUsage(input: $input) { __typename ... on ReportUsageSuccess { applied report { creditsUsed } } }
}
"""
GRACE = 8.0  # seconds: the restarted gateway is up, and its subscribers connected, well before this


async def received(socket: ClientConnection, within: float) -> list[dict[str, Any]]:
    """Every ``limitAlerts`` event the socket gets within ``within`` seconds."""
    events: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while True:
                message = json.loads(await socket.recv())
                assert message["type"] == "next", message
                events.append(message["payload"]["data"]["limitAlerts"])
    return events


def rows(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


async def test_an_alert_committed_by_a_gateway_killed_before_publishing_it_is_pushed_once_after_the_restart(
    tmp_path: Path,
) -> None:
    database = tmp_path / "live.sqlite3"
    env = gateway_env(
        tmp_path,
        TOLLGATE_RATE_LIMIT_PER_SECOND="0",
        TOLLGATE_ALERT_PUBLISH_GRACE_SECONDS=str(GRACE),
        TOLLGATE_ALERT_PUBLISH_INTERVAL_SECONDS="0.5",
    )

    with live_gateway(env, tmp_path / "first.log") as first:
        connector = first.connector_key("acme")
        token = first.token("admin@acme.test")
        counts = {"variants": 3297, "customers": 0, "contacts": 0, "salesReps": 0, "adminUsers": 3}
        measured_at = dt.datetime.now(dt.UTC).isoformat()
        async with httpx.AsyncClient(base_url=first.url) as http:
            response = await http.post(
                "/graphql",
                json={
                    "query": REPORT,
                    "variables": {"input": {**counts, "storageBytes": 0, "measuredAt": measured_at}},
                },
                headers={"Authorization": f"Bearer {connector}"},
            )
        assert response.json()["data"]["reportUsage"]["applied"] is True, response.text
        first.process.kill()
        first.process.wait(timeout=10)
    # The state a kill between the commit and the publication leaves: stored and e-mailed, not pushed.
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE limit_alert SET published_at = NULL")
    [(alert_id, threshold)] = rows(database, "SELECT id, threshold FROM limit_alert")
    assert threshold == 80
    assert rows(database, "SELECT count(*) FROM outbox_email WHERE kind = 'limit_alert'") == [(1,)]

    with live_gateway(env, tmp_path / "second.log") as second:
        async with (
            subscriber(second.url, f"Bearer {token}", SUBSCRIPTION) as one,
            subscriber(second.url, f"Bearer {connector}", SUBSCRIPTION) as other,
        ):
            # Within the grace nothing is pushed; after it, the alert, once; then nothing more.
            got_one, got_other = await asyncio.gather(received(one, GRACE + 4), received(other, GRACE + 4))

    for events in (got_one, got_other):
        assert [(event["id"], event["kind"], event["threshold"], event["state"]) for event in events] == [
            (global_id("LimitAlert", alert_id), "CREDITS", 80, "TRIGGERED")
        ]
    [(published_at,)] = rows(database, "SELECT published_at FROM limit_alert")
    assert published_at is not None


# --- The writer's mark and the background task, in the service layer (SQLite and PostgreSQL) ----------


class FailingBroadcaster(InProcessBroadcaster):
    async def publish(self, channel: str, message: str) -> None:
        raise ConnectionError("Redis away")


async def raise_alert(tenant: Tenant, now: dt.datetime, threshold: int = 80) -> LimitAlert:
    transition = alerts.Transition(AlertKind.CREDITS, threshold, AlertState.TRIGGERED, 3300, 4000)
    [alert] = await alerts.record(tenant.id, [transition], now=now)
    return alert


@contextlib.asynccontextmanager
async def listening(broadcaster: InProcessBroadcaster, tenant: Tenant) -> AsyncIterator[list[int]]:
    """The ids of the alerts pushed on ``tenant``'s channel while the block runs."""
    ids: list[int] = []

    async def collect() -> None:
        async with broadcaster.subscribe(alerts.channel_of(tenant.id)) as messages:
            async for message in messages:
                ids.append(alerts.decode(message).id)

    task = asyncio.create_task(collect())
    while not broadcaster.subscriber_count(alerts.channel_of(tenant.id)):  # noqa: ASYNC110 (a registration)
        await asyncio.sleep(0.001)
    try:
        yield ids
    finally:
        await asyncio.sleep(0.05)  # deliveries in flight
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_writer_marks_the_alerts_it_pushed_and_the_task_leaves_them_alone(
    demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    broadcaster = InProcessBroadcaster()
    alert = await raise_alert(acme, clock.now())
    assert (await LimitAlert.get(id=alert.id)).published_at is None

    async with listening(broadcaster, acme) as pushed:
        await alerts.publish(broadcaster, [alert])
        later = clock.now() + dt.timedelta(minutes=5)
        assert await publish_pending(broadcaster, now=later, grace=dt.timedelta(seconds=5)) == 0

    assert pushed == [alert.id]
    assert (await LimitAlert.get(id=alert.id)).published_at == clock.now()


async def test_an_alert_whose_broadcast_failed_is_pushed_by_the_task_after_the_grace_only(
    demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    broadcaster = InProcessBroadcaster()
    alert = await raise_alert(acme, clock.now())
    await alerts.publish(FailingBroadcaster(), [alert])
    assert (await LimitAlert.get(id=alert.id)).published_at is None

    async with listening(broadcaster, acme) as pushed:
        grace = dt.timedelta(seconds=5)
        assert await publish_pending(broadcaster, now=clock.now() + dt.timedelta(seconds=4), grace=grace) == 0
        assert await publish_pending(broadcaster, now=clock.now() + dt.timedelta(seconds=5), grace=grace) == 1
        assert await publish_pending(broadcaster, now=clock.now() + dt.timedelta(seconds=9), grace=grace) == 0

    assert pushed == [alert.id]
    assert (await LimitAlert.get(id=alert.id)).published_at == clock.now() + dt.timedelta(seconds=5)


async def test_two_instances_publishing_pending_alerts_at_once_push_each_once_in_order(
    db: TortoiseContext, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    raised = [
        await raise_alert(acme, clock.now(), threshold) for threshold in (80, 90, 100) for _ in range(20)
    ]
    broadcaster = InProcessBroadcaster()  # both instances' pushes reach the same subscribers, as Redis does
    later = clock.now() + dt.timedelta(minutes=1)

    async with listening(broadcaster, acme) as pushed:
        counts = await asyncio.gather(
            *(publish_pending(broadcaster, now=later, grace=dt.timedelta(seconds=5)) for _ in range(4))
        )

    assert sum(counts) == len(raised)
    assert sorted(pushed) == [alert.id for alert in raised]
    assert not await LimitAlert.filter(published_at__isnull=True).exists()


async def test_without_a_broadcaster_an_alert_is_left_for_the_task(
    demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    alert = await raise_alert(acme, clock.now())

    await alerts.publish(None, [alert])

    assert (await LimitAlert.get(id=alert.id)).published_at is None
