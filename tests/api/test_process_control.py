"""setProcessControl: admins pause a kind of process or cap its starts per billing period; quota and
startProcess deny that kind only (after the credit limit); creditUsage.processes.byKind shows each kind."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from decimal import Decimal
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.audit import AuditEntry
from app.models.metering import ProcessControl, ProcessCounter, ProcessKind, ProcessStart
from app.seed import SeedResult
from app.settings import Settings
from tests.api.test_quota import QUOTA
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient, count_queries, instances_sharing_redis, post_to

ADMIN = "admin@acme.test"
MEMBER = "member@acme.test"

SET_CONTROL = """
mutation Set($process: ProcessKind!, $paused: Boolean!, $cap: Int) {
  setProcessControl(process: $process, paused: $paused, monthlyCap: $cap) {
    __typename
    ... on Error { code message field }
    ... on SetProcessControlSuccess { control { process paused monthlyCap updatedAt updatedBy } }
  }
}
"""

START = """
mutation Start($process: ProcessKind!, $key: String!) {
  startProcess(process: $process, idempotencyKey: $key) {
    ... on StartProcessSuccess { allowed reason ticket replayed processesUsed kindStarts }
  }
}
"""

KIND_QUOTA = """
query Quota($process: ProcessKind!) {
  quota(process: $process) { process allowed reason processesUsed kindStarts paused monthlyCap }
}
"""

BY_KIND = """
query {
  creditUsage {
    ... on CreditUsage {
      processes {
        used
        byKind { process starts share dailyPace lastStartedAt paused monthlyCap capRemaining }
      }
    }
  }
}
"""


async def set_control(
    gql: GraphQLClient, process: str, *, paused: bool = False, cap: int | None = None, as_: str = ADMIN
) -> dict[str, Any]:
    body = await gql.post(SET_CONTROL, {"process": process, "paused": paused, "cap": cap}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["setProcessControl"]
    return result


async def start(gql: GraphQLClient, key: str, idempotency_key: str, process: str) -> dict[str, Any]:
    body = await gql.post(START, {"process": process, "key": idempotency_key}, key=key)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["startProcess"]
    return result


async def kind_quota(gql: GraphQLClient, key: str, process: str) -> dict[str, Any]:
    body = await gql.post(KIND_QUOTA, {"process": process}, key=key)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["quota"]
    return result


async def by_kind(gql: GraphQLClient) -> dict[str, dict[str, Any]]:
    body = await gql.post(BY_KIND, as_=ADMIN)
    assert "errors" not in body, body
    kinds = body["data"]["creditUsage"]["processes"]["byKind"]
    assert [kind["process"] for kind in kinds] == [kind.value for kind in ProcessKind]
    return {kind["process"]: kind for kind in kinds}


async def kind_count(process: ProcessKind, period: str = "2026-11") -> int:
    row = await ProcessCounter.get_or_none(tenant__slug="acme", period=period)
    return row.started(process) if row else 0


async def test_a_paused_kind_is_denied_alone_at_once_and_starts_again_when_unpaused(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    assert (await kind_quota(gql, key, "PRODUCT_SYNC"))["allowed"] is True  # now cached

    done = await set_control(gql, "PRODUCT_SYNC", paused=True)

    assert done["__typename"] == "SetProcessControlSuccess"
    assert done["control"] == {
        "process": "PRODUCT_SYNC",
        "paused": True,
        "monthlyCap": None,
        "updatedAt": "2026-11-23T12:00:00+00:00",
        "updatedBy": ADMIN,
    }
    # The cached quota answer was dropped: the pause shows in the next one.
    paused = await kind_quota(gql, key, "PRODUCT_SYNC")
    assert (paused["allowed"], paused["reason"], paused["paused"]) == (False, "PROCESS_PAUSED", True)
    other = await kind_quota(gql, key, "STOCK_UPDATE")
    assert (other["allowed"], other["reason"], other["paused"]) == (True, None, False)

    denied = await start(gql, key, "sync-1", "PRODUCT_SYNC")
    allowed = await start(gql, key, "stock-1", "STOCK_UPDATE")
    assert (denied["allowed"], denied["reason"], denied["ticket"]) == (False, "PROCESS_PAUSED", None)
    assert (allowed["allowed"], allowed["kindStarts"], allowed["processesUsed"]) == (True, 1, 1)
    assert await kind_count(ProcessKind.PRODUCT_SYNC) == 0
    assert not await ProcessStart.filter(idempotency_key="sync-1").exists()

    await set_control(gql, "PRODUCT_SYNC", paused=False)

    assert (await kind_quota(gql, key, "PRODUCT_SYNC"))["allowed"] is True
    again = await start(gql, key, "sync-1", "PRODUCT_SYNC")  # the denied key was not consumed
    assert (again["allowed"], again["replayed"], again["kindStarts"], again["processesUsed"]) == (
        True, False, 1, 2,
    )  # fmt: skip


async def test_a_capped_kind_starts_up_to_its_cap_and_more_once_raised(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    await set_control(gql, "ORDER_EXPORT", cap=3)

    counted = [await start(gql, key, f"export-{n}", "ORDER_EXPORT") for n in range(3)]
    fourth = await start(gql, key, "export-3", "ORDER_EXPORT")
    other = await start(gql, key, "invoices-1", "INVOICE_IMPORT")

    assert [started["kindStarts"] for started in counted] == [1, 2, 3]
    assert all(started["allowed"] for started in counted)
    assert (fourth["allowed"], fourth["reason"], fourth["kindStarts"]) == (False, "PROCESS_CAP_REACHED", 3)
    assert (other["allowed"], other["processesUsed"]) == (True, 4)
    decision = await kind_quota(gql, key, "ORDER_EXPORT")
    assert decision == {
        "process": "ORDER_EXPORT",
        "allowed": False,
        "reason": "PROCESS_CAP_REACHED",
        "processesUsed": 4,
        "kindStarts": 3,
        "paused": False,
        "monthlyCap": 3,
    }
    assert (await kind_quota(gql, key, "INVOICE_IMPORT"))["allowed"] is True

    await set_control(gql, "ORDER_EXPORT", cap=5)

    assert (await kind_quota(gql, key, "ORDER_EXPORT"))["allowed"] is True
    more = [await start(gql, key, f"export-{n}", "ORDER_EXPORT") for n in range(3, 6)]
    assert [(started["allowed"], started["reason"]) for started in more] == [
        (True, None), (True, None), (False, "PROCESS_CAP_REACHED"),
    ]  # fmt: skip
    assert await kind_count(ProcessKind.ORDER_EXPORT) == 5
    assert await ProcessStart.filter(process=ProcessKind.ORDER_EXPORT).count() == 5


async def test_a_cap_of_zero_starts_none_and_leaving_the_cap_out_removes_it(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    await set_control(gql, "PRICE_UPDATE", cap=0)

    first = await start(gql, key, "price-1", "PRICE_UPDATE")  # the period's first start: no counter yet

    assert (first["allowed"], first["reason"], first["processesUsed"]) == (False, "PROCESS_CAP_REACHED", 0)
    await set_control(gql, "PRICE_UPDATE")  # a full replacement: no cap, not paused
    assert (await start(gql, key, "price-1", "PRICE_UPDATE"))["allowed"] is True
    assert await ProcessControl.filter(process=ProcessKind.PRICE_UPDATE).count() == 1


async def test_over_the_credit_limit_every_kind_is_denied_for_credits_first(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await set_control(gql, "PRODUCT_SYNC", paused=True)
    await set_control(gql, "STOCK_UPDATE", cap=0)
    await report(gql, key, clock.now(), variants=5000)

    for process in ("PRODUCT_SYNC", "STOCK_UPDATE", "CUSTOMER_SYNC"):
        decision = await kind_quota(gql, key, process)
        started = await start(gql, key, f"k-{process}", process)
        assert (decision["allowed"], decision["reason"]) == (False, "CREDITS_EXCEEDED"), process
        assert (started["allowed"], started["reason"]) == (False, "CREDITS_EXCEEDED"), process
    assert not await ProcessStart.exists()


async def test_a_retry_of_a_counted_start_still_replays_after_its_kind_was_paused(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    first = await start(gql, key, "sync-1", "CUSTOMER_SYNC")
    await set_control(gql, "CUSTOMER_SYNC", paused=True)

    retry = await start(gql, key, "sync-1", "CUSTOMER_SYNC")

    assert (retry["allowed"], retry["replayed"], retry["ticket"]) == (True, True, first["ticket"])
    assert (retry["reason"], retry["kindStarts"]) == (None, 1)
    assert await kind_count(ProcessKind.CUSTOMER_SYNC) == 1


async def test_only_admins_may_set_a_control(gql: GraphQLClient, demo: SeedResult) -> None:
    member = await set_control(gql, "PRODUCT_SYNC", paused=True, as_=MEMBER)
    as_connector = await gql.post(
        SET_CONTROL, {"process": "PRODUCT_SYNC", "paused": True}, key=demo.connector_keys["acme"]
    )
    anonymous = await gql.post(SET_CONTROL, {"process": "PRODUCT_SYNC", "paused": True})

    assert (member["__typename"], member["code"]) == ("NotAdminError", "NOT_ADMIN")
    assert as_connector["data"]["setProcessControl"] is None
    assert as_connector["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not await ProcessControl.exists()
    assert not await AuditEntry.filter(action="process_control.set").exists()


async def test_a_cap_outside_its_range_is_refused_and_changes_nothing(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    for bad in (-1, 1_000_000_001):
        refused = await set_control(gql, "PRODUCT_SYNC", cap=bad)
        assert (refused["__typename"], refused["code"], refused["field"]) == (
            "InvalidInputError", "INVALID_INPUT", "monthlyCap",
        ), bad  # fmt: skip
    beyond_int = await gql.post(
        SET_CONTROL, {"process": "PRODUCT_SYNC", "paused": False, "cap": 2**40}, as_=ADMIN
    )
    unknown_kind = await gql.post(
        SET_CONTROL, {"process": "NOPE\x00" + "x" * 10_000, "paused": True}, as_=ADMIN
    )

    for body in (beyond_int, unknown_kind):
        assert body["data"] is None
        assert body["errors"][0].get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR"
    assert (await set_control(gql, "PRODUCT_SYNC", cap=1_000_000_000))["control"][
        "monthlyCap"
    ] == 1_000_000_000
    assert await ProcessControl.all().count() == 1


async def test_each_change_is_audited_with_the_old_and_new_values(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await set_control(gql, "DELIVERY_NOTES", cap=10)
    await set_control(gql, "DELIVERY_NOTES", paused=True, cap=10)

    entries = await AuditEntry.filter(action="process_control.set").order_by("details")
    assert len(entries) == 2
    details = sorted((entry.details for entry in entries), key=lambda d: d["old"] is not None)
    assert details == [
        {"process": "DELIVERY_NOTES", "old": None, "new": {"paused": False, "monthlyCap": 10}},
        {
            "process": "DELIVERY_NOTES",
            "old": {"paused": False, "monthlyCap": 10},
            "new": {"paused": True, "monthlyCap": 10},
        },
    ]
    assert {entry.actor for entry in entries} == {ADMIN}
    control = await ProcessControl.get(process=ProcessKind.DELIVERY_NOTES)
    assert {entry.subject_id for entry in entries} == {str(control.id)}


async def test_by_kind_shows_each_kinds_starts_share_pace_last_start_and_control(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    clock.set(dt.datetime(2026, 10, 20, 9, tzinfo=dt.UTC))
    await start(gql, key, "october", "STOCK_UPDATE")  # last period: not this one's last start
    clock.set(dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC))
    await start(gql, key, "p-1", "PRODUCT_SYNC")
    clock.set(dt.datetime(2026, 11, 23, 11, 30, tzinfo=dt.UTC))
    await start(gql, key, "p-2", "PRODUCT_SYNC")
    await start(gql, key, "p-3", "PRODUCT_SYNC")
    clock.set(dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC))
    await start(gql, key, "i-1", "INVOICE_IMPORT")
    await set_control(gql, "PRODUCT_SYNC", cap=10)
    await set_control(gql, "STOCK_UPDATE", paused=True)

    kinds = await by_kind(gql)

    # 22.5 days since November 1: 3 / 22.5 = 0.13 a day, 1 / 22.5 = 0.04.
    assert kinds["PRODUCT_SYNC"] == {
        "process": "PRODUCT_SYNC",
        "starts": 3,
        "share": "75.00",
        "dailyPace": "0.13",
        "lastStartedAt": "2026-11-23T11:30:00+00:00",
        "paused": False,
        "monthlyCap": 10,
        "capRemaining": 7,
    }
    assert kinds["INVOICE_IMPORT"] == {
        "process": "INVOICE_IMPORT",
        "starts": 1,
        "share": "25.00",
        "dailyPace": "0.04",
        "lastStartedAt": "2026-11-23T12:00:00+00:00",
        "paused": False,
        "monthlyCap": None,
        "capRemaining": None,
    }
    assert kinds["STOCK_UPDATE"] == {
        "process": "STOCK_UPDATE",
        "starts": 0,
        "share": "0.00",
        "dailyPace": "0.00",
        "lastStartedAt": None,
        "paused": True,
        "monthlyCap": None,
        "capRemaining": None,
    }
    shares = [Decimal(kind["share"]) for kind in kinds.values()]
    assert sum(shares) == Decimal("100.00")


async def test_by_kind_without_any_start_is_all_zero_and_costs_nothing_unless_selected(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    kinds = await by_kind(gql)
    assert {(kind["starts"], kind["share"], kind["lastStartedAt"]) for kind in kinds.values()} == {
        (0, "0.00", None)
    }

    plain = "{ creditUsage { ... on CreditUsage { processes { used } } } }"
    await gql.post(plain, as_=ADMIN)  # warms the plan cache
    with count_queries() as without:
        await gql.post(plain, as_=ADMIN)
    with count_queries() as with_kinds:
        await gql.post(BY_KIND, as_=ADMIN)
    assert not [statement for statement in without.statements if "process_start" in statement]
    # The kinds' last starts, in one statement; their counts and controls come with the usage.
    assert with_kinds.count == without.count + 1, with_kinds.statements
    assert len([statement for statement in with_kinds.statements if "process_start" in statement]) == 1


async def test_the_quota_check_costs_no_statement_more_with_controls(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await set_control(gql, "PRODUCT_SYNC", cap=100)
    await kind_quota(gql, key, "PRODUCT_SYNC")  # loads the caches

    with count_queries() as queries:
        decision = await kind_quota(gql, key, "PRODUCT_SYNC")

    assert (decision["allowed"], decision["monthlyCap"]) == (True, 100)
    assert queries.count == 1, queries.statements  # the key and its tenant only


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_a_pause_on_one_instance_shows_in_the_quota_of_another_through_redis(
    settings: Settings, clock: FrozenClock, demo: SeedResult, gql: GraphQLClient
) -> None:
    key = {"Authorization": f"Bearer {demo.connector_keys['acme']}"}
    admin = {"Authorization": f"Bearer {await gql.token_for(ADMIN)}"}
    async with instances_sharing_redis(settings, clock) as (first, second):

        async def allowed_on_second() -> bool:
            answer = await post_to(second, QUOTA, {"process": "PRODUCT_SYNC"}, key)
            allowed: bool = answer["data"]["quota"]["allowed"]
            return allowed

        assert await allowed_on_second() is True  # cached on the second instance
        done = await post_to(first, SET_CONTROL, {"process": "PRODUCT_SYNC", "paused": True}, admin)
        assert done["data"]["setProcessControl"]["control"]["paused"] is True

        for _ in range(100):  # the invalidation crosses Redis asynchronously
            allowed = await allowed_on_second()
            if not allowed:
                break
            await asyncio.sleep(0.02)
    assert allowed is False
