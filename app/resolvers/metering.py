"""Credits, quota and alerts: ``creditUsage``, ``quota``, ``alerts``; ``reportUsage``, ``startProcess``;
the ``limitAlerts`` subscription."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Annotated

import strawberry

from app.auth import scopes
from app.broadcast import Broadcaster
from app.models import metering as models
from app.resolvers.catalog import StoragePolicyEnum
from app.resolvers.common import BillingPeriod, Money
from app.resolvers.context import Info
from app.resolvers.errors import IdempotencyKeyReusedError, InvalidInputError
from app.resolvers.permissions import allow
from app.resolvers.scalars import Long
from app.services import alerts as alert_service
from app.services import credits as credit_service
from app.services import processes as process_service
from app.services import quota as quota_service
from app.services import usage_reports

ProcessKindEnum = strawberry.enum(models.ProcessKind, name="ProcessKind")
AlertKindEnum = strawberry.enum(models.AlertKind, name="AlertKind")
AlertStateEnum = strawberry.enum(models.AlertState, name="AlertState")
QuotaReasonEnum = strawberry.enum(quota_service.QuotaReason, name="QuotaReason")


@functools.lru_cache(maxsize=64)
def _alert_of(message: str) -> LimitAlert:
    """Every subscriber of a tenant receives the same message: it is decoded once (read-only after)."""
    return LimitAlert.of(alert_service.decode(message))


def _broadcaster(info: Info) -> Broadcaster:
    broadcaster: Broadcaster = info.context.services.broadcaster
    return broadcaster


# --- Credit usage ------------------------------------------------------------------------------


@strawberry.type(description="Credits used, by record kind (seed 002).")
class CreditBreakdown:
    variants: int = strawberry.field(description="Unique products (variants).")
    customers: int
    contacts: int
    sales_reps: int
    admin_users: int


@strawberry.type(description="The process forecast at the pace of the period so far.")
class ProcessForecast:
    daily_pace: Decimal = strawberry.field(description="Processes per day since the period started.")
    expected_by_period_end: int
    allowance_passed_on: dt.date | None = strawberry.field(
        description="The day the allowance would be passed at this pace; null: not within this period."
    )


@strawberry.type(description="Processes of the current billing period.")
class ProcessUsage:
    period: str = strawberry.field(description='The billing period, "2026-11".')
    billing_period: BillingPeriod
    used: int
    estimate: int = strawberry.field(description="Maximum credits x 30 days.")
    allowance: int = strawberry.field(description="The estimate + 33%; beyond it the vendor is alerted.")
    beyond_allowance: bool
    forecast: ProcessForecast


@strawberry.type
class StorageUsage:
    used_bytes: Long
    included_bytes: Long
    policy: StoragePolicyEnum  # type: ignore[valid-type]
    overage_gb: int = strawberry.field(description="Extra GB beyond the included storage, rounded up.")
    overage_cost: Money = strawberry.field(description="Overage GB x the plan's price per GB.")


@strawberry.type
class CreditUsage:
    breakdown: CreditBreakdown
    used: int = strawberry.field(description="The sum of the breakdown.")
    limit: int = strawberry.field(description="The plan's credits plus the credit packs.")
    remaining: int
    percent: Decimal = strawberry.field(description="used / limit x 100, two decimals.")
    measured_at: dt.datetime | None = strawberry.field(description="When the counts were measured.")
    processes: ProcessUsage
    storage: StorageUsage

    @classmethod
    def of(cls, view: credit_service.CreditUsageView) -> CreditUsage:
        usage, processes, storage = view.usage, view.processes, view.storage
        return cls(
            breakdown=CreditBreakdown(
                variants=usage.variants,
                customers=usage.customers,
                contacts=usage.contacts,
                sales_reps=usage.sales_reps,
                admin_users=usage.admin_users,
            ),
            used=view.credits_used,
            limit=view.credits_limit,
            remaining=view.remaining,
            percent=view.percent,
            measured_at=usage.measured_at,
            processes=ProcessUsage(
                period=processes.period.name,
                billing_period=BillingPeriod.of(processes.period),
                used=processes.used,
                estimate=processes.estimate,
                allowance=processes.allowance,
                beyond_allowance=processes.beyond_allowance,
                forecast=ProcessForecast(
                    daily_pace=processes.forecast.daily_pace,
                    expected_by_period_end=processes.forecast.expected_by_period_end,
                    allowance_passed_on=processes.forecast.allowance_passed_on,
                ),
            ),
            storage=StorageUsage(
                used_bytes=Long(storage.used_bytes),
                included_bytes=Long(storage.included_bytes),
                policy=storage.policy,
                overage_gb=storage.overage_gb,
                overage_cost=Money.of(storage.overage_cost),
            ),
        )


# --- Quota and process starts ------------------------------------------------------------------


@strawberry.type(description="Whether a sync process may start now, and the figures behind the answer.")
class QuotaDecision:
    process: ProcessKindEnum  # type: ignore[valid-type]
    allowed: bool
    reason: QuotaReasonEnum | None  # type: ignore[valid-type]
    credits_used: int
    credits_limit: int
    processes_used: int
    process_allowance: int
    period: str

    @classmethod
    def of(cls, decision: quota_service.QuotaDecision) -> QuotaDecision:
        return cls(
            process=decision.process,
            allowed=decision.allowed,
            reason=decision.reason,
            credits_used=decision.credits_used,
            credits_limit=decision.credits_limit,
            processes_used=decision.processes_used,
            process_allowance=decision.process_allowance,
            period=decision.period.name,
        )


@strawberry.type(description="The answer to a start: counted (with a ticket) or denied (not counted).")
class ProcessStart:
    process: ProcessKindEnum  # type: ignore[valid-type]
    allowed: bool
    reason: QuotaReasonEnum | None  # type: ignore[valid-type]
    ticket: strawberry.ID | None = strawberry.field(description="The counted start; the same on a retry.")
    replayed: bool = strawberry.field(description="A retry of an earlier start with the same key.")
    processes_used: int
    process_allowance: int
    credits_limit: int
    period: str

    @classmethod
    def of(cls, outcome: process_service.StartOutcome) -> ProcessStart:
        return cls(
            process=outcome.process,
            allowed=outcome.allowed,
            reason=outcome.reason,
            ticket=strawberry.ID(str(outcome.ticket)) if outcome.ticket else None,
            replayed=outcome.replayed,
            processes_used=outcome.processes_used,
            process_allowance=outcome.process_allowance,
            credits_limit=outcome.credits_limit,
            period=outcome.period,
        )


StartProcessResult = Annotated[
    ProcessStart | InvalidInputError | IdempotencyKeyReusedError, strawberry.union("StartProcessResult")
]


# --- Usage reports -----------------------------------------------------------------------------


@strawberry.input(description="Absolute counts measured by the connector.")
class UsageReportInput:
    variants: int
    customers: int
    contacts: int
    sales_reps: int
    admin_users: int
    storage_bytes: Long
    measured_at: dt.datetime
    users: int | None = strawberry.field(default=None, description="All user accounts; default adminUsers.")
    integrations: int | None = strawberry.field(
        default=None, description="Integrations in use; default: the active integration add-ons."
    )
    idempotency_key: str | None = strawberry.field(default=None, description="The same key: the same answer.")

    def counts(self) -> usage_reports.UsageCounts:
        return usage_reports.UsageCounts(
            variants=self.variants,
            customers=self.customers,
            contacts=self.contacts,
            sales_reps=self.sales_reps,
            admin_users=self.admin_users,
            storage_bytes=self.storage_bytes,
            measured_at=self.measured_at,
            users=self.users,
            integrations=self.integrations,
        )


@strawberry.type
class UsageReported:
    report_id: strawberry.ID
    applied: bool = strawberry.field(description="False: older than the report already applied, ignored.")
    replayed: bool = strawberry.field(description="A retry of an earlier report with the same key.")
    credits_used: int
    measured_at: dt.datetime | None = strawberry.field(description="Of the usage now applied.")

    @classmethod
    def of(cls, outcome: usage_reports.ReportOutcome) -> UsageReported:
        return cls(
            report_id=strawberry.ID(str(outcome.report_id)),
            applied=outcome.applied,
            replayed=outcome.replayed,
            credits_used=outcome.usage.credits,
            measured_at=outcome.usage.measured_at,
        )


ReportUsageResult = Annotated[
    UsageReported | InvalidInputError | IdempotencyKeyReusedError, strawberry.union("ReportUsageResult")
]


# --- Alerts ------------------------------------------------------------------------------------


@strawberry.type(description="A threshold crossed (TRIGGERED) or re-armed (RESOLVED).")
class LimitAlert:
    id: strawberry.ID
    kind: AlertKindEnum  # type: ignore[valid-type]
    threshold: int = strawberry.field(description="Percent of the limit: 80, 90, 100 by default.")
    state: AlertStateEnum  # type: ignore[valid-type]
    used: Long
    limit: Long
    period: str | None = strawberry.field(description="The billing period (process alerts).")
    at: dt.datetime

    @classmethod
    def of(cls, alert: models.LimitAlert) -> LimitAlert:
        return cls(
            id=strawberry.ID(str(alert.id)),
            kind=alert.kind,
            threshold=alert.threshold,
            state=alert.state,
            used=Long(alert.used),
            limit=Long(alert.limit),
            period=alert.period,
            at=alert.created_at,
        )


@strawberry.type
class AlertEdge:
    cursor: str
    node: LimitAlert


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="The tenant's alerts, newest first.")
class AlertConnection:
    edges: list[AlertEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: alert_service.AlertPage) -> AlertConnection:
        return cls(
            edges=[
                AlertEdge(cursor=alert_service.cursor_of(alert), node=LimitAlert.of(alert))
                for alert in page.alerts
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


# --- Roots -------------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(
        name="creditUsage", extensions=allow(scopes.TENANT_READ, scopes.USAGE_REPORT, scopes.QUOTA_CHECK)
    )
    async def credit_usage(self, info: Info) -> CreditUsage:
        principal = await info.context.require_principal()
        view = await credit_service.credit_usage(
            principal.tenant, now=info.context.clock.now(), plans=info.context.tenant_plan
        )
        return CreditUsage.of(view)

    @strawberry.field(
        extensions=allow(scopes.QUOTA_CHECK, users=False), description="May this process start now?"
    )
    async def quota(self, info: Info, process: ProcessKindEnum) -> QuotaDecision:  # type: ignore[valid-type]
        principal = await info.context.require_principal()
        decision = await quota_service.check_quota(
            principal.tenant,
            process,
            now=info.context.clock.now(),
            plan_cache=info.context.services.plan_cache,
            figures_cache=info.context.services.figures_cache,
        )
        return QuotaDecision.of(decision)

    @strawberry.field(extensions=allow(scopes.TENANT_READ, scopes.USAGE_REPORT))
    async def alerts(self, info: Info, first: int | None = None, after: str | None = None) -> AlertConnection:
        principal = await info.context.require_principal()
        page = await alert_service.list_alerts(principal.tenant.id, first=first, after=after)
        return AlertConnection.of(page)


@strawberry.type
class Mutation:
    @strawberry.mutation(name="reportUsage", extensions=allow(scopes.USAGE_REPORT, users=False))
    async def report_usage(self, info: Info, input: UsageReportInput) -> ReportUsageResult:
        context = info.context
        principal = await context.require_principal()
        outcome = await usage_reports.report_usage(
            principal.tenant,
            input.counts(),
            idempotency_key=input.idempotency_key,
            now=context.clock.now(),
            max_skew=dt.timedelta(seconds=context.settings.usage_report_max_skew_seconds),
            broadcaster=_broadcaster(info),
            figures_cache=context.services.figures_cache,
        )
        return UsageReported.of(outcome)

    @strawberry.mutation(name="startProcess", extensions=allow(scopes.PROCESS_START, users=False))
    async def start_process(
        self,
        info: Info,
        process: ProcessKindEnum,  # type: ignore[valid-type]
        idempotency_key: str,
    ) -> StartProcessResult:
        context = info.context
        principal = await context.require_principal()
        outcome = await process_service.start_process(
            principal.tenant,
            process,
            idempotency_key,
            now=context.clock.now(),
            ops_email=context.settings.ops_email,
            broadcaster=_broadcaster(info),
            plan_cache=context.services.plan_cache,
            figures_cache=context.services.figures_cache,
        )
        return ProcessStart.of(outcome)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        name="limitAlerts",
        extensions=allow(scopes.TENANT_READ, scopes.USAGE_REPORT),
        description="The caller's tenant's alerts, as they are raised (after their transaction commits).",
    )
    async def limit_alerts(self, info: Info) -> AsyncGenerator[LimitAlert, None]:
        principal = await info.context.require_principal()
        channel = alert_service.channel_of(principal.tenant.id)
        async with _broadcaster(info).subscribe(channel) as messages:
            async for message in messages:
                yield _alert_of(message)
