"""Credits, processes and storage of a tenant: ``creditUsage`` (DESIGN.md 1, "Credits and processes").

- Credits used = variants + customers + contacts + sales reps + admin users (seed 002:
  340 + 1,200 + 1,200 + 5 + 3 = 2,748); the limit is the plan's plus the credit packs'.
- Processes per billing period: estimate = credits limit x 30 days, allowance = estimate + 33%
  (the plan's ``process_buffer_percent``).
- Storage: every plan includes 10 GB (plus storage packs); beyond it, with the overage policy,
  2.30 EUR per extra GB, whole GB rounded up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from app import money
from app.models.catalog import Plan
from app.models.enums import StoragePolicy
from app.models.metering import ProcessCounter
from app.models.tenancy import Tenant
from app.services.errors import NoActivePlan
from app.services.forecast import ProcessForecast, forecast_processes
from app.services.periods import BillingPeriod
from app.services.subscriptions import PlanLoader, load_tenant_plan
from app.services.usage import CurrentUsage, usage_and_processes

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

    @property
    def beyond_allowance(self) -> bool:
        return self.used > self.allowance


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
    tenant: Tenant, *, now: dt.datetime, plans: PlanLoader | None = None
) -> CreditUsageView:
    """The figures of the credits screen: the plan (through ``plans``, else two queries), then the usage
    and the process counter in one statement."""
    plan_view = await plans(tenant, now) if plans else await load_tenant_plan(tenant, now=now)
    limits = plan_view.effective_limits
    period = plan_view.period
    usage, used = await usage_and_processes(tenant.id, period.name)
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
        ),
        storage=storage_figures(
            usage.storage_bytes, limits.storage_mb, plan_view.subscription.plan, tenant.currency
        ),
    )


async def credit_usage_if_active(
    tenant: Tenant, *, now: dt.datetime, plans: PlanLoader | None = None
) -> CreditUsageView | None:
    """``credit_usage``, or ``None`` without an active plan (no limit to measure against): for answers
    that stand without it, such as a usage report, which is accepted whatever the plan."""
    try:
        return await credit_usage(tenant, now=now, plans=plans)
    except NoActivePlan:
        return None
