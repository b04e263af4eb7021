"""Starting a sync process: the decision and the count in one atomic step (docs/design.md).

``UPDATE process_counter SET used = used + 1, <kind> = <kind> + 1 WHERE tenant = ? AND period = ?
AND the tenant's credits are within the limit AND the kind is neither paused nor at its monthly cap``
decides and counts at once: concurrent starts are serialised by the database on the counter row, none
is lost or counted twice, none passes a kind's cap (issue 15), and a denied start changes nothing.
A denied start then reads why, in one statement: the credit limit first (it stops every kind), then
the kind's pause, then its cap. An idempotency key makes a retried start count once and return the
same ticket (a retry of a counted start is answered even after its kind was paused).

Processes beyond the allowance (credits x 30 + 33%) still start; the first one of the period
e-mails the tenant's admins and the vendor's operations address (seed 002: "nos pondremos en
contacto"), once per period thanks to the outbox's dedupe key.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tortoise.exceptions import DoesNotExist
from tortoise.transactions import in_transaction

from app.broadcast import Broadcaster
from app.models.metering import AlertKind, AlertState, LimitAlert, ProcessCounter, ProcessKind, ProcessStart
from app.models.tenancy import Tenant
from app.notifications import emails
from app.notifications.outbox import composed, enqueue
from app.observability import PROCESSES_STARTED, labelled
from app.services import alert_settings, alerts, sql, webhook_events
from app.services.credits import process_allowance
from app.services.figures_cache import FiguresCache, usage_changed
from app.services.idempotency import IdempotencyKeyReused, validate_key
from app.services.periods import BillingPeriod, period_containing, period_named
from app.services.plan_cache import PlanCache, current_plan
from app.services.quota import QuotaReason, denial, record_decision
from app.services.usage import Control, current_usage
from app.services.webhook_events import EventType


@dataclass(frozen=True, slots=True)
class StartOutcome:
    process: ProcessKind
    allowed: bool
    reason: QuotaReason | None
    ticket: uuid.UUID | None
    replayed: bool
    processes_used: int
    process_allowance: int
    credits_limit: int
    period: BillingPeriod
    alerts: list[LimitAlert] = field(default_factory=list)
    kind_starts: int = 0  # the kind's starts counted in the period (this one included)


# A cap no count reaches: what a kind without a row, or without a cap, is compared with.
_NO_CAP = 9_223_372_036_854_775_807


@cache
def _count_statement(process: ProcessKind) -> str:
    """The one conditional UPDATE of a start of ``process``: +1 in all and for the kind, unless the
    tenant's credits are above the limit, the kind is paused (its bound is -1) or its column reached the
    cap. The column's name comes from the enum, never from input. The control is a scalar subquery
    (never turned into a join): on PostgreSQL a start that waited for the row lock re-checks the
    condition against the counter as the previous start left it, so concurrent starts never pass a cap."""
    column = ProcessCounter.column_of(ProcessKind(process))
    return (
        f'UPDATE process_counter SET "used"="used"+1, "{column}"="{column}"+1'
        " WHERE tenant_id = {0} AND period = {1}"
        ' AND tenant_id NOT IN (SELECT tenant_id FROM tenant_usage WHERE tenant_id = {0} AND "credits">{2})'
        f' AND "{column}" < COALESCE((SELECT CASE WHEN paused THEN -1 ELSE monthly_cap END'
        " FROM process_control WHERE tenant_id = {0} AND process = {3}), " + str(_NO_CAP) + ")"
        f' RETURNING "used", "{column}"'
    )


@cache
def _why_statement(process: ProcessKind) -> str:
    """What a denied start reads, in one statement: the credits, the counter (total and kind; NULL: the
    period has no counter yet) and the kind's control."""
    column = ProcessCounter.column_of(ProcessKind(process))
    return (
        'SELECT (SELECT "credits" FROM tenant_usage WHERE tenant_id = {0}),'
        f' c."used", c."{column}", pc.paused, pc.monthly_cap'
        " FROM (SELECT 1) AS one"
        " LEFT JOIN process_counter AS c ON c.tenant_id = {0} AND c.period = {1}"
        " LEFT JOIN process_control AS pc ON pc.tenant_id = {0} AND pc.process = {2}"
    )


