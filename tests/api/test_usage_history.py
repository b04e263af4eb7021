"""usageHistory: one point per UTC day (the usage in force at its end, the processes started that day),
and creditUsage.forecast: the least-squares trend of the last 30 days of reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.auth import scopes
from app.clock import FrozenClock
from app.models.metering import ProcessDay, ProcessKind
from app.models.tenancy import Tenant
from app.seed import SeedResult
from app.services.errors import InvalidInput
from app.services.usage_history import credit_points, days_asked, usage_history
from tests.api.test_process_starts import start
from tests.api.test_quota import key_with_scopes
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient, count_queries

HISTORY = """
query History($from: Date!, $to: Date!) {
  usageHistory(from: $from, to: $to) {
    __typename
    ... on Error { code message field }
    ... on UsageHistory {
      from to
      days {
        date reported credits storageBytes users integrations measuredAt processes
        breakdown { variants customers contacts salesReps adminUsers }
        processesByKind { process starts }
      }
    }
  }
}
"""

FORECAST = """
query Forecast {
  creditUsage {
    ... on CreditUsage { used limit forecast { dailyGrowth limitPassedOn daysLeft basedOnReports since } }
  }
}
"""

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)  # the clock fixture's
CREDITS_OF_SEED = 2748  # 340 variants + 1,200 + 1,200 + 5 + 3: each report below changes the variants only


def on(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=dt.UTC)


async def history(gql: GraphQLClient, start: str, end: str, **caller: Any) -> dict[str, Any]:
    body = await gql.post(HISTORY, {"from": start, "to": end}, **caller)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["usageHistory"]
    return result


async def start_at(gql: GraphQLClient, clock: FrozenClock, key: str, at: dt.datetime, *kinds: str) -> None:
    clock.set(at)
    for n, kind in enumerate(kinds):
        assert (await start(gql, key, f"{at.isoformat()}-{n}", kind))["allowed"]
    clock.set(NOW)


async def a_week_of_usage(gql: GraphQLClient, demo: SeedResult, clock: FrozenClock) -> None:
    """Reports on Nov 20 (two: 2,748 then 2,808 credits) and Nov 22 (2,908), late ones that are not
    applied; starts on Nov 20 (2 product syncs, 1 stock update) and Nov 22 (1 stock update, at 23:59:59)."""
    key = demo.connector_keys["acme"]
    await report(gql, key, on(20, 10))
    await report(gql, key, on(20, 18), variants=400, storageBytes=5 * 1024**3, integrations=2)
    await report(gql, key, on(22, 9), variants=500, users=9)
    late = await report(gql, key, on(21, 12), variants=100)  # measured before the one in force
    later_same_day = await report(gql, key, on(22, 8), variants=100)
    assert (late["applied"], later_same_day["applied"]) == (False, False)
    await start_at(gql, clock, key, on(20, 15), "PRODUCT_SYNC", "STOCK_UPDATE", "PRODUCT_SYNC")
    await start_at(gql, clock, key, on(22, 23, 59, 59), "STOCK_UPDATE")
    await start_at(gql, clock, key, on(23, 0, 0, 0), "DATABASE_UPDATE")


async def test_each_day_shows_the_usage_in_force_at_its_end_and_the_starts_of_that_day(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await a_week_of_usage(gql, demo, clock)

    result = await history(gql, "2026-11-19", "2026-11-30", as_="admin@acme.test")

    assert result["__typename"] == "UsageHistory"
    assert (result["from"], result["to"]) == ("2026-11-19", "2026-11-30")  # as asked
    days = {day["date"]: day for day in result["days"]}
    assert list(days) == ["2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]  # no future
    nineteenth, twentieth, twenty_first, twenty_second, today = days.values()
    # Before the first report: nothing to show, no processes either.
    assert nineteenth == {
        "date": "2026-11-19", "reported": False, "credits": None, "storageBytes": None, "users": None,
        "integrations": None, "measuredAt": None, "processes": 0, "breakdown": None, "processesByKind": [],
    }  # fmt: skip
    # The 20th: the last of its two reports (18:00), and its three starts by kind, in ProcessKind order.
    assert (twentieth["reported"], twentieth["credits"]) == (True, CREDITS_OF_SEED + 60)
    assert twentieth["measuredAt"] == "2026-11-20T18:00:00+00:00"
    assert twentieth["breakdown"] == {
        "variants": 400, "customers": 1200, "contacts": 1200, "salesReps": 5, "adminUsers": 3,
    }  # fmt: skip
    assert (twentieth["storageBytes"], twentieth["users"], twentieth["integrations"]) == (5 * 1024**3, 3, 2)
    assert twentieth["processes"] == 3
    assert twentieth["processesByKind"] == [
        {"process": "PRODUCT_SYNC", "starts": 2},
        {"process": "STOCK_UPDATE", "starts": 1},
    ]
    # The 21st: no applied report (the late one measured that day is not in force): carried forward.
    assert (twenty_first["reported"], twenty_first["credits"]) == (False, CREDITS_OF_SEED + 60)
    assert twenty_first["measuredAt"] == twentieth["measuredAt"]
    assert (twenty_first["processes"], twenty_first["processesByKind"]) == (0, [])
    # The 22nd: its 09:00 report (not the late 08:00 one); a start at 23:59:59 counts that day.
    assert (twenty_second["reported"], twenty_second["credits"]) == (True, CREDITS_OF_SEED + 160)
    assert (twenty_second["users"], twenty_second["integrations"]) == (9, None)  # not reported: null
    assert twenty_second["processesByKind"] == [{"process": "STOCK_UPDATE", "starts": 1}]
    # Today: carried forward; the start at midnight is today's.
    assert (today["reported"], today["credits"], today["processes"]) == (False, CREDITS_OF_SEED + 160, 1)
    assert today["processesByKind"] == [{"process": "DATABASE_UPDATE", "starts": 1}]


async def test_a_range_after_the_last_report_carries_it_in_from_before_the_range(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await a_week_of_usage(gql, demo, clock)

    result = await history(gql, "2026-11-21", "2026-11-21", key=demo.connector_keys["acme"])

    (day,) = result["days"]
    assert (day["date"], day["reported"], day["credits"]) == ("2026-11-21", False, CREDITS_OF_SEED + 60)
    assert day["measuredAt"] == "2026-11-20T18:00:00+00:00"


async def test_other_environments_see_their_own_history_only(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await a_week_of_usage(gql, demo, clock)

    result = await history(gql, "2026-11-20", "2026-11-23", as_="admin@nova.test")

    assert [(day["credits"], day["processes"]) for day in result["days"]] == [(None, 0)] * 4


async def test_at_most_400_days_a_call(gql: GraphQLClient, demo: SeedResult) -> None:
    too_long = await history(gql, "2025-10-19", "2026-11-23", as_="admin@acme.test")  # 401 days
    longest = await history(gql, "2025-10-20", "2026-11-23", as_="admin@acme.test")  # 400 days

    assert (too_long["__typename"], too_long["code"], too_long["field"]) == (
        "InvalidInputError", "INVALID_INPUT", "from",
    )  # fmt: skip
    assert "400" in too_long["message"]
    assert longest["__typename"] == "UsageHistory"
    assert len(longest["days"]) == 400
    assert (longest["days"][0]["date"], longest["days"][-1]["date"]) == ("2025-10-20", "2026-11-23")


async def test_to_before_from_is_refused_naming_to(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await history(gql, "2026-11-23", "2026-11-22", as_="admin@acme.test")

    assert (result["__typename"], result["field"]) == ("InvalidInputError", "to")


async def test_days_after_today_are_left_out(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    future = await history(gql, "2026-11-24", "2026-12-31", as_="admin@acme.test")
    far = await history(gql, "9999-01-01", "9999-12-31", as_="admin@acme.test")
    clock.set(dt.datetime(2026, 11, 23, 23, 59, 59, tzinfo=dt.UTC))
    today = await history(gql, "2026-11-23", "2026-11-24", as_="admin@acme.test")

    assert (future["__typename"], future["days"], far["days"]) == ("UsageHistory", [], [])
    assert [day["date"] for day in today["days"]] == ["2026-11-23"]


async def test_the_earliest_days_a_date_can_name_answer_empty_days(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    result = await history(gql, "0001-01-01", "0001-12-31", as_="admin@acme.test")

    assert len(result["days"]) == 365
    assert {day["credits"] for day in result["days"]} == {None}


async def test_a_date_that_is_not_one_is_a_validation_error_not_a_crash(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    for bad in ("2026-02-30", "2026-11-23T00:00:00", "\x00", "9" * 10_000, "\uff12\uff10\uff12\uff16-11-01"):
        body = await gql.post(HISTORY, {"from": bad, "to": "2026-11-23"}, as_="admin@acme.test")
        assert body["errors"][0]["extensions"]["code"] != "INTERNAL_SERVER_ERROR", (bad[:20], body)
        assert body["data"] is None


async def test_members_and_connector_keys_may_read_it_other_keys_and_strangers_may_not(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now())
    reporter = await key_with_scopes("acme", scopes.USAGE_REPORT)
    starter = await key_with_scopes("acme", scopes.PROCESS_START)

    member = await history(gql, "2026-11-23", "2026-11-23", as_="member@acme.test")
    connector = await history(gql, "2026-11-23", "2026-11-23", key=reporter)
    refused = await gql.post(HISTORY, {"from": "2026-11-23", "to": "2026-11-23"}, key=starter)
    anonymous = await gql.post(HISTORY, {"from": "2026-11-23", "to": "2026-11-23"})

    assert member["days"][0]["credits"] == connector["days"][0]["credits"] == CREDITS_OF_SEED
    assert refused["data"]["usageHistory"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_statements_do_not_grow_with_the_number_of_days(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await a_week_of_usage(gql, demo, clock)
    await history(gql, "2026-11-23", "2026-11-23", as_="admin@acme.test")  # the token is minted outside

    counts = []
    for start_day in ("2026-11-20", "2025-10-20"):
        for _ in ("first", "again"):
            with count_queries() as queries:
                result = await history(gql, start_day, "2026-11-23", as_="admin@acme.test")
            assert result["days"][-1]["credits"] == CREDITS_OF_SEED + 160
            counts.append(queries.count)

    # The caller; the report in force before the range, the range's last report per day; the closed days'
    # rollup, read (and, the first time, counted and written once for all the missing days); today, live.
    assert counts == [7, 5, 7, 5], counts


async def test_closed_days_are_rolled_up_once_and_open_days_counted_live(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await a_week_of_usage(gql, demo, clock)
    acme = await Tenant.get(slug="acme")
    clock.set(on(23, 0, 30))  # Nov 22 ended 30 minutes ago: not final yet (CLOSED_AFTER), still counted live

    first = await history(gql, "2026-11-19", "2026-11-23", as_="admin@acme.test")
    rolled = {row.day: row for row in await ProcessDay.filter(tenant_id=acme.id)}

    assert sorted(rolled) == [dt.date(2026, 11, day) for day in (19, 20, 21)]  # zeros too: rolled up
    assert (rolled[dt.date(2026, 11, 20)].product_sync, rolled[dt.date(2026, 11, 20)].stock_update) == (2, 1)
    assert rolled[dt.date(2026, 11, 19)].started(ProcessKind.PRODUCT_SYNC) == 0
    # An hour after the end of Nov 22 it is final and rolled up; today's new start still shows at once.
    clock.set(on(23, 12))
    await start_at(gql, clock, demo.connector_keys["acme"], on(23, 12), "ORDER_EXPORT")
    second = await history(gql, "2026-11-19", "2026-11-23", as_="admin@acme.test")

    assert await ProcessDay.filter(tenant_id=acme.id).count() == 4
    assert second["days"][:4] == first["days"][:4]  # the rollup answers what the live count did
    assert {k["process"]: k["starts"] for k in second["days"][4]["processesByKind"]} == {
        "DATABASE_UPDATE": 1,
        "ORDER_EXPORT": 1,
    }
    assert [day["processes"] for day in second["days"]] == [0, 3, 0, 1, 2]


async def test_days_before_the_environment_existed_are_neither_counted_nor_rolled_up(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    acme = await Tenant.get(slug="acme")

    ancient = await history(gql, "0001-01-01", "0002-02-04", as_="admin@acme.test")  # 400 days

    assert len(ancient["days"]) == 400
    assert {(day["credits"], day["processes"]) for day in ancient["days"]} == {(None, 0)}
    assert not await ProcessDay.filter(tenant_id=acme.id).exists()  # nothing written for them


# --- The services, without GraphQL ----------------------------------------------------------------


def test_the_days_asked_are_checked_then_cut_at_today() -> None:
    day = dt.date(2026, 11, 23)
    assert days_asked(day - dt.timedelta(days=399), day, now=NOW) == (day - dt.timedelta(days=399), day)
    assert days_asked(day, day + dt.timedelta(days=5), now=NOW) == (day, day)
    assert days_asked(day + dt.timedelta(days=1), day + dt.timedelta(days=5), now=NOW)[1] == day  # none
    with pytest.raises(InvalidInput) as too_long:
        days_asked(day - dt.timedelta(days=400), day, now=NOW)
    with pytest.raises(InvalidInput) as reversed_range:
        days_asked(day, day - dt.timedelta(days=1), now=NOW)
    assert (too_long.value.field, reversed_range.value.field) == ("from", "to")


async def test_the_service_reads_days_and_the_forecast_points(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await a_week_of_usage(gql, demo, clock)
    acme = await Tenant.get(slug="acme")

    days = await usage_history(acme, start=dt.date(2026, 11, 20), end=dt.date(2026, 11, 21), now=NOW)
    points = await credit_points(acme.id, now=NOW)

    assert [(d.day.day, d.reported, d.usage.credits if d.usage else None) for d in days] == [
        (20, True, CREDITS_OF_SEED + 60),
        (21, False, CREDITS_OF_SEED + 60),
    ]
    assert days[0].processes == {ProcessKind.PRODUCT_SYNC: 2, ProcessKind.STOCK_UPDATE: 1}
    assert days[0].processes_total == 3
    # The applied reports only, oldest first (the two late ones are not applied).
    assert points == [
        (on(20, 10), CREDITS_OF_SEED),
        (on(20, 18), CREDITS_OF_SEED + 60),
        (on(22, 9), CREDITS_OF_SEED + 160),
    ]


# --- creditUsage.forecast ------------------------------------------------------------------------


async def forecast(gql: GraphQLClient) -> Any:
    body = await gql.post(FORECAST, as_="admin@acme.test")
    assert "errors" not in body, body
    return body["data"]["creditUsage"]["forecast"]


async def test_two_reports_are_no_forecast(gql: GraphQLClient, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, on(22, 12))
    await report(gql, key, on(23, 12), variants=440)

    assert await forecast(gql) is None


async def test_three_growing_reports_forecast_the_day_the_limit_is_passed(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, on(23, 12) - dt.timedelta(days=31), variants=0)  # older than 30 days: left out
    await report(gql, key, on(21, 12))  # 2,748
    await report(gql, key, on(22, 12), variants=440)  # 2,848
    await report(gql, key, on(23, 12), variants=540)  # 2,948
    await report(gql, key, on(22, 18), variants=0)  # late, not applied: left out

    result = await forecast(gql)
    again = await forecast(gql)  # the document now runs on the fast path: the same answer

    assert again == result
    # x = 0, 1, 2 days, y = 2748, 2848, 2948: a perfect line of 100 a day. acme's limit is 4,000:
    # (4,000 - 2,948) / 100 = 10.52 days after Nov 23 12:00 = Dec 4 00:28.8 -> Dec 4, 11 days from today.
    assert result == {
        "dailyGrowth": "100.00",
        "limitPassedOn": "2026-12-04",
        "daysLeft": 11,
        "basedOnReports": 3,
        "since": "2026-11-21T12:00:00+00:00",
    }


async def test_a_falling_trend_is_no_forecast(gql: GraphQLClient, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    for day, variants in ((21, 540), (22, 440), (23, 340)):
        await report(gql, key, on(day, 12), variants=variants)

    assert await forecast(gql) is None


async def test_credit_usage_without_the_forecast_costs_no_more_statements(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    plain = "query { creditUsage { ... on CreditUsage { used } } }"
    await gql.post(plain, as_="admin@acme.test")  # the token and the plan cache, outside the count

    with count_queries() as without:
        await gql.post(plain, as_="admin@acme.test")
    with count_queries() as with_forecast:
        await forecast(gql)

    assert without.count == 1, without.statements  # the caller (the usage and counter are cached)
    assert with_forecast.count == 2, with_forecast.statements  # and the last 30 days of reports
