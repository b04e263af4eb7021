"""``TOLLGATE_FAST_PATH=false`` switches the compiled completion of subscription events off too (issue 11):
live alerts then go through graphql-core's own completion, and arrive the same either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tortoise.context import TortoiseContext

from app.clock import FrozenClock
from app.edge import fast_path
from app.main import create_app
from app.seed import SeedResult
from tests.test_live_alerts import (
    live_settings,
    next_alert,
    report_credits,
    serving,
    subscriber,
    wait_for_subscribers,
)


@pytest.mark.parametrize("enabled", [True, False])
async def test_live_alerts_are_completed_by_the_fast_lane_only_when_it_is_on(
    db: TortoiseContext,
    demo: SeedResult,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    enabled: bool,
) -> None:
    completed_by_the_lane: list[Any] = []
    complete_event = fast_path.complete_event

    async def counting(*args: Any) -> Any:
        completed_by_the_lane.append(args[2])
        return await complete_event(*args)

    monkeypatch.setattr(fast_path, "complete_event", counting)
    app = create_app(
        live_settings(tmp_path, fast_path=enabled), clock=clock, manage_orm=False, run_background_tasks=False
    )
    key = demo.connector_keys["acme"]
    async with serving(app) as address, subscriber(address, f"Bearer {key}") as socket:
        await wait_for_subscribers(app, "acme")

        await report_credits(address, key, clock, 3200)  # 80% of acme's 4,000 credits
        alert = await next_alert(socket)

    assert (alert["kind"], alert["threshold"], alert["state"], alert["used"], alert["limit"]) == (
        "CREDITS", 80, "TRIGGERED", 3200, 4000,
    )  # fmt: skip
    assert len(completed_by_the_lane) == (1 if enabled else 0)