async def _count(
    tenant_id: uuid.UUID, period: str, credits_limit: int, process: ProcessKind
) -> tuple[int, int] | None:
    """Count a start if it may: the period's total and the kind's starts after it, or ``None`` (denied, or
    no counter for the period yet)."""
    rows = await sql.fetch_all(_count_statement(process), tenant_id, period, credits_limit, process.value)
    if not rows:
        return None
    used, kind_starts = rows[0].values()
    return int(used), int(kind_starts)


@dataclass(frozen=True, slots=True)
class _Denial:
    reason: QuotaReason | None  # None: no reason holds any longer (it changed meanwhile): count again
    has_counter: bool
    used: int
    kind_starts: int


def denial_of(row: Sequence[Any], credits_limit: int) -> _Denial:
    """Why a start was denied (``quota.denial``'s order). ``row``: credits (NULL: nothing reported), the
    counter's total and kind column (NULL: no counter yet), the control's paused and cap (NULL: none)."""
    credits, used, kind_starts, paused, cap = row
    count = int(kind_starts or 0)
    control = Control(bool(paused), None if cap is None else int(cap))
    reason = denial(
        credits_used=int(credits or 0), credits_limit=credits_limit, control=control, kind_starts=count
    )
    return _Denial(reason, used is not None, int(used or 0), count)


async def _why_denied(tenant_id: uuid.UUID, period: str, credits_limit: int, process: ProcessKind) -> _Denial:
    return denial_of(
        await sql.fetch_one(_why_statement(process), tenant_id, period, process.value), credits_limit
    )


# The start under its idempotency key: its id when it is new; nothing when the key was counted before (a
# retry), which then reads the first start.
_INSERT_START = (
    "INSERT INTO process_start (id, tenant_id, idempotency_key, process, period, started_at)"
    " VALUES ({0}, {1}, {2}, {3}, {4}, {5})"
    " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id"
)
_DELETE_START = "DELETE FROM process_start WHERE id = {0}"


@cache
def _first_start_statement(process: ProcessKind) -> str:
    """What a retry reads, in one statement: the first start under the key (its ticket, kind and period)
    and its period's counter as committed (total and ``process``'s column)."""
    column = ProcessCounter.column_of(ProcessKind(process))
    return (
        f'SELECT s.id, s.process, s.period, c."used", c."{column}" FROM process_start AS s'
        " LEFT JOIN process_counter AS c ON c.tenant_id = s.tenant_id AND c.period = s.period"
        " WHERE s.tenant_id = {0} AND s.idempotency_key = {1}"
    )


async def _replayed(
    tenant: Tenant, process: ProcessKind, idempotency_key: str, allowance: int, limit: int
) -> StartOutcome:
    """The answer to a retry: the first start's ticket and counts, in the period it was counted in (a
    retry may come after the period changed)."""
    rows = await sql.fetch_rows(_first_start_statement(process), tenant.id, idempotency_key)
    if not rows:  # the first start was deleted since (its tenant was): as ``Model.get`` answers
        raise DoesNotExist(ProcessStart)
    ticket, kind, period, used, kind_starts = rows[0]
    if kind != process.value:
        raise IdempotencyKeyReused(field="idempotencyKey")
    counted_in = period_named(period, tenant.billing_anchor_day)
    return StartOutcome(
        process, True, None, uuid.UUID(str(ticket)), True, int(used or 0), allowance, limit, counted_in,
        kind_starts=int(kind_starts or 0),
    )  # fmt: skip


async def _counted(tenant_id: uuid.UUID, period: str, process: ProcessKind) -> tuple[int, int]:
    """The period's total and the kind's starts, as committed."""
    counter = await ProcessCounter.get_or_none(tenant_id=tenant_id, period=period)
    return (counter.used, counter.started(process)) if counter else (0, 0)


_ATTEMPTS = 3  # a denial whose reason vanished before it was read (a cap raised meanwhile) counts again


