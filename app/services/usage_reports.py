"""Usage reports from the ERP connector (docs/design.md, "Credits and processes"; idempotency keys).

A report carries absolute counts (variants, customers, contacts, sales reps, admin users, and
optionally users and integrations), storage bytes and when they were measured. It replaces the
tenant's usage only when measured later than the one applied (one conditional UPDATE on
``measured_at``), so late reports change nothing; a retried report (same idempotency key) returns
the first answer. An applied report re-evaluates the credits, storage, users and integrations
alerts; their e-mails are queued in the same transaction and they are published after it commits.

The alerts are judged against the limits in force when the report commits: the transaction first
takes the tenant's lock (``app.services.locks``), as a purchase and an add-on's end do before they
re-evaluate the alerts, and only then reads the plan and its add-ons from the database (never from
a cache a concurrent purchase may not have invalidated yet), and the alert thresholds likewise. A
report and a purchase racing each other therefore end as one serial order or the other
(tests/api/test_report_races.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.broadcast import Broadcaster
from app.i18n import _
from app.models.enums import AddOnCategory
from app.models.metering import AlertKind, LimitAlert, UsageReport
from app.models.tenancy import Tenant
from app.models.usage import TenantUsage
from app.services import alert_settings, alerts
from app.services.credits import BYTES_PER_MB
from app.services.errors import InvalidInput
from app.services.figures_cache import FiguresCache, usage_changed
from app.services.idempotency import IdempotencyKeyReused, fingerprint, validate_key
from app.services.locks import lock_tenant
from app.services.subscriptions import TenantPlan, active_plan
from app.services.usage import COUNT_FIELDS, CurrentUsage, current_usage

MAX_COUNT = 1_000_000_000  # a billion variants or customers is not a measurement, it is a bug
MAX_STORAGE_BYTES = 10**16  # 10 PB

GRAPHQL_NAMES = {
    "variants": "variants",
    "customers": "customers",
    "contacts": "contacts",
    "sales_reps": "salesReps",
    "admin_users": "adminUsers",
    "users": "users",
    "integrations": "integrations",
    "storage_bytes": "storageBytes",
}


@dataclass(frozen=True, slots=True)
class UsageCounts:
    variants: int
    customers: int
    contacts: int
    sales_reps: int
    admin_users: int
    storage_bytes: int
    measured_at: dt.datetime
    users: int | None = None  # None: the admin users count
    integrations: int | None = None  # None: the active integration add-ons


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    report: UsageReport  # as stored (``applied`` included): on a replay, the first report with this key
    replayed: bool
    alerts: list[LimitAlert] = field(default_factory=list)


def credits_in(counts: UsageCounts | UsageReport) -> int:
    """The credits a report's counts add up to: variants, customers, contacts, sales reps and admins."""
    return sum(getattr(counts, name) for name in COUNT_FIELDS)


def validate(counts: UsageCounts, *, now: dt.datetime, max_skew: dt.timedelta) -> UsageCounts:
    """Counts are whole numbers from 0 to a billion (storage to 10 PB), measured not in the future."""
    for name in (*COUNT_FIELDS, "users", "integrations"):
        value = getattr(counts, name)
        if value is not None and not 0 <= value <= MAX_COUNT:
            raise InvalidInput(
                _(
                    "{name} must be between 0 and {maximum}.",
                    name=GRAPHQL_NAMES[name],
                    maximum=format(MAX_COUNT, ","),
                ),
                field=GRAPHQL_NAMES[name],
            )
    if not 0 <= counts.storage_bytes <= MAX_STORAGE_BYTES:
        raise InvalidInput(
            _("storageBytes must be between 0 and {maximum}.", maximum=format(MAX_STORAGE_BYTES, ",")),
            field="storageBytes",
        )
    measured_at = counts.measured_at
    if measured_at.tzinfo is None:
        measured_at = measured_at.replace(tzinfo=dt.UTC)  # ISO 8601 without an offset reads as UTC
    if measured_at > now + max_skew:
        raise InvalidInput(_("measuredAt is in the future."), field="measuredAt")
    return UsageCounts(**{**asdict(counts), "measured_at": measured_at.astimezone(dt.UTC)})


def integrations_in_use(plan: TenantPlan | None) -> int:
    """Active integration add-ons (times quantity): the integrations count when none is reported."""
    if plan is None:
        return 0
    return sum(s.quantity for s in plan.add_ons if s.add_on.category == AddOnCategory.INTEGRATIONS)


