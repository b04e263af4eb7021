"""A billing anchor day of 29 to 31 works in every month: in a shorter month the period starts on its
last day (as Stripe does), and myPlan, quota, startProcess and reportUsage answer (issue 11)."""

from __future__ import annotations

import datetime as dt

import pytest
from tortoise.exceptions import ValidationError

from app.clock import FrozenClock
from app.models.tenancy import Tenant
from app.seed import SeedResult
from tests.api.test_my_plan import MY_PLAN
from tests.api.test_process_starts import start
from tests.api.test_quota import quota
from tests.api.test_usage_reports import report
from tests.conftest import NOW, GraphQLClient


@pytest.mark.parametrize(
    ("anchor", "today", "period", "start_day", "end_day"),
    [
        (31, dt.datetime(2027, 2, 15, 9, tzinfo=dt.UTC), "2027-01", "2027-01-31", "2027-02-28"),
        (31, dt.datetime(2027, 2, 28, 9, tzinfo=dt.UTC), "2027-02", "2027-02-28", "2027-03-31"),
        (30, dt.datetime(2028, 2, 29, 9, tzinfo=dt.UTC), "2028-02", "2028-02-29", "2028-03-30"),
        (29, dt.datetime(2027, 2, 10, 9, tzinfo=dt.UTC), "2027-01", "2027-01-29", "2027-02-28"),
        (31, dt.datetime(2027, 4, 30, 9, tzinfo=dt.UTC), "2027-04", "2027-04-30", "2027-05-31"),
    ],
)
async def test_an_anchor_beyond_the_months_length_starts_the_period_on_its_last_day(
    gql: GraphQLClient,
    demo: SeedResult,
    clock: FrozenClock,
    anchor: int,
    today: dt.datetime,
    period: str,
    start_day: str,
    end_day: str,
) -> None:
    await Tenant.filter(slug="acme").update(billing_anchor_day=anchor)
    clock.set(today)
    key = demo.connector_keys["acme"]

    body = await gql.post(MY_PLAN, as_="admin@acme.test")
    reported = await report(gql, key, clock.now())
    decided = await quota(gql, key)
    started = await start(gql, key, "anchor-day-start")

    expected = {"name": period, "start": start_day, "end": end_day}
    assert "errors" not in body, body
    assert body["data"]["myPlan"]["currentPeriod"] == expected
    assert (reported["__typename"], reported["applied"]) == ("ReportUsageSuccess", True)
    assert (decided["allowed"], decided["period"]) == (True, expected)
    assert (started["__typename"], started["allowed"], started["period"]) == (
        "StartProcessSuccess",
        True,
        expected,
    )


@pytest.mark.parametrize("anchor", [0, 32, -5])
async def test_a_tenant_cannot_be_given_an_anchor_day_outside_1_to_31(demo: SeedResult, anchor: int) -> None:
    with pytest.raises(ValidationError, match="billing_anchor_day"):
        await Tenant.create(
            slug=f"anchor-{anchor}", name="Anchor", currency="EUR", created_at=NOW, billing_anchor_day=anchor
        )
    with pytest.raises(ValidationError, match="billing_anchor_day"):
        await Tenant.filter(slug="acme").update(billing_anchor_day=anchor)
    assert (await Tenant.get(slug="acme")).billing_anchor_day == 1
