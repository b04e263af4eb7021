"""The connector's quota check before each sync process (docs/design.md, "Credits and processes").

Above the credit limit no process is launched (the answer is "no" with a reason); an inactive plan
launches nothing either. Processes beyond the monthly allowance are still allowed: the vendor is
alerted instead (see ``processes.start_process``). The store itself is never blocked here.

A kind of process its admins paused, or whose monthly cap its starts reached (``app.services.
process_control``), is denied for that kind only, after the credit limit: ``CREDITS_EXCEEDED`` first, then
``PROCESS_PAUSED``, then ``PROCESS_CAP_REACHED``. The answer comes from caches (the plan; the figures,
which hold the controls: no statement more than before); it is advice, and the start decides in the
database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from app.models.metering import ProcessKind
from app.models.tenancy import Tenant
from app.observability import QUOTA_DECISIONS, labelled
from app.services.credits import process_allowance
from app.services.figures_cache import FiguresCache, current_figures
from app.services.periods import BillingPeriod, period_containing
from app.services.plan_cache import PlanCache, current_plan
from app.services.usage import Control


class QuotaReason(StrEnum):
    CREDITS_EXCEEDED = "CREDITS_EXCEEDED"  # denied: credits used above the limit
    PLAN_INACTIVE = "PLAN_INACTIVE"  # denied: no active plan
    BEYOND_ALLOWANCE = "BEYOND_ALLOWANCE"  # allowed: past the monthly allowance, the vendor is alerted
    PROCESS_PAUSED = "PROCESS_PAUSED"  # denied: the admins paused this kind of process
    PROCESS_CAP_REACHED = "PROCESS_CAP_REACHED"  # denied: this kind's monthly cap is reached


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    process: ProcessKind
    allowed: bool
    reason: QuotaReason | None
    credits_used: int
    credits_limit: int
    processes_used: int
    process_allowance: int
    period: BillingPeriod
    kind_starts: int = 0  # the kind's starts counted in the period
    paused: bool = False  # the kind is paused by the admins
    monthly_cap: int | None = None  # the kind's cap per period; None: none


def denial(
    *, credits_used: int, credits_limit: int, control: Control, kind_starts: int
) -> QuotaReason | None:
    """Why a start of a kind may not start now, if it may not: the credit limit first (it stops every
    kind), then the kind's pause, then its monthly cap."""
    if credits_exceeded(credits_used, credits_limit):
        return QuotaReason.CREDITS_EXCEEDED
    return kind_denial(control, kind_starts)


def kind_denial(control: Control, kind_starts: int) -> QuotaReason | None:
    """Why the admins' control of a kind stops its next start, if it does: paused, then capped."""
    if control.paused:
        return QuotaReason.PROCESS_PAUSED
    if control.monthly_cap is not None and kind_starts >= control.monthly_cap:
        return QuotaReason.PROCESS_CAP_REACHED
    return None


def credits_exceeded(credits_used: int, credits_limit: int) -> bool:
    """Seed 002: "Si se supera el límite de créditos, no se lanzarán procesos" - at the limit is fine."""
    return credits_used > credits_limit


async def check_quota(
    tenant: Tenant,
    process: ProcessKind,
    *,
    now: dt.datetime,
    plan_cache: PlanCache | None = None,
    figures_cache: FiguresCache | None = None,
) -> QuotaDecision:
    """May ``process`` start now? Counts nothing. The limits and the figures (the kinds' controls
    included) come from the caches when given (see their modules for why that is safe: the start decides
    in the database)."""
    plan = await current_plan(tenant, now=now, cache=plan_cache)
    period = plan.period if plan else period_containing(now, tenant.billing_anchor_day)
    figures = await current_figures(tenant.id, period.name, cache=figures_cache)
    control = figures.control(process)
    credits_used, used = figures.credits_used, figures.processes_used
    kind_starts = figures.kind_starts(process)
    if plan is None:
        decision = QuotaDecision(
            process, False, QuotaReason.PLAN_INACTIVE, credits_used, 0, used, 0, period,
            kind_starts, control.paused, control.monthly_cap,
        )  # fmt: skip
    else:
        limit = plan.effective_limits.credits
        allowance = process_allowance(limit, plan.subscription.plan.process_buffer_percent)
        reason = denial(
            credits_used=credits_used, credits_limit=limit, control=control, kind_starts=kind_starts
        )
        allowed = reason is None
        if allowed and used >= allowance:
            reason = QuotaReason.BEYOND_ALLOWANCE
        decision = QuotaDecision(
            process,
            allowed=allowed,
            reason=reason,
            credits_used=credits_used,
            credits_limit=limit,
            processes_used=used,
            process_allowance=allowance,
            period=period,
            kind_starts=kind_starts,
            paused=control.paused,
            monthly_cap=control.monthly_cap,
        )
    record_decision(decision.allowed, decision.reason)
    return decision


def record_decision(allowed: bool, reason: QuotaReason | None) -> None:
    # Through the remembered children, as every hot metric: a quota check and a start each count one.
    labelled(QUOTA_DECISIONS, "allowed" if allowed else "denied", reason.value if reason else "OK").inc()