async def start_process(
    tenant: Tenant,
    process: ProcessKind,
    idempotency_key: str,
    *,
    now: dt.datetime,
    ops_email: str,
    broadcaster: Broadcaster | None = None,
    plan_cache: PlanCache | None = None,
    figures_cache: FiguresCache | None = None,
) -> StartOutcome:
    """Decide and count a start. Two statements when allowed (the plan cached): the start's INSERT, which
    returns its ticket unless the key was counted before (a retry then reads the first start), and the
    counter's UPDATE, which returns the counts. A period's first start, and a denied start, read why the
    UPDATE changed nothing (a period's first start then creates the counter and counts)."""
    validate_key(idempotency_key)
    # A cached plan is only ever stricter than the truth (see app.services.plan_cache).
    plan = await current_plan(tenant, now=now, cache=plan_cache)
    if plan is None:
        record_decision(False, QuotaReason.PLAN_INACTIVE)
        current = period_containing(now, tenant.billing_anchor_day)
        used, kind_starts = await _counted(tenant.id, current.name, process)
        return StartOutcome(
            process, False, QuotaReason.PLAN_INACTIVE, None, False, used, 0, 0, current,
            kind_starts=kind_starts,
        )  # fmt: skip
    period = plan.period
    limit = plan.effective_limits.credits
    allowance = process_allowance(limit, plan.subscription.plan.process_buffer_percent)
    ticket = uuid.uuid4()
    async with in_transaction():
        inserted = await sql.fetch_all(
            _INSERT_START, ticket, tenant.id, idempotency_key, process.value, period.name, now
        )
        if not inserted:
            return await _replayed(tenant, process, idempotency_key, allowance, limit)
        counts = await _count(tenant.id, period.name, limit, process)
        attempts = 1
        while counts is None:
            denial = await _why_denied(tenant.id, period.name, limit, process)
            if denial.reason is not None or attempts == _ATTEMPTS:
                await sql.execute(_DELETE_START, ticket)  # a denied start leaves no trace to replay
                # Without a reason after the last attempt (the state kept changing): as over the limit.
                reason = denial.reason or QuotaReason.CREDITS_EXCEEDED
                record_decision(False, reason)
                return StartOutcome(
                    process, False, reason, None, False, denial.used, allowance, limit, period,
                    kind_starts=denial.kind_starts,
                )  # fmt: skip
            if not denial.has_counter:
                # The period's first start: create its counter, then decide again.
                await ProcessCounter.bulk_create(
                    [ProcessCounter(tenant_id=tenant.id, period=period.name, used=0)], ignore_conflicts=True
                )
            counts = await _count(tenant.id, period.name, limit, process)
            attempts += 1
        used, kind_starts = counts
        crossings = await alert_settings.counter_crossings(tenant.id, used, allowance)
        raised: list[LimitAlert] = []
        if crossings:
            raised = await alerts.record(
                tenant.id,
                [
                    alerts.Transition(AlertKind.PROCESSES, t, AlertState.TRIGGERED, used, allowance)
                    for t in crossings
                ],
                now=now,
                period=period.name,
            )
        if used == allowance + 1:
            await _tell_vendor(
                tenant, used=used, allowance=allowance, period=period.name, now=now, ops_email=ops_email
            )
            await webhook_events.emit(
                EventType.PROCESS_ALLOWANCE_PASSED,
                tenant_id=tenant.id,
                data={
                    "environment": tenant.slug,
                    "period": period.name,
                    "started": used,
                    "allowance": allowance,
                },
                now=now,
            )
    # After the commit, never before: the counter changed, and maybe alerts were raised.
    await usage_changed(tenant.id, cache=figures_cache, broadcaster=broadcaster)
    await alerts.publish(broadcaster, raised)
    beyond = QuotaReason.BEYOND_ALLOWANCE if used > allowance else None
    record_decision(True, beyond)
    labelled(PROCESSES_STARTED, process.value).inc()
    return StartOutcome(
        process, True, beyond, ticket, False, used, allowance, limit, period, raised, kind_starts
    )


async def _tell_vendor(
    tenant: Tenant, *, used: int, allowance: int, period: str, now: dt.datetime, ops_email: str
) -> None:
    """Once per period (dedupe key): the operations address and the tenant's admins."""
    usage = await current_usage(tenant.id)
    context = {
        "tenant_slug": tenant.slug,
        "tenant_name": tenant.name,
        "used": used,
        "allowance": allowance,
        "period": period,
        "credits_used": usage.credits,
    }
    dedupe = f"process-allowance:{tenant.id}:{period}"
    # The operations address reads the vendor-facing text; the admins the customer-facing one.
    vendor = emails.operations(ops_email)
    queued = [composed(emails.ALLOWANCE_PASSED_VENDOR, vendor, context, dedupe_key=dedupe)]
    queued += [
        composed(emails.ALLOWANCE_PASSED, recipient, context, dedupe_key=dedupe)
        for recipient in await emails.admin_recipients(tenant.id)
    ]
    await enqueue(queued, now=now, tenant_id=tenant.id)
