"""Usage reports from the ERP connector (docs/design.md, "Credits and processes"; idempotency keys).

A report carries absolute counts (variants, customers, contacts, sales reps, admin users, and
optionally users and integrations), storage bytes and when they were measured. It replaces the
tenant's usage only when measured later than the one applied (one upsert guarded by ``measured_at``),
so late reports change nothing; a retried report (same idempotency key) returns
the first answer. An applied report re-evaluates the credits, storage, users and integrations
alerts; their e-mails are queued in the same transaction and they are published after it commits.

The alerts are judged against the limits in force when the report commits: the transaction first
takes the tenant's lock (``app.services.locks``), as a purchase and an add-on's end do before they
re-evaluate the alerts, and only then reads the plan and its add-ons from the database (never from
a cache a concurrent purchase may not have invalidated yet), and the alert thresholds likewise. A
report and a purchase racing each other therefore end as one serial order or the other
(tests/api/test_report_races.py). The statement that takes the lock also returns the thresholds; the
insert of the report decides whether it applies (under the lock no other report of the tenant runs) and
returns which alerts have fired, so an evaluation that changes no alert costs no statement of its own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from tortoise import connections
from tortoise.transactions import in_transaction

from app.broadcast import Broadcaster
from app.i18n import _
from app.models.enums import AddOnCategory
from app.models.metering import AlertKind, LimitAlert, UsageReport
from app.models.tenancy import Tenant
from app.services import alert_settings, alerts, sql
from app.services.credits import BYTES_PER_MB
from app.services.errors import InvalidInput
from app.services.figures_cache import FiguresCache, usage_changed
from app.services.idempotency import IdempotencyKeyReused, fingerprint, validate_key
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


# The tenant's lock (``app.services.locks``: the same no-op UPDATE, first in the transaction), returning the
# alert thresholds as committed. Only the locked row's own columns: on PostgreSQL a subquery here would read
# the snapshot taken before waiting for the lock, not what the transaction that held it committed.
_LOCK = (
    'UPDATE "tenant" SET "billing_anchor_day" = "billing_anchor_day" WHERE "id" = {0}'
    ' RETURNING "alert_thresholds"'
)
_REPORT_COLUMNS = (
    "id", "tenant_id", "idempotency_key", "fingerprint", *COUNT_FIELDS, "users", "integrations",
    "storage_bytes", "measured_at", "received_at",
)  # fmt: skip
_USAGE_COLUMNS = (
    "tenant_id", *COUNT_FIELDS, "credits", "users", "integrations", "storage_bytes", "measured_at",
    "updated_at",
)  # fmt: skip


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _values(count: int) -> str:
    return ", ".join(f"{{{n}}}" for n in range(count))


# The report, applied when measured after the usage in force (decided here: under the tenant's lock no
# other report runs until the commit), returning that and the (kind, threshold) pairs that fired and are
# not re-armed, as ``KIND:threshold`` joined by commas. A retry with the same key inserts and returns
# nothing (a report without a key never conflicts).
_TENANT, _MEASURED = (f"{{{_REPORT_COLUMNS.index(name)}}}" for name in ("tenant_id", "measured_at"))
_INSERT_REPORT = {
    dialect: f'INSERT INTO "usage_report" ({_columns(_REPORT_COLUMNS)}, "applied")'
    f' VALUES ({_values(len(_REPORT_COLUMNS))}, NOT EXISTS (SELECT 1 FROM "tenant_usage"'
    f' WHERE "tenant_id" = {_TENANT} AND "measured_at" >= {_MEASURED}))'
    ' ON CONFLICT DO NOTHING RETURNING "applied",'
    f' (SELECT {aggregate}("kind" || \':\' || "threshold", \',\') FROM "alert_arming"'
    f' WHERE "tenant_id" = {_TENANT} AND "triggered") AS "fired"'
    for dialect, aggregate in (("postgres", "string_agg"), ("sqlite", "group_concat"))
}
# The tenant's first report creates its row; a later one replaces it only when measured later.
_APPLY = (
    f'INSERT INTO "tenant_usage" ({_columns(_USAGE_COLUMNS)}) VALUES ({_values(len(_USAGE_COLUMNS))})'
    ' ON CONFLICT ("tenant_id") DO UPDATE SET '
    + ", ".join(f'"{column}" = excluded."{column}"' for column in _USAGE_COLUMNS[1:])
    + ' WHERE "tenant_usage"."measured_at" IS NULL OR "tenant_usage"."measured_at" < excluded."measured_at"'
)
_THRESHOLDS = Tenant._meta.fields_map["alert_thresholds"]


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
    raised: list[LimitAlert] = []
    async with in_transaction():
        # First: no purchase or add-on end of this tenant may commit between reading the limits below
        # and this commit (they take the same lock before re-evaluating the alerts). By name: on
        # PostgreSQL, the positional helpers drop what an UPDATE or INSERT returns.
        thresholds = (await sql.fetch_all(_LOCK, tenant.id))[0]["alert_thresholds"]
        row = UsageReport(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            idempotency_key=idempotency_key,
            fingerprint=digest,
            **asdict(counts),
            applied=False,
            received_at=now,
        )
        dialect = connections.get("default").capabilities.dialect
        inserted = await sql.fetch_all(_INSERT_REPORT[dialect], *(getattr(row, c) for c in _REPORT_COLUMNS))
        if not inserted:
            first = await UsageReport.get(tenant_id=tenant.id, idempotency_key=idempotency_key)
            if first.fingerprint != digest:
                raise IdempotencyKeyReused(field="idempotencyKey")
            return ReportOutcome(first, replayed=True)
        applied = row.applied = bool(inserted[0]["applied"])
        if applied:
            plan = await active_plan(tenant, now=now)  # the limits in force, read under the lock
            integrations = counts.integrations
            usage = CurrentUsage(
                **{name: getattr(counts, name) for name in COUNT_FIELDS},
                users=counts.users if counts.users is not None else counts.admin_users,
                integrations=integrations if integrations is not None else integrations_in_use(plan),
                storage_bytes=counts.storage_bytes,
                measured_at=counts.measured_at,
            )
            counted = (getattr(usage, name) for name in COUNT_FIELDS)
            await sql.execute(
                _APPLY, tenant.id, *counted, usage.credits, usage.users, usage.integrations,
                usage.storage_bytes, usage.measured_at, now,
            )  # fmt: skip
            if plan is not None:
                raised = await alerts.apply_measures(
                    tenant.id,
                    usage_measures(plan, usage),
                    alerts.normalized_thresholds(_THRESHOLDS.to_python_value(thresholds)),
                    now=now,
                    triggered=alerts.parse_fired(inserted[0]["fired"]),
                )
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
