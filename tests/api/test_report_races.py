"""A usage report racing a purchase that raises the limit is judged against the limits in force when it
commits (issue 11): the outcome is one of the two serial orders, never a mix of both.

Each round is a fresh tenant on Storefront S (1,500 credits) that last reported 1,000 credits, with a
1,000-credit pack in its admin's cart. The connector reports 1,600 credits while the admin checks out:

- report first: 1,600 of 1,500 crosses 80, 90 and 100%, then the purchase (2,500) re-arms all three:
  six alerts and six e-mails, nothing left triggered;
- purchase first: 1,600 of 2,500 is 64%: no alert.

On PostgreSQL the report and the checkout go to two gateway instances sharing the database and Redis.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.auth.tokens import issue_user_token
from app.clock import FrozenClock
from app.main import create_app
from app.models.billing import PlanSubscription
from app.models.catalog import Plan
from app.models.enums import Role
from app.models.metering import AlertArming, AlertKind, LimitAlert
from app.models.notifications import OutboxEmail
from app.models.tenancy import ApiKey, Tenant, User
from app.seed import SeedResult
from app.settings import Settings
from tests.api.test_checkout import CHECKOUT
from tests.api.test_store import ADD
from tests.api.test_usage_reports import REPORT_USAGE
from tests.conftest import instances_sharing_redis, on_postgres, post_to

ROUNDS = 40
AT_ONCE = 8
REPORT_FIRST = [
    ("TRIGGERED", 80),
    ("TRIGGERED", 90),
    ("TRIGGERED", 100),
    ("RESOLVED", 100),
    ("RESOLVED", 90),
    ("RESOLVED", 80),
]
PURCHASE_FIRST: list[tuple[str, int]] = []


@dataclass(frozen=True)
class Round:
    tenant_id: uuid.UUID
    connector: dict[str, str]
    admin: dict[str, str]


@asynccontextmanager
async def two_apps(settings: Settings, clock: FrozenClock) -> AsyncIterator[tuple[Any, Any]]:
    """Two instances on PostgreSQL with Redis; one app twice on SQLite (one process serves it all)."""
    if on_postgres() and os.environ.get("TOLLGATE_REDIS_URL"):
        async with instances_sharing_redis(settings, clock) as apps:
            yield apps
        return
    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False)
    async with app.router.lifespan_context(app):
        yield app, app


def counts(credits: int, measured_at: dt.datetime) -> dict[str, Any]:
    return {
        "variants": credits - 1,
        "customers": 0,
        "contacts": 0,
        "salesReps": 0,
        "adminUsers": 1,
        "storageBytes": 0,
        "measuredAt": measured_at.isoformat(),
    }


async def prepare(index: int, plan: Plan, app: Any, settings: Settings, clock: FrozenClock) -> Round:
    tenant = await Tenant.create(
        slug=f"race-{index}",
        name=f"Race {index}",
        currency="EUR",
        created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )
    admin = await User.create(tenant=tenant, email=f"admin@race-{index}.test", name="Admin", role=Role.ADMIN)
    await PlanSubscription.create(tenant=tenant, plan=plan, started_at=tenant.created_at)
    key = generate_api_key()
    await ApiKey.create(
        tenant=tenant,
        name="connector",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=list(scopes.CONNECTOR_SCOPES),
    )
    token = issue_user_token(
        user_id=str(admin.id),
        tenant_id=str(tenant.id),
        email=admin.email,
        secret=settings.jwt_secret,
        now=clock.now(),
        ttl=dt.timedelta(days=1),
    )
    connector = {"Authorization": f"Bearer {key.plaintext}"}
    admin_headers = {"Authorization": f"Bearer {token}"}
    earlier = clock.now() - dt.timedelta(hours=1)
    first = await post_to(app, REPORT_USAGE, {"input": counts(1000, earlier)}, connector)
    assert first["data"]["reportUsage"]["applied"] is True, first
    added = await post_to(app, ADD, {"code": "credits-1000"}, admin_headers)
    assert "errors" not in added, added
    return Round(tenant.id, connector, admin_headers)


async def race(one: Round, reporting: Any, buying: Any, clock: FrozenClock) -> None:
    async def report() -> Any:
        await asyncio.sleep(random.uniform(0, 0.02))
        return await post_to(reporting, REPORT_USAGE, {"input": counts(1600, clock.now())}, one.connector)

    async def buy() -> Any:
        await asyncio.sleep(random.uniform(0, 0.02))
        return await post_to(buying, CHECKOUT, {"key": f"buy-{one.tenant_id}"}, one.admin)

    reported, bought = await asyncio.gather(report(), buy())
    assert reported["data"]["reportUsage"]["applied"] is True, reported
    assert bought["data"]["checkout"]["__typename"] == "CheckoutSuccess", bought


async def test_a_report_racing_a_credit_pack_purchase_ends_as_one_serial_order_or_the_other(
    demo: SeedResult, settings: Settings, clock: FrozenClock
) -> None:
    plan = await Plan.get(code="storefront-s")
    assert plan.credits == 1500
    async with two_apps(settings, clock) as (reporting, buying):
        rounds = [await prepare(index, plan, reporting, settings, clock) for index in range(ROUNDS)]
        for batch in range(0, ROUNDS, AT_ONCE):
            await asyncio.gather(
                *(race(one, reporting, buying, clock) for one in rounds[batch : batch + AT_ONCE])
            )

    orders: Counter[str] = Counter()
    for one in rounds:
        alerts = [
            (alert.state.value, alert.threshold)
            for alert in await LimitAlert.filter(tenant_id=one.tenant_id).order_by("id")
        ]
        assert all(
            alert.kind == AlertKind.CREDITS for alert in await LimitAlert.filter(tenant_id=one.tenant_id)
        )
        assert alerts in (REPORT_FIRST, PURCHASE_FIRST), f"not a serial order: {alerts}"
        orders["report first" if alerts else "purchase first"] += 1
        # Nothing is left triggered with 2,500 credits in force: the next real crossing will alert.
        assert not await AlertArming.filter(tenant_id=one.tenant_id, triggered=True).exists()
        # The e-mails tell the same story: one per call that raised alerts (a report, the purchase's
        # re-evaluation), and the order's.
        kinds = [
            str(kind)
            for kind in await OutboxEmail.filter(tenant_id=one.tenant_id).values_list("kind", flat=True)
        ]
        batches = 2 if alerts else 0  # the report's three crossings, then the purchase's three drops
        assert kinds.count("limit_alert") == batches, kinds
        assert kinds.count("purchase") == 1, kinds
        assert len(kinds) == batches + 1, kinds
    print(f"\nreport/purchase races: {dict(orders)}")
