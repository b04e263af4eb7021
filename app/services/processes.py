"""Starting a sync process: the decision and the count in one atomic step (DESIGN.md 1 and 2).

``UPDATE process_counter SET used = used + 1 WHERE tenant = ? AND period = ? AND the tenant's
credits are within the limit`` decides and counts at once: concurrent starts are serialised by the
database on the counter row, none is lost or counted twice, and a denied start changes nothing.
An idempotency key makes a retried start count once and return the same ticket.

Processes beyond the allowance (credits x 30 + 33%) still start; the first one of the period
e-mails the tenant's admins and the vendor's operations address (seed 002: "nos pondremos en
contacto"), once per period thanks to the outbox's dedupe key.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from tortoise.expressions import F, Subquery
from tortoise.transactions import in_transaction

from app.broadcast import Broadcaster
from app.models.metering import AlertKind, AlertState, LimitAlert, ProcessCounter, ProcessKind, ProcessStart
from app.models.tenancy import Tenant
from app.models.usage import TenantUsage
from app.notifications.outbox import Email, admin_addresses, enqueue, recipient_key
from app.observability import PROCESSES_STARTED
from app.services import alert_settings, alerts, webhook_events
from app.services.credits import process_allowance, processes_used
from app.services.figures_cache import FiguresCache, usage_changed
from app.services.idempotency import IdempotencyKeyReused, validate_key
from app.services.periods import BillingPeriod, period_containing, period_named
from app.services.plan_cache import PlanCache, current_plan
from app.services.quota import QuotaReason, record_decision
from app.services.usage import current_usage
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


async def _count(tenant_id: uuid.UUID, period: str, credits_limit: int) -> int:
    """The one conditional UPDATE: +1 unless the tenant's credits are above the limit."""
    over_limit = TenantUsage.filter(tenant_id=tenant_id, credits__gt=credits_limit).values("tenant_id")
    return await (
        ProcessCounter.filter(tenant_id=tenant_id, period=period)
        .exclude(tenant_id__in=Subquery(over_limit))
        .update(used=F("used") + 1)
    )


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
    """Decide and count a start. Six queries when allowed: plan, add-ons, the start's INSERT and
    SELECT, the counter's UPDATE and SELECT (a counter's first start of a period adds an INSERT)."""
    validate_key(idempotency_key)
    # A cached plan is only ever stricter than the truth (see app.services.plan_cache).
    plan = await current_plan(tenant, now=now, cache=plan_cache)
    if plan is None:
        record_decision(False, QuotaReason.PLAN_INACTIVE)
        current = period_containing(now, tenant.billing_anchor_day)
        used = await processes_used(tenant.id, current.name)
        return StartOutcome(process, False, QuotaReason.PLAN_INACTIVE, None, False, used, 0, 0, current)
    period = plan.period
    limit = plan.effective_limits.credits
    allowance = process_allowance(limit, plan.subscription.plan.process_buffer_percent)
    ticket = uuid.uuid4()
    async with in_transaction():
        await ProcessStart.bulk_create(
            [
                ProcessStart(
                    id=ticket,
                    tenant_id=tenant.id,
                    idempotency_key=idempotency_key,
                    process=process,
                    period=period.name,
                    started_at=now,
                )
            ],
            ignore_conflicts=True,
        )
        start = await ProcessStart.get(tenant_id=tenant.id, idempotency_key=idempotency_key)
        if start.id != ticket:
            if start.process != process:
                raise IdempotencyKeyReused(field="idempotencyKey")
            used = await processes_used(tenant.id, start.period)
            # The period the first attempt was counted in (a retry may come after the period changed).
            counted_in = period_named(start.period, tenant.billing_anchor_day)
            return StartOutcome(process, True, None, start.id, True, used, allowance, limit, counted_in)
        counted = await _count(tenant.id, period.name, limit)
        if not counted:
            # The period's first start: create its counter, then decide again.
            await ProcessCounter.bulk_create(
                [ProcessCounter(tenant_id=tenant.id, period=period.name, used=0)], ignore_conflicts=True
            )
            counted = await _count(tenant.id, period.name, limit)
        used = await processes_used(tenant.id, period.name)
        if not counted:
            await ProcessStart.filter(id=ticket).delete()  # a denied start leaves no trace to replay
            record_decision(False, QuotaReason.CREDITS_EXCEEDED)
            return StartOutcome(
                process, False, QuotaReason.CREDITS_EXCEEDED, None, False, used, allowance, limit, period
            )
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
    reason = QuotaReason.BEYOND_ALLOWANCE if used > allowance else None
    record_decision(True, reason)
    PROCESSES_STARTED.labels(process=process.value).inc()
    return StartOutcome(process, True, reason, ticket, False, used, allowance, limit, period, raised)


async def _tell_vendor(
    tenant: Tenant, *, used: int, allowance: int, period: str, now: dt.datetime, ops_email: str
) -> None:
    """Once per period (dedupe key): the operations address and the tenant's admins."""
    usage = await current_usage(tenant.id)
    subject = f"{tenant.name}: processes beyond the monthly allowance ({period})"
    body = (
        f"Environment {tenant.slug} ({tenant.name}) has started {used:,} processes in billing period "
        f"{period}, beyond its allowance of {allowance:,} (credits x 30 days + 33%).\n"
        f"Credits used: {usage.credits:,}.\n"
        "Processes are not blocked. Contact the customer to optimise the service: a plan change, a credit "
        "extension or a migration.\n"
    )
    dedupe = f"process-allowance:{tenant.id}:{period}"
    recipients = [ops_email, *await admin_addresses(tenant.id)]
    await enqueue(
        [
            Email(to=address, subject=subject, body=body, dedupe_key=recipient_key(dedupe, address))
            for address in recipients
        ],
        now=now,
        tenant_id=tenant.id,
    )
