"""The operations view (issue 13): what the vendor's staff must act on, across every environment.

- environments over their credit limit (no sync process starts for them: docs/design.md, "Credits and
  processes") and environments beyond their process allowance this billing period (not blocked: the
  vendor is to contact them);
- limit alerts still open, quote requests, e-mails the outbox gave up on (with a resend).

Each list costs a fixed number of statements whatever the number of environments: the figures of every
environment are read in four statements and judged here, and the lists are single keyset-paged queries.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from tortoise.transactions import in_transaction

from app.auth.operator import Operator
from app.i18n import _
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.enums import OutboxStatus, PlanSubscriptionStatus
from app.models.metering import AlertKind, AlertState, LimitAlert, ProcessCounter
from app.models.notifications import OutboxEmail
from app.models.quotes import QuoteRequest
from app.models.tenancy import Tenant
from app.models.usage import TenantUsage
from app.services import cursors, operator_audit, sql
from app.services.credits import percent_of, process_allowance
from app.services.cursors import Page
from app.services.errors import DomainError, ErrorCode, NotFound
from app.services.periods import BillingPeriod, period_containing
from app.services.subscriptions import counting_at


class EmailNotUndelivered(DomainError):
    code = ErrorCode.EMAIL_NOT_UNDELIVERED
    default_message = _("This e-mail is not undelivered: it is sent or on its way.")


# --- Limits: credits and processes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvironmentRef:
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class OverCreditLimit:
    environment: EnvironmentRef
    credits_used: int
    credit_limit: int
    last_report_at: dt.datetime | None

    @property
    def percent(self) -> Decimal:
        return percent_of(self.credits_used, self.credit_limit)


@dataclass(frozen=True, slots=True)
class BeyondAllowance:
    environment: EnvironmentRef
    period: BillingPeriod
    processes_started: int
    allowance: int


@dataclass(frozen=True, slots=True)
class LimitsSnapshot:
    over_credit_limit: list[OverCreditLimit]  # highest percent first
    beyond_process_allowance: list[BeyondAllowance]  # most beyond first


async def limits_snapshot(*, now: dt.datetime) -> LimitsSnapshot:
    """Active environments with an active plan, judged on their effective credit limit at ``now`` (plan +
    counting credit packs) and their process counter of the billing period containing ``now``.

    Four statements: plans, credit packs, usage, counters (the current period of any anchor day is named
    after this month or the last)."""
    plans = await PlanSubscription.filter(
        status=PlanSubscriptionStatus.ACTIVE, tenant__is_active=True
    ).values(
        "tenant_id",
        "tenant__slug",
        "tenant__name",
        "tenant__billing_anchor_day",
        "plan__credits",
        "plan__process_buffer_percent",
    )
    packs = await AddOnSubscription.filter(
        counting_at(now), add_on__increment_credits__gt=0, tenant__is_active=True
    ).values("tenant_id", "quantity", "add_on__increment_credits")
    usage = {
        str(row["tenant_id"]): row
        for row in await TenantUsage.filter(tenant__is_active=True).values(
            "tenant_id", "credits", "measured_at"
        )
    }
    month = period_containing(now, 1)
    names = {month.name, period_containing(month.start - dt.timedelta(days=1), 1).name}
    counters = {
        (str(row["tenant_id"]), row["period"]): int(row["used"])
        for row in await ProcessCounter.filter(period__in=sorted(names)).values("tenant_id", "period", "used")
    }
    extra_credits: dict[str, int] = defaultdict(int)
    for pack in packs:
        extra_credits[str(pack["tenant_id"])] += int(pack["quantity"]) * int(
            pack["add_on__increment_credits"]
        )
    over: list[OverCreditLimit] = []
    beyond: list[BeyondAllowance] = []
    for plan in plans:
        tenant_id = str(plan["tenant_id"])
        environment = EnvironmentRef(slug=plan["tenant__slug"], name=plan["tenant__name"])
        limit = int(plan["plan__credits"]) + extra_credits[tenant_id]
        reported = usage.get(tenant_id)
        used = int(reported["credits"]) if reported else 0
        if used > limit:
            over.append(
                OverCreditLimit(environment, used, limit, reported["measured_at"] if reported else None)
            )
        period = period_containing(now, int(plan["tenant__billing_anchor_day"]))
        allowance = process_allowance(limit, int(plan["plan__process_buffer_percent"]))
        started = counters.get((tenant_id, period.name), 0)
        if started > allowance:
            beyond.append(BeyondAllowance(environment, period, started, allowance))
    over.sort(key=lambda row: (-row.percent, row.environment.slug))
    beyond.sort(
        key=lambda row: (-Decimal(row.processes_started) / max(row.allowance, 1), row.environment.slug)
    )
    return LimitsSnapshot(over, beyond)


# --- Keyset pages ----------------------------------------------------------------------------------------


T = TypeVar("T")
M = TypeVar("M", QuoteRequest, OutboxEmail)


# --- Open alerts -----------------------------------------------------------------------------------------

# An alert is open while its threshold stays crossed: TRIGGERED with no RESOLVED after it for the same
# environment, kind and threshold. Process counters never fall within a period, so a process alert is
# open while its period is the environment's current one: this month's name for anchors up to {4}, last
# month's for the others (``_current_period_split``).
_OPEN_ALERTS = (
    'm."state" = {0} AND NOT EXISTS (SELECT 1 FROM "limit_alert" AS r WHERE r."tenant_id" = m."tenant_id"'
    ' AND r."kind" = m."kind" AND r."threshold" = m."threshold" AND r."state" = {1} AND r."id" > m."id")'
    ' AND (m."kind" <> {2} OR (m."period" = {3} AND t."billing_anchor_day" <= {4})'
    ' OR (m."period" = {5} AND t."billing_anchor_day" > {4}))'
)


def _current_period_split(now: dt.datetime) -> tuple[str, int, str]:
    """(this month's name, the highest anchor day whose current period started this month, last month's)."""
    this_month = period_containing(now, 1).name
    started = [day for day in range(1, 32) if period_containing(now, day).name == this_month]
    last_month = period_containing(period_containing(now, 1).start - dt.timedelta(days=1), 1).name
    return this_month, max(started), last_month


def alert_cursor(alert: LimitAlert) -> str:
    return cursors.encode("open-alert", alert.id)


async def open_alerts(*, now: dt.datetime, first: int, after: str | None) -> Page[tuple[LimitAlert, Tenant]]:
    """Open limit alerts of every environment, newest first, each with its environment: two statements."""
    this_month, split, last_month = _current_period_split(now)
    values: list[Any] = [AlertState.TRIGGERED, AlertState.RESOLVED, AlertKind.PROCESSES, this_month, split]
    values.append(last_month)
    count = await sql.fetch_one(
        'SELECT COUNT(*) FROM "limit_alert" AS m JOIN "tenant" AS t ON t."id" = m."tenant_id" WHERE '
        + _OPEN_ALERTS,
        *values,
    )
    where = _OPEN_ALERTS
    if after is not None:
        where += ' AND m."id" < {6}'
        values.append(cursors.decode_id(after, "open-alert"))
    where += f' ORDER BY m."id" DESC LIMIT {first + 1:d}'
    rows = [
        sql.split_with_tenant(LimitAlert, row)
        for row in await sql.fetch_all(sql.with_tenant(LimitAlert, where), *values)
    ]
    return Page(
        items=[(alert_cursor(alert), (alert, tenant)) for alert, tenant in rows[:first]],
        has_next_page=len(rows) > first,
        total_count=int(count[0]),
    )


# --- Quote requests --------------------------------------------------------------------------------------


async def quote_requests(*, handled: bool | None, first: int, after: str | None) -> Page[QuoteRequest]:
    """Quote requests, newest first: waiting ones (``handled=False``), handled ones, or all."""
    rows = QuoteRequest.all() if handled is None else QuoteRequest.filter(handled_at__isnull=not handled)
    return await cursors.newest_first(
        rows, "quote-request", first=first, after=after, related=("tenant", "handled_by")
    )


async def mark_quote_request_handled(
    operator: Operator, request_id: str, *, now: dt.datetime
) -> QuoteRequest:
    """Record that the vendor answered a quote request, with the key that says so (audited once); marking
    a handled one again changes nothing and returns it as it was handled."""
    request = await QuoteRequest.get_or_none(id=_id_or_not_found(request_id, "quoteRequestId"))
    if request is None:
        raise NotFound(_("There is no such quote request."), field="quoteRequestId")
    async with in_transaction():
        changed = await QuoteRequest.filter(id=request.id, handled_at__isnull=True).update(
            handled_at=now, handled_by_id=operator.key.id
        )
        if changed:
            await operator_audit.record(
                operator,
                "quote_request.handle",
                now=now,
                tenant_id=request.tenant_id,
                subject_id=request.id,
                add_on_code=request.add_on_code,
            )
    return await QuoteRequest.get(id=request.id).select_related("tenant", "handled_by")


# --- Undelivered e-mails ---------------------------------------------------------------------------------


async def undelivered_emails(*, first: int, after: str | None) -> Page[OutboxEmail]:
    """E-mails the outbox gave up on (DEAD: refused permanently too many times), newest first."""
    dead = OutboxEmail.filter(status=OutboxStatus.DEAD)
    return await cursors.newest_first(
        dead, "undelivered-email", first=first, after=after, related=("tenant",)
    )


async def resend_email(operator: Operator, email_id: str, *, now: dt.datetime) -> OutboxEmail:
    """Put an undelivered e-mail back in the outbox: PENDING, due now, its attempts back to 0, so that the
    dispatcher sends it on its next pass (within a second) with a full round of retries. Its last error
    stays, as the history of why it failed. Audited (``email.resend``)."""
    key = _id_or_not_found(email_id, "emailId")
    async with in_transaction():
        email = await OutboxEmail.get_or_none(id=key)
        if email is None:
            raise NotFound(_("There is no such e-mail."), field="emailId")
        resent = await OutboxEmail.filter(id=key, status=OutboxStatus.DEAD).update(
            status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, claimed_until=None
        )
        if not resent:
            raise EmailNotUndelivered(
                _("This e-mail is {status}, not undelivered: nothing to resend.", status=email.status.value),
                field="emailId",
                status=email.status.value,
            )
        await operator_audit.record(
            operator,
            "email.resend",
            now=now,
            tenant_id=email.tenant_id,
            subject_id=email.id,
            to=email.to_address,
            previous_attempts=email.attempts,
        )
    return await OutboxEmail.get(id=key).select_related("tenant")


def _id_or_not_found(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(_("Nothing has this id."), field=field) from None
