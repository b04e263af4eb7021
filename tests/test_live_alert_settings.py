"""Live alerts raised by a change of thresholds (issue 15): a `limitAlerts` subscriber receives the alerts
``setAlertThresholds`` raises when a new threshold is already below the usage, over graphql-transport-ws
against real uvicorn servers (with ``TOLLGATE_REDIS_URL``, from another instance too)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise.context import TortoiseContext

from app.auth.tokens import issue_user_token
from app.clock import FrozenClock
from app.main import create_app
from app.models.tenancy import User
from app.seed import SeedResult
from app.settings import Settings
from tests.live import serving, subscriber
from tests.test_live_alerts import live_settings, next_alert, report_credits, wait_for_subscribers

SET_THRESHOLDS = """
mutation Set($thresholds: [Int!]!) {
  setAlertThresholds(thresholds: $thresholds) {
    __typename ... on SetAlertThresholdsSuccess { alerts { kind threshold state } }
  }
}
"""


async def admin_token(settings: Settings, clock: FrozenClock) -> str:
    admin = await User.get(email="admin@acme.test")
    return issue_user_token(
        user_id=str(admin.id),
        tenant_id=str(admin.tenant_id),
        email=admin.email,
        secret=settings.jwt_secret,
        now=clock.now(),
        ttl=dt.timedelta(hours=1),
    )


async def set_thresholds(address: str, token: str, thresholds: list[int]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        response = await http.post(
            "/graphql",
            json={"query": SET_THRESHOLDS, "variables": {"thresholds": thresholds}},
            headers={"Authorization": f"Bearer {token}"},
        )
    result: dict[str, Any] = response.json()["data"]["setAlertThresholds"]
    assert result["__typename"] == "SetAlertThresholdsSuccess", response.text
    return result


async def test_a_subscriber_receives_the_alerts_a_change_of_thresholds_raises(
    db: TortoiseContext, demo: SeedResult, clock: FrozenClock, tmp_path: Path
) -> None:
    settings = live_settings(tmp_path)
    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False)
    key = demo.connector_keys["acme"]
    async with serving(app) as address, subscriber(address, f"Bearer {key}") as socket:
        await wait_for_subscribers(app, "acme")
        await report_credits(address, key, clock, 2400)  # 60% of 4,000: under 80, nothing raised

        answered = await set_thresholds(address, await admin_token(settings, clock), [50, 90])

        received = [await next_alert(socket) for _ in range(2)]
    pushed = [(a["kind"], a["threshold"], a["state"]) for a in received]
    assert pushed == [("CREDITS", 50, "TRIGGERED"), ("USERS", 50, "TRIGGERED")]  # users: 3 of 5
    assert [(a["kind"], a["threshold"], a["state"]) for a in answered["alerts"]] == pushed
    assert (received[0]["used"], received[0]["limit"]) == (2400, 4000)


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_a_change_on_one_instance_reaches_a_subscriber_of_another(
    db: TortoiseContext, demo: SeedResult, clock: FrozenClock, tmp_path: Path
) -> None:
    shared = {"redis_url": os.environ["TOLLGATE_REDIS_URL"], "redis_channel_prefix": f"t-{uuid.uuid4().hex}:"}
    settings = live_settings(tmp_path, **shared)
    first, second = (
        create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False) for _ in range(2)
    )
    key = demo.connector_keys["acme"]
    async with (
        serving(first) as changing,
        serving(second) as listening,
        subscriber(listening, f"Bearer {key}") as socket,
    ):
        await wait_for_subscribers(second, "acme")
        await report_credits(changing, key, clock, 3000)  # 75%

        await set_thresholds(changing, await admin_token(settings, clock), [70])

        alert = await next_alert(socket)
    assert (alert["kind"], alert["threshold"], alert["state"], alert["used"]) == (
        "CREDITS",
        70,
        "TRIGGERED",
        3000,
    )
