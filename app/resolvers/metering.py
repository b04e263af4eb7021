"""Credits, quota and alerts: ``creditUsage``, ``quota``, ``alerts``; ``reportUsage``, ``startProcess``;
the ``limitAlerts`` subscription."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Annotated, Protocol

import strawberry

from app.auth import scopes
from app.broadcast import Broadcaster
from app.models import metering as models
from app.models.tenancy import Tenant
from app.resolvers.catalog import StoragePolicyEnum
from app.resolvers.common import (
    AFTER_HELP,
    DEFAULT_PAGE_SIZE,
    PAGE_SIZE_HELP,
    BillingPeriod,
    Connection,
    Edge,
    Money,
    PageInfo,
    described_enum,
    page_size,
)
from app.resolvers.context import Info
from app.resolvers.errors import IdempotencyKeyReusedError, InvalidInputError, NoActivePlanError
from app.resolvers.ids import global_id
from app.resolvers.permissions import allow
from app.resolvers.scalars import Long
from app.services import alerts as alert_service
from app.services import credits as credit_service
from app.services import processes as process_service
from app.services import quota as quota_service
from app.services import usage_history as history_service
from app.services import usage_reports
from app.services.periods import period_named

ProcessKindEnum = described_enum(
    models.ProcessKind,
    "ProcessKind",
    "A kind of sync process the ERP connector launches.",
    {
        models.ProcessKind.PRODUCT_SYNC: "Products synchronised with the ERP.",
        models.ProcessKind.STOCK_UPDATE: "Stock levels updated from the ERP.",
        models.ProcessKind.PRICE_UPDATE: "Prices updated from the ERP.",
        models.ProcessKind.CUSTOMER_SYNC: "Customers synchronised with the ERP.",
        models.ProcessKind.ORDER_EXPORT: "Orders exported to the ERP.",
        models.ProcessKind.INVOICE_IMPORT: "Invoices imported from the ERP.",
        models.ProcessKind.DELIVERY_NOTES: "Delivery notes imported from the ERP.",
        models.ProcessKind.PENDING_ORDERS: "Pending orders synchronised with the ERP.",
        models.ProcessKind.DATABASE_UPDATE: "A full update of the store's data from the ERP.",
    },
)
AlertKindEnum = described_enum(
    models.AlertKind,
    "AlertKind",
    "What an alert measures against its limit.",
    {
        models.AlertKind.CREDITS: "Credits used against the credit limit.",
        models.AlertKind.PROCESSES: "Processes started this billing period against the monthly allowance.",
        models.AlertKind.STORAGE: "Storage used, in bytes, against the storage included.",
        models.AlertKind.USERS: "User accounts against the users limit.",
        models.AlertKind.INTEGRATIONS: "Integrations in use against the integrations limit.",
    },
)
AlertStateEnum = described_enum(
    models.AlertState,
    "AlertState",
    "Whether an alert fired or was re-armed.",
    {
        models.AlertState.TRIGGERED: "Usage reached the threshold.",
        models.AlertState.RESOLVED: "Usage fell back below the threshold: the alert is re-armed.",
    },
)
QuotaReasonEnum = described_enum(
    quota_service.QuotaReason,
    "QuotaReason",
    "Why a process may not start, or starts beyond the monthly allowance.",
    {
        quota_service.QuotaReason.CREDITS_EXCEEDED: "Denied: the credits used are above the credit limit.",
        quota_service.QuotaReason.PLAN_INACTIVE: "Denied: the environment has no active plan.",
        quota_service.QuotaReason.BEYOND_ALLOWANCE: "Allowed, beyond the monthly process allowance: the "
        "vendor is told and will get in touch.",
        quota_service.QuotaReason.PROCESS_PAUSED: "Denied: the environment's admins paused this kind of "
        "process (`setProcessControl`); the other kinds still start.",
        quota_service.QuotaReason.PROCESS_CAP_REACHED: "Denied: this kind of process reached the monthly cap "
        "its admins set (`setProcessControl`) in this billing period; the other kinds still start.",
    },
)


class CreditCounts(Protocol):
    """The five counts credits add up to (the usage in force, a day of the history)."""

    @property
    def variants(self) -> int: ...
    @property
    def customers(self) -> int: ...
    @property
    def contacts(self) -> int: ...
    @property
    def sales_reps(self) -> int: ...
    @property
    def admin_users(self) -> int: ...


@functools.lru_cache(maxsize=64)
def _alert_of(message: str, anchor_day: int) -> LimitAlert:
    """Every subscriber of a tenant receives the same message: it is decoded once (read-only after)."""
    return LimitAlert.of(alert_service.decode(message), anchor_day)


def _broadcaster(info: Info) -> Broadcaster:
    broadcaster: Broadcaster = info.context.services.broadcaster
    return broadcaster


# --- Credit usage ------------------------------------------------------------------------------


@strawberry.type(description="Credits used, by kind of record counted.")
class CreditBreakdown:
    variants: int = strawberry.field(description="Unique products (variants).")
    customers: int = strawberry.field(description="Customers.")
    contacts: int = strawberry.field(description="Contacts of the customers.")
    sales_reps: int = strawberry.field(description="Sales representatives.")
    admin_users: int = strawberry.field(description="Administrator users.")

    @classmethod
    def of(cls, counts: CreditCounts) -> CreditBreakdown:
        return cls(
            variants=counts.variants,
            customers=counts.customers,
            contacts=counts.contacts,
            sales_reps=counts.sales_reps,
            admin_users=counts.admin_users,
        )


@strawberry.type(description="Where the processes of the billing period are heading at the pace so far.")
class ProcessForecast:
    daily_pace: Decimal = strawberry.field(description="Processes per day since the period started.")
    expected_by_period_end: int = strawberry.field(
        description="Processes expected by the end of the period at this pace."
    )
    allowance_passed_on: dt.date | None = strawberry.field(
        description="The day the allowance would be passed at this pace; null: not within this period."
    )


@strawberry.type(description="One kind of process in the current billing period: its starts and its control.")
class ProcessKindUsage:
    process: ProcessKindEnum = strawberry.field(description="The kind of process.")  # type: ignore[valid-type]
    starts: int = strawberry.field(description="Starts of this kind counted in the period.")
    share: Decimal = strawberry.field(
        description="This kind's starts / all starts of the period x 100, with two decimals; 0 when none."
    )
    daily_pace: Decimal = strawberry.field(
        description="Starts of this kind per day since the period started, with two decimals."
    )
    last_started_at: dt.datetime | None = strawberry.field(
        description="This kind's last counted start in the period; null: none this period."
    )
    paused: bool = strawberry.field(
        description="Whether the admins paused this kind (`setProcessControl`): its starts are denied."
    )
    monthly_cap: int | None = strawberry.field(
        description="The most starts of this kind per billing period the admins allow; null: no cap."
    )
    cap_remaining: int | None = strawberry.field(
        description="Starts of this kind left under the cap this period (0 when reached); null: no cap."
    )

    @classmethod
    def of(cls, kind: credit_service.KindUsage) -> ProcessKindUsage:
        return cls(
            process=kind.process,
            starts=kind.starts,
            share=kind.share,
            daily_pace=kind.daily_pace,
            last_started_at=kind.last_started_at,
            paused=kind.paused,
            monthly_cap=kind.monthly_cap,
            cap_remaining=kind.cap_remaining,
        )


@strawberry.type(description="Processes started in the current billing period.")
class ProcessUsage:
    period: BillingPeriod = strawberry.field(description="The current billing period.")
    used: int = strawberry.field(description="Processes started in the period.")
    estimate: int = strawberry.field(description="The credit limit x 30 days.")
    allowance: int = strawberry.field(
        description="The estimate plus a buffer (33%); beyond it processes still start and the vendor "
        "is told."
    )
    beyond_allowance: bool = strawberry.field(description="Whether the processes used exceed the allowance.")
    forecast: ProcessForecast = strawberry.field(description="The period's end at the pace so far.")
    figures: strawberry.Private[credit_service.ProcessFigures]
    tenant_id: strawberry.Private[uuid.UUID | str]

    @strawberry.field(
        description="Every kind of process, in the order of `ProcessKind`: its starts, share, pace and last "
        "start this period, and whether its admins paused or capped it."
    )
    async def by_kind(self, info: Info) -> list[ProcessKindUsage]:
        # Computed only when selected: creditUsage's usual answer costs nothing more.
        last = await credit_service.last_starts(self.tenant_id, self.figures.period)
        kinds = credit_service.kinds_usage(self.figures, last=last, now=info.context.clock.now())
        return [ProcessKindUsage.of(kind) for kind in kinds]


@strawberry.type(description="Storage used against the storage included in the plan and its add-ons.")
class StorageUsage:
    used_bytes: Long = strawberry.field(description="Storage used, in bytes, as last reported.")
    included_bytes: Long = strawberry.field(description="Storage included, in bytes.")
    policy: StoragePolicyEnum = strawberry.field(  # type: ignore[valid-type]
        description="What happens beyond the storage included."
    )
    overage_gb: int = strawberry.field(description="Extra GB beyond the included storage, rounded up.")
    overage_cost: Money = strawberry.field(description="The extra GB x the plan's price per GB.")


@strawberry.type(
    description="Where the credits used are heading: the daily growth fitted by least squares (ordinary, "
    "credits on time) over the applied usage reports of the last 30 days, and the day the credit limit "
    "would be passed at that growth, counted from the latest report's credits. A straight line through "
    "every report rather than last minus first, so that one odd report moves it a little, not all the way."
)
class CreditForecast:
    daily_growth: Decimal = strawberry.field(
        description="Credits per day: the slope of the least-squares line, with two decimals."
    )
    limit_passed_on: dt.date = strawberry.field(
        description="The day (UTC) the credits would pass the limit at that growth, from the latest "
        "report; the latest report's day when it is at or above the limit already."
    )
    days_left: int = strawberry.field(description="Days from today (UTC) to that day; 0: today or past.")
    based_on_reports: int = strawberry.field(description="The applied reports fitted: 3 at least.")
    since: dt.datetime = strawberry.field(description="When the first report fitted was measured.")


@strawberry.type(description="The environment's credits, processes and storage against its plan's limits.")
class CreditUsage:
    id: strawberry.ID = strawberry.field(description="The environment's: the same on every read.")
    breakdown: CreditBreakdown = strawberry.field(description="The credits used, by kind of record.")
    used: int = strawberry.field(description="Credits used: the sum of the breakdown.")
    limit: int = strawberry.field(description="The plan's credits plus the credit packs.")
    remaining: int = strawberry.field(description="Credits left before the limit; 0 beyond it.")
    percent: Decimal = strawberry.field(description="Used / limit x 100, with two decimals.")
    measured_at: dt.datetime | None = strawberry.field(
        description="When the counts were measured by the connector; null: nothing reported yet."
    )
    processes: ProcessUsage = strawberry.field(description="Processes of the current billing period.")
    storage: StorageUsage = strawberry.field(description="Storage used and its overage.")
    tenant_id: strawberry.Private[uuid.UUID | str]

    @strawberry.field(
        description="Where the credits are heading, from the usage reports of the last 30 days; null with "
        "fewer than 3 reports, or when the credits are flat or falling (the limit is never passed at that "
        "pace), or more than 100 years from the limit."
    )
    async def forecast(self, info: Info) -> CreditForecast | None:
        # Computed only when selected: creditUsage's usual answer costs nothing more.
        now = info.context.clock.now()
        found = await history_service.credit_forecast(self.tenant_id, self.limit, now=now)
        if found is None:
            return None
        return CreditForecast(
            daily_growth=found.daily_growth,
            limit_passed_on=found.limit_passed_on,
            days_left=found.days_left,
            based_on_reports=found.based_on_reports,
            since=found.since,
        )

    @classmethod
    def of(cls, view: credit_service.CreditUsageView, tenant_id: uuid.UUID | str) -> CreditUsage:
        usage, processes, storage = view.usage, view.processes, view.storage
        return cls(
            id=global_id("CreditUsage", tenant_id),
            breakdown=CreditBreakdown.of(usage),
            used=view.credits_used,
            limit=view.credits_limit,
            remaining=view.remaining,
            percent=view.percent,
            measured_at=usage.measured_at,
            processes=ProcessUsage(
                period=BillingPeriod.of(processes.period),
                used=processes.used,
                estimate=processes.estimate,
                allowance=processes.allowance,
                beyond_allowance=processes.beyond_allowance,
                forecast=ProcessForecast(
                    daily_pace=processes.forecast.daily_pace,
                    expected_by_period_end=processes.forecast.expected_by_period_end,
                    allowance_passed_on=processes.forecast.allowance_passed_on,
                ),
                figures=processes,
                tenant_id=tenant_id,
            ),
            storage=StorageUsage(
                used_bytes=Long(storage.used_bytes),
                included_bytes=Long(storage.included_bytes),
                policy=storage.policy,
                overage_gb=storage.overage_gb,
                overage_cost=Money.of(storage.overage_cost),
            ),
            tenant_id=tenant_id,
        )


# --- Quota and process starts ------------------------------------------------------------------

PROCESS_HELP = "The kind of sync process."
ALLOWED_HELP = "Whether the process may start (a start: whether it was counted)."
REASON_HELP = "Why not, or why beyond the allowance; null: allowed within the allowance."
PROCESSES_USED_HELP = "Processes started in the billing period."
ALLOWANCE_HELP = "The monthly process allowance: the credit limit x 30 days, plus 33%."
CREDITS_LIMIT_HELP = "The plan's credits plus the credit packs."
KIND_STARTS_HELP = "Starts of this kind of process counted in the billing period."


@strawberry.type(description="Whether a sync process may start now, and the figures behind the answer.")
class QuotaDecision:
    process: ProcessKindEnum = strawberry.field(description=PROCESS_HELP)  # type: ignore[valid-type]
    allowed: bool = strawberry.field(description="Whether the process may start now.")
    reason: QuotaReasonEnum | None = strawberry.field(description=REASON_HELP)  # type: ignore[valid-type]
    credits_used: int = strawberry.field(description="Credits used, as last reported.")
    credits_limit: int = strawberry.field(description=CREDITS_LIMIT_HELP)
    processes_used: int = strawberry.field(description=PROCESSES_USED_HELP)
    process_allowance: int = strawberry.field(description=ALLOWANCE_HELP)
    period: BillingPeriod = strawberry.field(description="The current billing period.")
    kind_starts: int = strawberry.field(description=KIND_STARTS_HELP)
    paused: bool = strawberry.field(
        description="Whether the admins paused this kind of process (`setProcessControl`)."
    )
    monthly_cap: int | None = strawberry.field(
        description="The most starts of this kind per billing period the admins allow; null: no cap."
    )

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
            period=BillingPeriod.of(decision.period),
            kind_starts=decision.kind_starts,
            paused=decision.paused,
            monthly_cap=decision.monthly_cap,
        )


@strawberry.type(description="The answer to a start: counted (with a ticket) or denied (not counted).")
class StartProcessSuccess:
    process: ProcessKindEnum = strawberry.field(description=PROCESS_HELP)  # type: ignore[valid-type]
    allowed: bool = strawberry.field(description="Whether the start was counted: the process may run.")
    reason: QuotaReasonEnum | None = strawberry.field(description=REASON_HELP)  # type: ignore[valid-type]
    ticket: strawberry.ID | None = strawberry.field(
        description="The counted start, the same on a retry; null: denied."
    )
    replayed: bool = strawberry.field(description="Whether this answers a retry of an earlier start.")
    processes_used: int = strawberry.field(description=PROCESSES_USED_HELP)
    process_allowance: int = strawberry.field(description=ALLOWANCE_HELP)
    credits_limit: int = strawberry.field(description=CREDITS_LIMIT_HELP)
    period: BillingPeriod = strawberry.field(description="The billing period the start counts in.")
    kind_starts: int = strawberry.field(
        description="Starts of this kind of process counted in that billing period (this one included)."
    )

    @classmethod
    def of(cls, outcome: process_service.StartOutcome) -> StartProcessSuccess:
        return cls(
            process=outcome.process,
            allowed=outcome.allowed,
            reason=outcome.reason,
            ticket=strawberry.ID(str(outcome.ticket)) if outcome.ticket else None,
            replayed=outcome.replayed,
            processes_used=outcome.processes_used,
            process_allowance=outcome.process_allowance,
            credits_limit=outcome.credits_limit,
            period=BillingPeriod.of(outcome.period),
            kind_starts=outcome.kind_starts,
        )


StartProcessResult = Annotated[
    StartProcessSuccess | InvalidInputError | IdempotencyKeyReusedError,
    strawberry.union(
        "StartProcessResult", description="A start counted or denied, or why the request was refused."
    ),
]


# --- Usage reports -----------------------------------------------------------------------------


@strawberry.input(description="Absolute counts measured by the ERP connector.")
class UsageReportInput:
    variants: int = strawberry.field(description="Unique products (variants).")
    customers: int = strawberry.field(description="Customers.")
    contacts: int = strawberry.field(description="Contacts of the customers.")
    sales_reps: int = strawberry.field(description="Sales representatives.")
    admin_users: int = strawberry.field(description="Administrator users.")
    storage_bytes: Long = strawberry.field(description="Storage used, in bytes.")
    measured_at: dt.datetime = strawberry.field(
        description="When the counts were measured; a report measured before the usage in force is "
        "recorded, not applied."
    )
    users: int | None = strawberry.field(
        default=None, description="All user accounts; left out: the administrator users."
    )
    integrations: int | None = strawberry.field(
        default=None, description="Integrations in use; left out: the active integration add-ons."
    )

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


@strawberry.type(description="A usage report as received and recorded.")
class UsageReport:
    id: strawberry.ID = strawberry.field(description="The report's: the same when it is replayed.")
    variants: int = strawberry.field(description="Unique products (variants).")
    customers: int = strawberry.field(description="Customers.")
    contacts: int = strawberry.field(description="Contacts of the customers.")
    sales_reps: int = strawberry.field(description="Sales representatives.")
    admin_users: int = strawberry.field(description="Administrator users.")
    users: int | None = strawberry.field(description="All user accounts, as reported; null: not reported.")
    integrations: int | None = strawberry.field(
        description="Integrations in use, as reported; null: not reported."
    )
    storage_bytes: Long = strawberry.field(description="Storage used, in bytes.")
    credits_used: int = strawberry.field(description="The credits these counts add up to.")
    measured_at: dt.datetime = strawberry.field(description="When the counts were measured.")
    received_at: dt.datetime = strawberry.field(description="When the report was received.")
    applied: bool = strawberry.field(
        description="Whether it replaced the usage in force (false: measured before it, ignored)."
    )

    @classmethod
    def of(cls, report: models.UsageReport) -> UsageReport:
        return cls(
            id=global_id("UsageReport", report.id),
            variants=report.variants,
            customers=report.customers,
            contacts=report.contacts,
            sales_reps=report.sales_reps,
            admin_users=report.admin_users,
            users=report.users,
            integrations=report.integrations,
            storage_bytes=Long(report.storage_bytes),
            credits_used=usage_reports.credits_in(report),
            measured_at=report.measured_at,
            received_at=report.received_at,
            applied=report.applied,
        )


@strawberry.type(description="The report was recorded: applied, ignored as older, or a retry answered again.")
class ReportUsageSuccess:
    report: UsageReport = strawberry.field(description="The report (on a retry, the first one).")
    applied: bool = strawberry.field(
        description="Whether it replaced the usage in force (false: measured before it, ignored)."
    )
    replayed: bool = strawberry.field(description="Whether this answers a retry with the same key.")
    tenant: strawberry.Private[Tenant]

    @strawberry.field(
        description="The environment's credit usage now, this report included; null when the environment "
        "has no active plan (no limit to measure against)."
    )
    async def credit_usage(self, info: Info) -> CreditUsage | None:
        # Computed only when selected: the connector's usual answer costs nothing more.
        view = await credit_service.credit_usage_if_active(
            self.tenant,
            now=info.context.clock.now(),
            plans=info.context.tenant_plan,
            figures=info.context.services.figures_cache,
        )
        return CreditUsage.of(view, self.tenant.id) if view is not None else None

    @classmethod
    def of(cls, outcome: usage_reports.ReportOutcome, tenant: Tenant) -> ReportUsageSuccess:
        return cls(
            report=UsageReport.of(outcome.report),
            applied=outcome.report.applied,
            replayed=outcome.replayed,
            tenant=tenant,
        )


ReportUsageResult = Annotated[
    ReportUsageSuccess | InvalidInputError | IdempotencyKeyReusedError,
    strawberry.union("ReportUsageResult", description="The report recorded, or why it was refused."),
]


# --- Alerts ------------------------------------------------------------------------------------


@strawberry.type(description="A threshold crossed upwards (TRIGGERED) or fallen back below (RESOLVED).")
class LimitAlert:
    id: strawberry.ID = strawberry.field(description="The alert's: deliveries of one alert share it.")
    kind: AlertKindEnum = strawberry.field(description="What is measured.")  # type: ignore[valid-type]
    threshold: int = strawberry.field(description="Percent of the limit: 80, 90, 100 by default.")
    state: AlertStateEnum = strawberry.field(  # type: ignore[valid-type]
        description="Whether the threshold was reached or fallen back below."
    )
    used: Long = strawberry.field(description="What was used at the time (bytes for storage).")
    limit: Long = strawberry.field(description="The limit at the time (bytes for storage).")
    period: BillingPeriod | None = strawberry.field(
        description="The billing period of a process alert; null for the other kinds."
    )
    at: dt.datetime = strawberry.field(description="When the alert was raised.")

    @classmethod
    def of(cls, alert: models.LimitAlert, anchor_day: int) -> LimitAlert:
        return cls(
            id=global_id("LimitAlert", alert.id),
            kind=alert.kind,
            threshold=alert.threshold,
            state=alert.state,
            used=Long(alert.used),
            limit=Long(alert.limit),
            period=BillingPeriod.of(period_named(alert.period, anchor_day)) if alert.period else None,
            at=alert.created_at,
        )


@strawberry.type(name="LimitAlertConnection", description="The environment's alerts, newest first, by page.")
class LimitAlertConnection(Connection[LimitAlert]):
    @classmethod
    def of(cls, page: alert_service.AlertPage, anchor_day: int) -> LimitAlertConnection:
        edges = [
            Edge(cursor=alert_service.cursor_of(alert), node=LimitAlert.of(alert, anchor_day))
            for alert in page.alerts
        ]
        return cls(
            edges=edges,
            nodes=[edge.node for edge in edges],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count,
        )


CreditUsageResult = Annotated[
    CreditUsage | NoActivePlanError,
    strawberry.union(
        "CreditUsageResult", description="The environment's usage, or why there is none to measure against."
    ),
]


# --- Roots -------------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(
        name="creditUsage",
        extensions=allow(scopes.TENANT_READ, scopes.USAGE_REPORT, scopes.QUOTA_CHECK),
        description="The caller's environment's credits, processes and storage against its plan's limits.",
    )
    async def credit_usage(self, info: Info) -> CreditUsageResult | None:
        principal = await info.context.require_principal()
        view = await credit_service.credit_usage(
            principal.tenant,
            now=info.context.clock.now(),
            plans=info.context.tenant_plan,
            figures=info.context.services.figures_cache,
        )
        return CreditUsage.of(view, principal.tenant.id)

    @strawberry.field(
        extensions=allow(scopes.QUOTA_CHECK, users=False),
        description="Whether a sync process may start now; counts nothing (`startProcess` counts).",
    )
    async def quota(
        self,
        info: Info,
        process: Annotated[
            ProcessKindEnum,  # type: ignore[valid-type]
            strawberry.argument(description="The kind of process about to start."),
        ],
    ) -> QuotaDecision | None:
        principal = await info.context.require_principal()
        decision = await quota_service.check_quota(
            principal.tenant,
            process,
            now=info.context.clock.now(),
            plan_cache=info.context.services.plan_cache,
            figures_cache=info.context.services.figures_cache,
        )
        return QuotaDecision.of(decision)

    @strawberry.field(
        extensions=allow(scopes.TENANT_READ, scopes.USAGE_REPORT),
        description="The caller's environment's limit alerts, newest first.",
    )
    async def alerts(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=PAGE_SIZE_HELP)] = DEFAULT_PAGE_SIZE,
        after: Annotated[str | None, strawberry.argument(description=AFTER_HELP)] = None,
    ) -> LimitAlertConnection | None:
        principal = await info.context.require_principal()
        size = page_size(first)
        page = await alert_service.list_alerts(principal.tenant.id, first=size, after=after)
        return LimitAlertConnection.of(page, principal.tenant.billing_anchor_day)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="reportUsage",
        extensions=allow(scopes.USAGE_REPORT, users=False),
        description="Record the counts the connector measured; applied when measured after the usage in "
        "force, recorded and ignored otherwise.",
    )
    async def report_usage(
        self,
        info: Info,
        input: Annotated[UsageReportInput, strawberry.argument(description="The counts measured.")],
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="Send the same key when retrying: the same report gets the same answer and is "
                "recorded once. 1 to 128 printable ASCII characters."
            ),
        ] = None,
    ) -> ReportUsageResult | None:
        context = info.context
        principal = await context.require_principal()
        outcome = await usage_reports.report_usage(
            principal.tenant,
            input.counts(),
            idempotency_key=idempotency_key,
            now=context.clock.now(),
            max_skew=dt.timedelta(seconds=context.settings.usage_report_max_skew_seconds),
            broadcaster=_broadcaster(info),
            figures_cache=context.services.figures_cache,
        )
        return ReportUsageSuccess.of(outcome, principal.tenant)

    @strawberry.mutation(
        name="startProcess",
        extensions=allow(scopes.PROCESS_START, users=False),
        description="Decide and count a start in one step: counted when the credits are within the limit "
        "and the kind is neither paused nor at its monthly cap (`setProcessControl`), denied (and not "
        "counted) otherwise.",
    )
    async def start_process(
        self,
        info: Info,
        process: Annotated[
            ProcessKindEnum,  # type: ignore[valid-type]
            strawberry.argument(description="The kind of process starting."),
        ],
        idempotency_key: Annotated[
            str,
            strawberry.argument(
                description="One key per start, sent again when retrying it: the start is counted once and "
                "the retry gets its ticket. 1 to 128 printable ASCII characters."
            ),
        ],
    ) -> StartProcessResult | None:
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
        return StartProcessSuccess.of(outcome)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        name="limitAlerts",
        extensions=allow(scopes.TENANT_READ, scopes.USAGE_REPORT),
        description="The caller's environment's alerts, as they are raised (once recorded); a delivery may "
        "repeat after a restart: deduplicate by `id`.",
    )
    async def limit_alerts(self, info: Info) -> AsyncGenerator[LimitAlert, None]:
        principal = await info.context.require_principal()
        tenant = principal.tenant
        async with _broadcaster(info).subscribe(alert_service.channel_of(tenant.id)) as messages:
            async for message in messages:
                yield _alert_of(message, tenant.billing_anchor_day)