async def report_usage(
    tenant: Tenant,
    counts: UsageCounts,
    *,
    idempotency_key: str | None,
    now: dt.datetime,
    max_skew: dt.timedelta = dt.timedelta(minutes=5),
    broadcaster: Broadcaster | None = None,
    figures_cache: FiguresCache | None = None,
) -> ReportOutcome:
    """Record and, when newer than the last applied one, apply a usage report."""
    counts = validate(counts, now=now, max_skew=max_skew)
    if idempotency_key is not None:
        validate_key(idempotency_key)
    digest = fingerprint(asdict(counts))
    users = counts.users if counts.users is not None else counts.admin_users
    credits = credits_in(counts)
    report_id = uuid.uuid4()
    async with in_transaction():
        # First: no purchase or add-on end of this tenant may commit between reading the limits below
        # and this commit (they take the same lock before re-evaluating the alerts).
        await lock_tenant(tenant.id)
        row = UsageReport(
            id=report_id,
            tenant_id=tenant.id,
            idempotency_key=idempotency_key,
            fingerprint=digest,
            **asdict(counts),
            applied=False,
            received_at=now,
        )
        if idempotency_key is None:
            await row.save(force_create=True)
        else:
            await UsageReport.bulk_create([row], ignore_conflicts=True)
            first = await UsageReport.get(tenant_id=tenant.id, idempotency_key=idempotency_key)
            if first.id != report_id:
                if first.fingerprint != digest:
                    raise IdempotencyKeyReused(field="idempotencyKey")
                return ReportOutcome(first, replayed=True)
        plan = await active_plan(tenant, now=now)  # the limits in force, read under the lock
        integrations = counts.integrations if counts.integrations is not None else integrations_in_use(plan)
        values = {
            **{name: getattr(counts, name) for name in COUNT_FIELDS},
            "credits": credits,
            "users": users,
            "integrations": integrations,
            "storage_bytes": counts.storage_bytes,
            "measured_at": counts.measured_at,
            "updated_at": now,
        }
        newer = Q(tenant_id=tenant.id) & (Q(measured_at__isnull=True) | Q(measured_at__lt=counts.measured_at))
        applied = await TenantUsage.filter(newer).update(**values)
        if not applied:
            # The tenant's first report creates its row (and a concurrent first report loses cleanly).
            await TenantUsage.bulk_create([TenantUsage(tenant_id=tenant.id)], ignore_conflicts=True)
            applied = await TenantUsage.filter(newer).update(**values)
        raised: list[LimitAlert] = []
        if applied:
            await UsageReport.filter(id=report_id).update(applied=True)
            row.applied = True
        if applied and plan is not None:
            raised = await _apply(tenant, plan, await current_usage(tenant.id), now=now)
    # After the commit, never before: the credits used changed, and maybe alerts were raised.
    if applied:
        await usage_changed(tenant.id, cache=figures_cache, broadcaster=broadcaster)
    await alerts.publish(broadcaster, raised)
    return ReportOutcome(row, replayed=False, alerts=raised)


def usage_measures(plan: TenantPlan, usage: CurrentUsage) -> list[alerts.Measure]:
    """What the alerts watch: credits, storage, users and integrations against the effective limits."""
    limits = plan.effective_limits
    return [
        alerts.Measure(AlertKind.CREDITS, usage.credits, limits.credits),
        alerts.Measure(AlertKind.STORAGE, usage.storage_bytes, limits.storage_mb * BYTES_PER_MB),
        alerts.Measure(AlertKind.USERS, usage.users, limits.users),
        alerts.Measure(AlertKind.INTEGRATIONS, usage.integrations, limits.integrations),
    ]


async def _apply(
    tenant: Tenant,
    plan: TenantPlan,
    usage: CurrentUsage,
    *,
    now: dt.datetime,
    thresholds: Sequence[int] | None = None,
) -> list[LimitAlert]:
    """Judge ``usage`` at ``thresholds``: by default the tenant's as committed, read under the caller's
    lock (never those of the tenant a cached credential carries: another instance may have changed them)."""
    if thresholds is None:
        thresholds = (await alert_settings.read_settings(tenant.id)).thresholds
    return await alerts.apply_measures(tenant.id, usage_measures(plan, usage), thresholds, now=now)


async def reevaluate_alerts(
    tenant: Tenant, *, now: dt.datetime, thresholds: Sequence[int] | None = None
) -> list[LimitAlert]:
    """The last usage against limits (a purchase, an add-on that ended) or thresholds that just changed.

    A crossing caused by the limit moving is a crossing all the same: it fires (or re-arms) once.
    Runs inside the caller's transaction, which took ``lock_tenant`` first (as ``report_usage``
    does), so that a report committing meanwhile cannot be judged against the old limits; the
    caller publishes the alerts after its commit. ``thresholds``: the ones just written by the
    caller (``set_alert_thresholds``); by default those committed.
    """
    plan = await active_plan(tenant, now=now)
    usage = await current_usage(tenant.id)
    if plan is None or usage.measured_at is None:
        return []  # nothing reported yet: nothing to compare
    return await _apply(tenant, plan, usage, now=now, thresholds=thresholds)
