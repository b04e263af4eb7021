"""A kind's monthly cap is decided in the start's conditional UPDATE: 1,000 concurrent starts of a capped
kind never pass the cap, on SQLite and on PostgreSQL (whose pool runs them at once); and the rules of
app.services.process_control, quota and processes, without GraphQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal

import pytest

from app.auth.principal import Principal
from app.clock import FrozenClock
from app.models.audit import AuditEntry
from app.models.metering import ProcessControl, ProcessCounter, ProcessKind, ProcessStart
from app.models.tenancy import Tenant, User
from app.seed import SeedResult
from app.services import credits, process_control, processes, quota
from app.services.errors import InvalidInput, NotAdmin
from app.services.figures_cache import FiguresCache, read_figures
from app.services.periods import period_named
from app.services.plan_cache import PlanCache
from app.services.quota import QuotaReason
from app.services.usage import Control

CAP = 137
OPS = "ops@tollgate.local"


async def principal_of(email: str) -> Principal:
    user = await User.get(email=email).prefetch_related("tenant")
    return Principal(tenant=user.tenant, user=user)


async def test_a_thousand_concurrent_starts_of_a_capped_kind_count_exactly_the_cap(
    demo: SeedResult, clock: FrozenClock
) -> None:
    admin = await principal_of("admin@acme.test")
    acme = admin.tenant
    await process_control.set_process_control(
        admin, ProcessKind.STOCK_UPDATE, paused=False, monthly_cap=CAP, now=clock.now()
    )
    capped = [(ProcessKind.STOCK_UPDATE, f"stock-{n}") for n in range(1000)]
    other = [(ProcessKind.PRODUCT_SYNC, f"sync-{n}") for n in range(200)]
    calls = [*capped, *other]
    calls = calls[::2] + calls[1::2]  # the two kinds interleaved
    plans = PlanCache()  # as a running gateway: the limits cached, the decision in the database

    began = time.perf_counter()
    outcomes = await asyncio.gather(
        *(
            processes.start_process(acme, kind, key, now=clock.now(), ops_email=OPS, plan_cache=plans)
            for kind, key in calls
        )
    )
    elapsed = time.perf_counter() - began

    stock = [o for o in outcomes if o.process == ProcessKind.STOCK_UPDATE]
    sync = [o for o in outcomes if o.process == ProcessKind.PRODUCT_SYNC]
    assert sum(o.allowed for o in stock) == CAP
    assert {o.reason for o in stock if not o.allowed} == {QuotaReason.PROCESS_CAP_REACHED}
    assert sorted(o.kind_starts for o in stock if o.allowed) == list(range(1, CAP + 1))
    assert all(o.allowed for o in sync)
    counter = await ProcessCounter.get(tenant_id=acme.id, period="2026-11")
    assert (counter.used, counter.started(ProcessKind.STOCK_UPDATE)) == (CAP + 200, CAP)
    assert counter.started(ProcessKind.PRODUCT_SYNC) == 200
    starts = await ProcessStart.filter(tenant_id=acme.id)
    assert len(starts) == counter.used
    assert sum(s.process == ProcessKind.STOCK_UPDATE for s in starts) == CAP
    assert sorted(o.processes_used for o in outcomes if o.allowed) == list(range(1, CAP + 201))
    print(f"1200 concurrent starts, 1000 of a kind capped at {CAP}: {elapsed:.2f} s")  # pytest -s


async def test_concurrent_starts_of_a_paused_kind_all_fail_and_count_nothing(
    demo: SeedResult, clock: FrozenClock
) -> None:
    admin = await principal_of("admin@acme.test")
    await process_control.set_process_control(
        admin, ProcessKind.ORDER_EXPORT, paused=True, monthly_cap=None, now=clock.now()
    )

    outcomes = await asyncio.gather(
        *(
            processes.start_process(
                admin.tenant, ProcessKind.ORDER_EXPORT, f"k-{n}", now=clock.now(), ops_email=OPS
            )
            for n in range(100)
        )
    )

    assert {(o.allowed, o.reason) for o in outcomes} == {(False, QuotaReason.PROCESS_PAUSED)}
    assert not await ProcessStart.exists()


async def test_setting_a_control_is_for_admins_with_a_cap_in_range(
    demo: SeedResult, clock: FrozenClock
) -> None:
    member = await principal_of("member@acme.test")
    admin = await principal_of("admin@acme.test")

    with pytest.raises(NotAdmin):
        await process_control.set_process_control(
            member, ProcessKind.PRODUCT_SYNC, paused=True, monthly_cap=None, now=clock.now()
        )
    for bad in (-1, 1_000_000_001):
        with pytest.raises(InvalidInput) as refused:
            await process_control.set_process_control(
                admin, ProcessKind.PRODUCT_SYNC, paused=False, monthly_cap=bad, now=clock.now()
            )
        assert refused.value.field == "monthlyCap"
    assert not await ProcessControl.filter(tenant_id=admin.tenant.id).exists()
    assert not await AuditEntry.exists()

    row = await process_control.set_process_control(
        admin, ProcessKind.PRODUCT_SYNC, paused=False, monthly_cap=0, now=clock.now()
    )
    assert (row.monthly_cap, row.updated_by) == (0, "admin@acme.test")
    assert (await read_figures(admin.tenant.id, "2026-11")).controls == {
        ProcessKind.PRODUCT_SYNC: Control(False, 0)
    }


async def test_the_figures_cache_holds_the_controls_until_a_change_drops_them(
    demo: SeedResult, clock: FrozenClock
) -> None:
    admin = await principal_of("admin@acme.test")
    cache = FiguresCache(ttl=60)
    assert (await cache.figures(admin.tenant.id, "2026-11")).controls == {}

    await process_control.set_process_control(
        admin, ProcessKind.PRODUCT_SYNC, paused=True, monthly_cap=None, now=clock.now()
    )
    assert (await cache.figures(admin.tenant.id, "2026-11")).controls == {}  # not told: still the entry
    await process_control.set_process_control(
        admin, ProcessKind.STOCK_UPDATE, paused=False, monthly_cap=7, now=clock.now(), figures_cache=cache
    )
    figures = await cache.figures(admin.tenant.id, "2026-11")
    assert figures.controls == {
        ProcessKind.PRODUCT_SYNC: Control(True, None),
        ProcessKind.STOCK_UPDATE: Control(False, 7),
    }
    assert (figures.control(ProcessKind.PRICE_UPDATE), figures.processes_used) == (Control(), 0)


def test_the_kind_is_judged_paused_first_then_capped() -> None:
    assert quota.kind_denial(Control(), 10**9) is None
    assert quota.kind_denial(Control(True, 5), 9) == QuotaReason.PROCESS_PAUSED
    assert quota.kind_denial(Control(False, 5), 4) is None
    assert quota.kind_denial(Control(False, 5), 5) == QuotaReason.PROCESS_CAP_REACHED
    assert quota.kind_denial(Control(False, 0), 0) == QuotaReason.PROCESS_CAP_REACHED


def test_a_denied_start_learns_credits_first_then_pause_then_cap() -> None:
    # row: credits used, the counter's total and kind column, the control's paused and cap
    assert processes.denial_of((4001, 10, 5, True, 5), 4000).reason == QuotaReason.CREDITS_EXCEEDED
    assert processes.denial_of((4000, 10, 5, True, 5), 4000).reason == QuotaReason.PROCESS_PAUSED
    assert processes.denial_of((None, 10, 5, 1, None), 4000).reason == QuotaReason.PROCESS_PAUSED
    assert processes.denial_of((None, 10, 5, False, 5), 4000).reason == QuotaReason.PROCESS_CAP_REACHED
    assert processes.denial_of((None, 10, 4, 0, 5), 4000).reason is None  # changed meanwhile: count again
    no_counter = processes.denial_of((None, None, None, None, None), 4000)
    assert (no_counter.reason, no_counter.has_counter, no_counter.used) == (None, False, 0)


def test_kinds_usage_shares_paces_and_caps() -> None:
    period = period_named("2026-11", 1)
    now = dt.datetime(2026, 11, 11, tzinfo=dt.UTC)  # 10 days into the period
    figures = credits.ProcessFigures(
        period=period,
        used=30,
        estimate=0,
        allowance=0,
        forecast=credits.forecast_processes(used=30, allowance=0, period=period, now=now),
        by_kind={ProcessKind.PRODUCT_SYNC: 20, ProcessKind.STOCK_UPDATE: 10},
        controls={ProcessKind.STOCK_UPDATE: Control(False, 12)},
    )

    kinds = credits.kinds_usage(figures, last={}, now=now)

    by = {kind.process: kind for kind in kinds}
    assert [kind.process for kind in kinds] == list(ProcessKind)
    assert (by[ProcessKind.PRODUCT_SYNC].share, by[ProcessKind.PRODUCT_SYNC].daily_pace) == (
        Decimal("66.67"), Decimal("2.00"),
    )  # fmt: skip
    assert (by[ProcessKind.STOCK_UPDATE].share, by[ProcessKind.STOCK_UPDATE].cap_remaining) == (
        Decimal("33.33"),
        2,
    )
    assert by[ProcessKind.PRICE_UPDATE].cap_remaining is None
    assert by[ProcessKind.PRICE_UPDATE].share == Decimal("0.00")


async def test_quota_answers_for_the_kind_only(demo: SeedResult, clock: FrozenClock) -> None:
    admin = await principal_of("admin@acme.test")
    acme: Tenant = admin.tenant
    await process_control.set_process_control(
        admin, ProcessKind.PRODUCT_SYNC, paused=False, monthly_cap=1, now=clock.now()
    )
    await processes.start_process(acme, ProcessKind.PRODUCT_SYNC, "only-one", now=clock.now(), ops_email=OPS)

    capped = await quota.check_quota(acme, ProcessKind.PRODUCT_SYNC, now=clock.now())
    other = await quota.check_quota(acme, ProcessKind.STOCK_UPDATE, now=clock.now())

    assert (capped.allowed, capped.reason, capped.kind_starts, capped.monthly_cap) == (
        False, QuotaReason.PROCESS_CAP_REACHED, 1, 1,
    )  # fmt: skip
    assert (other.allowed, other.reason, other.kind_starts, other.monthly_cap) == (True, None, 0, None)
