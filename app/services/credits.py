"""Credits, processes and storage of a tenant: ``creditUsage`` (docs/design.md, "Credits and processes").

- Credits used = variants + customers + contacts + sales reps + admin users (seed 002:
  340 + 1,200 + 1,200 + 5 + 3 = 2,748); the limit is the plan's plus the credit packs'.
- Processes per billing period: estimate = credits limit x 30 days, allowance = estimate + 33%
  (the plan's ``process_buffer_percent``).
- Storage: every plan includes 10 GB (plus storage packs); beyond it, with the overage policy,
  2.30 EUR per extra GB, whole GB rounded up.
- Per kind of process (``processes.byKind``, issue 15): its starts this period (the counter row's column),
  its share of all starts, its daily pace (as the total's forecast computes it), its last start, and
  what its admins set (paused, a monthly cap). Computed only when asked for.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from app import money
from app.models.catalog import Plan
from app.models.enums import StoragePolicy
from app.models.metering import ProcessCounter, ProcessKind, ProcessStart
from app.models.tenancy import Tenant
from app.services import sql
from app.services.errors import NoActivePlan
from app.services.figures_cache import FiguresCache, current_figures
from app.services.forecast import ProcessForecast, forecast_processes, pace_per_day, two_decimals
from app.services.periods import BillingPeriod
from app.services.subscriptions import PlanLoader, load_tenant_plan
from app.services.usage import Controls, CurrentUsage, control_of

ESTIMATE_DAYS = 30  # seed 002: "Créditos máximos del plan x 30 días"
BYTES_PER_MB = 1024 * 1024
BYTES_PER_GB = 1024 * BYTES_PER_MB


def process_estimate(credits_limit: int) -> int:
    return credits_limit * ESTIMATE_DAYS


def process_allowance(credits_limit: int, buffer_percent: int) -> int:
    """The estimate plus ``buffer_percent`` (33%): beyond it processes still run, the vendor is told."""
    return process_estimate(credits_limit) * (100 + buffer_percent) // 100


def percent_of(used: int, limit: int) -> Decimal:
    if limit <= 0:
        return Decimal("0.00") if used <= 0 else Decimal("100.00")
    return (Decimal(used) * 100 / Decimal(limit)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    period: BillingPeriod
    used: int
    estimate: int
    allowance: int
    forecast: ProcessForecast
    by_kind: Mapping[ProcessKind, int] = field(default_factory=dict)  # a kind not started: left out
    controls: Controls = field(default_factory=dict)  # the kinds paused or capped by the admins

    @property
    def beyond_allowance(self) -> bool:
        return self.used > self.allowance


@dataclass(frozen=True, slots=True)
class KindUsage:
    """One kind of process in the period: its figures and its control."""

    process: ProcessKind
    starts: int
    share: Decimal  # percent of all starts of the period, two decimals
    daily_pace: Decimal  # starts per day since the period started, two decimals
    last_started_at: dt.datetime | None  # None: none this period
    paused: bool
    monthly_cap: int | None  # None: no cap

    @property
    def cap_remaining(self) -> int | None:
        return None if self.monthly_cap is None else max(self.monthly_cap - self.starts, 0)


@dataclass(frozen=True, slots=True)
class StorageFigures:
    used_bytes: int
    included_bytes: int
    policy: StoragePolicy
    overage_gb: int
    overage_cost: money.Money


@dataclass(frozen=True, slots=True)
class CreditUsageView:
    usage: CurrentUsage
    credits_limit: int
    processes: ProcessFigures
    storage: StorageFigures

    @property
    def credits_used(self) -> int:
        return self.usage.credits

    @property
    def remaining(self) -> int:
        return max(self.credits_limit - self.credits_used, 0)

    @property
    def percent(self) -> Decimal:
        return percent_of(self.credits_used, self.credits_limit)


def storage_figures(used_bytes: int, storage_mb: int, plan: Plan, currency: str) -> StorageFigures:
    """Overage in whole GB, rounded up, priced per GB in the tenant's currency (seed 002: 2.30 EUR)."""
    included = storage_mb * BYTES_PER_MB
    extra = max(used_bytes - included, 0)
    overage_gb = -(-extra // BYTES_PER_GB)
    cost = money.Money.zero(currency)
    if plan.storage_policy == StoragePolicy.OVERAGE and overage_gb and currency in plan.overage_prices_per_gb:
        cost = money.price_in(plan.overage_prices_per_gb, currency).times(overage_gb)
    return StorageFigures(
        used_bytes=used_bytes,
        included_bytes=included,
        policy=plan.storage_policy,
        overage_gb=overage_gb,
        overage_cost=cost,
    )


async def processes_used(tenant_id: object, period: str) -> int:
    """Processes counted for the tenant in billing period ``period`` ("2026-11")."""
    counter = await ProcessCounter.get_or_none(tenant_id=tenant_id, period=period)
    return counter.used if counter else 0


async def credit_usage(
    tenant: Tenant, *, now: dt.datetime, plans: PlanLoader | None = None, figures: FiguresCache | None = None
) -> CreditUsageView:
    """The figures of the credits screen: the plan (through ``plans``, else one query), then the usage and
    the process counter (through ``figures``, else one statement: what a cache entry holds is dropped by
    every commit that changes it, see ``app.services.figures_cache``)."""
    plan_view = await plans(tenant, now) if plans else await load_tenant_plan(tenant, now=now)
    limits = plan_view.effective_limits
    period = plan_view.period
    live = await current_figures(tenant.id, period.name, cache=figures)
    usage, counts = live.usage, live.counts
    used = counts.used
    allowance = process_allowance(limits.credits, plan_view.subscription.plan.process_buffer_percent)
    return CreditUsageView(
        usage=usage,
        credits_limit=limits.credits,
        processes=ProcessFigures(
            period=period,
            used=used,
            estimate=process_estimate(limits.credits),
            allowance=allowance,
            forecast=forecast_processes(used=used, allowance=allowance, period=period, now=now),
            by_kind=counts.by_kind,
            controls=counts.controls,
        ),
        storage=storage_figures(
            usage.storage_bytes, limits.storage_mb, plan_view.subscription.plan, tenant.currency
        ),
    )


async def credit_usage_if_active(
    tenant: Tenant, *, now: dt.datetime, plans: PlanLoader | None = None, figures: FiguresCache | None = None
) -> CreditUsageView | None:
    """``credit_usage``, or ``None`` without an active plan (no limit to measure against): for answers
    that stand without it, such as a usage report, which is accepted whatever the plan."""
    try:
        return await credit_usage(tenant, now=now, plans=plans, figures=figures)
    except NoActivePlan:
        return None


# Each kind's last start in the period: one statement, each subquery one lookup at the end of the
# (tenant_id, process, started_at) index.
_LAST_STARTS = "SELECT " + ", ".join(
    f"(SELECT MAX(started_at) FROM process_start WHERE tenant_id = {{0}} AND process = {{{n + 3}}}"
    " AND started_at >= {1} AND started_at < {2})"
    for n in range(len(ProcessKind))
)
_STARTED_AT = ProcessStart._meta.fields_map["started_at"]


async def last_starts(tenant_id: uuid.UUID | str, period: BillingPeriod) -> dict[ProcessKind, dt.datetime]:
    """Each kind's last start in ``period`` (a kind without one is left out), in one statement."""
    row = await sql.fetch_one(
        _LAST_STARTS,
        uuid.UUID(str(tenant_id)),
        period.start_instant(),
        period.end_instant(),
        *(kind.value for kind in ProcessKind),
    )
    return {
        kind: _STARTED_AT.to_python_value(value)
        for kind, value in zip(ProcessKind, row, strict=True)
        if value is not None
    }


def kinds_usage(
    processes: ProcessFigures, *, last: Mapping[ProcessKind, dt.datetime], now: dt.datetime
) -> list[KindUsage]:
    """Every kind, in the enum's order: its starts, share, pace and last start, and its control."""
    kinds = []
    for kind in ProcessKind:
        starts = processes.by_kind.get(kind, 0)
        pace = two_decimals(pace_per_day(starts, period=processes.period, now=now))
        control = control_of(processes.controls, kind)
        kinds.append(
            KindUsage(
                process=kind,
                starts=starts,
                share=percent_of(starts, processes.used),
                daily_pace=pace,
                last_started_at=last.get(kind),
                paused=control.paused,
                monthly_cap=control.monthly_cap,
            )
        )
    return kinds
