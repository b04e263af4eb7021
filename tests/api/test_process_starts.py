"""startProcess: decide and count in one step; retries count once; denials count nothing; the vendor
is told once per period about processes beyond the allowance."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from app.auth import scopes
from app.clock import FrozenClock
from app.models.billing import PlanSubscription
from app.models.enums import PlanSubscriptionStatus
from app.models.metering import AlertKind, LimitAlert, ProcessCounter, ProcessStart
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant
from app.observability import REGISTRY
from app.seed import SeedResult
from tests.api.test_quota import key_with_scopes, quota
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient, count_queries
from tests.emails import about, alert_subject, html_of, language_of, number, says, subject_of, text_of
from tests.smtp import SmtpServer

START = """
mutation Start($process: ProcessKind!, $key: String!) {
  startProcess(process: $process, idempotencyKey: $key) {
    __typename
    ... on Error { code message field }
    ... on StartProcessSuccess {
      process allowed reason ticket replayed processesUsed processAllowance creditsLimit
      period { name start end }
    }
  }
}
"""

ALLOWANCE = 159_600  # acme: (3,000 + 1,000 credits) x 30 days + 33%
NOVEMBER = {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"}
OPS = "ops@tollgate.local"


async def start(
    gql: GraphQLClient, key: str, idempotency_key: str, process: str = "PRODUCT_SYNC"
) -> dict[str, Any]:
    body = await gql.post(START, {"process": process, "key": idempotency_key}, key=key)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["startProcess"]
    return result


async def counter(slug: str, period: str = "2026-11") -> int:
    row = await ProcessCounter.get_or_none(tenant__slug=slug, period=period)
    return row.used if row else 0


async def test_a_start_is_counted_and_gets_a_ticket(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now())

    started = await start(gql, key, "sync-1", "INVOICE_IMPORT")

    assert started["__typename"] == "StartProcessSuccess"
    assert (started["allowed"], started["reason"], started["replayed"]) == (True, None, False)
    assert started["ticket"]
    assert (started["processesUsed"], started["processAllowance"], started["period"]) == (
        1,
        ALLOWANCE,
        NOVEMBER,
    )
    assert await counter("acme") == 1
    assert (await quota(gql, key))["processesUsed"] == 1


async def test_a_retry_with_the_same_key_counts_once_and_returns_the_same_ticket(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    first = await start(gql, key, "sync-1")
    retry = await start(gql, key, "sync-1")

    assert retry["ticket"] == first["ticket"]
    assert (retry["allowed"], retry["replayed"]) == (True, True)
    assert await counter("acme") == 1
    assert await ProcessStart.filter(tenant__slug="acme").count() == 1


async def test_a_retry_in_the_next_period_answers_the_period_the_start_was_counted_in(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    first = await start(gql, key, "late-retry")
    clock.set(dt.datetime(2026, 12, 1, 0, 0, 5, tzinfo=dt.UTC))

    retry = await start(gql, key, "late-retry")
    fresh = await start(gql, key, "december")

    assert (retry["replayed"], retry["ticket"], retry["period"]) == (True, first["ticket"], NOVEMBER)
    assert (fresh["replayed"], fresh["period"]["name"]) == (False, "2026-12")
    assert (await counter("acme"), await counter("acme", "2026-12")) == (1, 1)


def started(process: str) -> float:
    return REGISTRY.get_sample_value("tollgate_processes_started_total", {"process": process}) or 0


async def test_only_counted_starts_reach_the_processes_started_metric(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    before = started("DELIVERY_NOTES")

    await start(gql, key, "notes-1", "DELIVERY_NOTES")
    await start(gql, key, "notes-1", "DELIVERY_NOTES")  # a retry
    await report(gql, key, clock.now(), variants=10_000)
    await start(gql, key, "notes-2", "DELIVERY_NOTES")  # denied

    assert started("DELIVERY_NOTES") - before == 1


async def test_the_same_key_for_another_process_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    await start(gql, key, "sync-1", "PRODUCT_SYNC")

    reused = await start(gql, key, "sync-1", "STOCK_UPDATE")

    assert (reused["__typename"], reused["field"]) == ("IdempotencyKeyReusedError", "idempotencyKey")
    assert await counter("acme") == 1


async def test_keys_are_per_tenant(gql: GraphQLClient, demo: SeedResult) -> None:
    acme = await start(gql, demo.connector_keys["acme"], "sync-1")
    nova = await start(gql, demo.connector_keys["nova"], "sync-1")

    assert acme["ticket"] != nova["ticket"]
    assert (await counter("acme"), await counter("nova")) == (1, 1)


async def test_over_the_credit_limit_a_start_is_denied_and_not_counted(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await start(gql, key, "before")
    await report(gql, key, clock.now(), variants=5000)

    denied = await start(gql, key, "sync-2")

    assert (denied["allowed"], denied["reason"], denied["ticket"]) == (False, "CREDITS_EXCEEDED", None)
    assert denied["processesUsed"] == 1
    assert await counter("acme") == 1
    # The key was not consumed: once credits are back within the limit, the same start goes through.
    await report(gql, key, clock.now() + dt.timedelta(minutes=1), variants=340)
    retried = await start(gql, key, "sync-2")
    assert (retried["allowed"], retried["replayed"], retried["processesUsed"]) == (True, False, 2)


async def test_a_denied_first_start_of_a_period_leaves_the_count_at_zero(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), variants=5000)

    denied = await start(gql, key, "sync-1")

    assert (denied["allowed"], denied["processesUsed"]) == (False, 0)
    assert await counter("acme") == 0
    assert not await ProcessStart.exists()


async def test_an_inactive_plan_starts_nothing(gql: GraphQLClient, demo: SeedResult) -> None:
    acme = await Tenant.get(slug="acme")
    await PlanSubscription.filter(tenant_id=acme.id).update(status=PlanSubscriptionStatus.SUSPENDED)

    denied = await start(gql, demo.connector_keys["acme"], "sync-1")

    assert (denied["allowed"], denied["reason"], denied["ticket"], denied["period"]) == (
        False, "PLAN_INACTIVE", None, NOVEMBER,
    )  # fmt: skip
    assert await counter("acme") == 0
    assert not await ProcessStart.exists()


async def test_processes_beyond_the_allowance_start_and_alert_admins_and_operations_once_per_period(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    key = demo.connector_keys["acme"]
    acme = await Tenant.get(slug="acme")
    await ProcessCounter.create(tenant=acme, period="2026-11", used=ALLOWANCE - 1)

    at_allowance = await start(gql, key, "p-1")
    beyond = [await start(gql, key, f"p-{n}") for n in range(2, 5)]

    assert at_allowance["processesUsed"] == ALLOWANCE
    assert all(started["allowed"] and started["reason"] == "BEYOND_ALLOWANCE" for started in beyond)
    assert await counter("acme") == ALLOWANCE + 3
    await smtp_server.dispatcher(clock).run_once()
    to_ops = smtp_server.inbox.to(OPS)
    assert len(to_ops) == 1
    # The operations address reads the vendor-facing text, in English.
    assert "beyond the monthly allowance (2026-11)" in subject_of(to_ops[0])
    assert "159,601" in text_of(to_ops[0])
    assert "acme" in text_of(to_ops[0])
    assert "159,601" in html_of(to_ops[0])
    # The customer's admins read the customer-facing one, in their language.
    to_admin = smtp_server.inbox.to("admin@acme.test")
    locale = language_of(to_admin[0])
    passed = about(
        to_admin, "%(tenant_name)s started more processes than its plan includes this month (%(period)s)"
    )
    assert len(passed) == 1
    assert number(ALLOWANCE + 1, locale) in text_of(passed[0])
    assert says(locale, "Nothing is blocked: your processes keep running as usual.") in text_of(passed[0])
    assert not about(to_admin, "%(tenant_name)s: processes beyond the monthly allowance (%(period)s)")
    assert alert_subject(locale, "Processes this billing period", 100) in [subject_of(m) for m in to_admin]
    assert smtp_server.inbox.to("member@acme.test") == []

    # The next period starts a new count, and a new "once".
    clock.set(dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC))
    await ProcessCounter.create(tenant=acme, period="2026-12", used=ALLOWANCE)
    await start(gql, key, "december-1")
    assert await OutboxEmail.filter(to_address=OPS).count() == 2


async def test_an_idempotency_key_must_be_printable_and_short(gql: GraphQLClient, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    for bad in ("", "with space", "x" * 129):
        result = await start(gql, key, bad)
        assert (result["__typename"], result["field"]) == ("InvalidInputError", "idempotencyKey"), bad
    assert await counter("acme") == 0


async def test_starting_needs_the_process_start_scope(gql: GraphQLClient, demo: SeedResult) -> None:
    checker = await key_with_scopes("acme", scopes.QUOTA_CHECK)

    as_user = await gql.post(START, {"process": "PRODUCT_SYNC", "key": "k"}, as_="admin@acme.test")
    wrong_scope = await gql.post(START, {"process": "PRODUCT_SYNC", "key": "k"}, key=checker)
    unknown_kind = await gql.post(START, {"process": "NOPE", "key": "k"}, key=demo.connector_keys["acme"])

    assert as_user["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert wrong_scope["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert unknown_kind["data"] is None
    assert await counter("acme") == 0


async def test_a_start_runs_a_constant_number_of_queries(gql: GraphQLClient, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    await start(gql, key, "warm-up")  # creates the period's counter

    with count_queries() as queries:
        started = await start(gql, key, "sync-1")

    assert started["allowed"] is True
    # The key, the start's INSERT (which returns its ticket), the counter's UPDATE, which returns the
    # counts (the limits are cached).
    assert queries.count == 3, "\n".join(queries.statements)
    # Deciding and counting are one statement: the credit condition and the kind's control (its pause,
    # its cap against the kind's column) sit in the counter's UPDATE.
    (update,) = [
        statement for statement in queries.statements if statement.lstrip().upper().startswith("UPDATE")
    ]
    assert '"used"="used"+' in update
    assert '"credits">' in update
    assert '"product_sync"="product_sync"+1' in update
    assert "process_control" in update


async def test_a_retry_and_a_denial_run_a_constant_number_of_queries(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await start(gql, key, "sync-1")

    with count_queries() as queries:
        retry = await start(gql, key, "sync-1")

    assert retry["replayed"] is True
    # The key, the start's INSERT (which returns nothing: the key was counted), one read of the first
    # start with its period's counter.
    assert queries.count == 3, "\n".join(queries.statements)

    await report(gql, key, clock.now(), variants=10_000)
    with count_queries() as queries:
        denied = await start(gql, key, "sync-2")

    assert (denied["allowed"], denied["reason"]) == (False, "CREDITS_EXCEEDED")
    # The key, the start's INSERT, the counter's UPDATE (which changes nothing), the read of why, the
    # start's DELETE.
    assert queries.count == 5, "\n".join(queries.statements)


async def test_a_thousand_concurrent_starts_near_the_allowance_count_each_key_exactly_once(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    acme = await Tenant.get(slug="acme")
    initial = ALLOWANCE - 300
    await ProcessCounter.create(tenant=acme, period="2026-11", used=initial)
    # 1,000 calls over 800 keys: 200 of them are retries racing their first attempt.
    keys = [f"burst-{n % 800}" for n in range(1000)]

    began = time.perf_counter()
    results = await asyncio.gather(*(start(gql, key, idempotency_key) for idempotency_key in keys))
    elapsed = time.perf_counter() - began

    assert all(result["allowed"] for result in results)
    tickets_by_key: dict[str, set[str]] = {}
    for idempotency_key, result in zip(keys, results, strict=True):
        tickets_by_key.setdefault(idempotency_key, set()).add(result["ticket"])
    assert all(len(tickets) == 1 for tickets in tickets_by_key.values())
    assert len({ticket for tickets in tickets_by_key.values() for ticket in tickets}) == 800
    assert sum(not result["replayed"] for result in results) == 800
    assert await counter("acme") == initial + 800
    assert await ProcessStart.filter(tenant_id=acme.id).count() == 800
    # The counter passed 100% of the allowance once: one alert, one e-mail to operations.
    processes_alerts = await LimitAlert.filter(tenant_id=acme.id, kind=AlertKind.PROCESSES)
    assert [(alert.threshold, alert.used) for alert in processes_alerts] == [(100, ALLOWANCE)]
    assert await OutboxEmail.filter(to_address=OPS).count() == 1
    print(f"1000 concurrent startProcess calls: {elapsed:.2f} s")  # a figure for the report (pytest -s)


async def test_concurrent_starts_over_the_credit_limit_all_fail_and_count_nothing(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), variants=10_000)

    results = await asyncio.gather(*(start(gql, key, f"k-{n}") for n in range(100)))

    assert not any(result["allowed"] for result in results)
    assert {result["reason"] for result in results} == {"CREDITS_EXCEEDED"}
    assert await counter("acme") == 0
    assert not await ProcessStart.exists()
