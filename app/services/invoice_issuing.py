"""Issuing the invoices of ended billing periods (issue 14): once each, numbered without gaps.

Which periods are issued, per tenant with an active plan subscription:

- every ended period after the last one issued (catch-up after downtime: the oldest first, so the
  numbers follow the periods);
- a tenant with no invoice issued yet gets only its latest ended period: no backfill of the history
  from before invoicing existed;
- never a period that ended at or before its subscription started (nothing to bill).

With ``period_name`` ("2026-11"): that period for every tenant (by its own anchor day), if it has
ended and did not end before the subscription started; a period already issued is left as it is,
so running it twice issues nothing the second time (``tollgate invoices issue --period``).

Exactly once, with any number of instances running this at the same time: each invoice is written in
one transaction per tenant that first takes the tenant's lock (``lock_tenant``), re-checks that the
period is not issued, takes the next number by raising ``InvoiceSequence.last_number`` with a
conditional UPDATE (creating the year's row if missing, ignoring a conflict), inserts the invoice and
its lines, queues the admins' e-mail with the PDF attached (dedupe key per invoice) and the audit
entry. A rollback anywhere gives the number back, so the series has no gaps. The unique constraints
((tenant, period_start), (tenant, year, sequence), number) stop whatever slipped through.

The number is ``{SLUG-UPPERCASE}-{year}-{sequence:04d}``: the year of the issue date (the legal
series), the sequence per tenant and year from 1. The content is ``invoices.tenant_invoice`` of the
period at the issue instant, its lines copied as they are: an issued invoice equals the last preview of
its period (tests/test_invoice_property.py) and never changes afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.background import repeating
from app.clock import Clock
from app.models.billing import PlanSubscription
from app.models.enums import PlanSubscriptionStatus
from app.models.invoices import InvoiceSequence, IssuedInvoice, IssuedInvoiceLine
from app.models.tenancy import Tenant
from app.money import Money
from app.notifications import emails
from app.notifications.outbox import notify_admins
from app.services import audit
from app.services import invoices as invoice_service
from app.services.locks import lock_tenant
from app.services.periods import BillingPeriod, period_containing, period_named

logger = logging.getLogger("tollgate.invoices")

INVOICE_PDF = "invoice_pdf"  # OutboxEmail.attachments kind


@dataclass(frozen=True, slots=True)
class Issued:
    tenant_slug: str
    number: str
    period: str
    total: str
    currency: str


class SequenceConflict(Exception):
    """The conditional UPDATE of the sequence found another value: the transaction is rolled back."""


def invoice_number(slug: str, year: int, sequence: int) -> str:
    return f"{slug.upper()}-{year}-{sequence:04d}"


def previous_period(period: BillingPeriod, anchor_day: int) -> BillingPeriod:
    return period_containing(period.start - dt.timedelta(days=1), anchor_day)


def next_period(period: BillingPeriod, anchor_day: int) -> BillingPeriod:
    return period_containing(period.end, anchor_day)


def latest_ended_period(now: dt.datetime, anchor_day: int) -> BillingPeriod:
    return previous_period(period_containing(now, anchor_day), anchor_day)


async def due_periods(
    tenant: Tenant, subscription: PlanSubscription, now: dt.datetime, *, period_name: str | None = None
) -> list[BillingPeriod]:
    """The periods of ``tenant`` to issue at ``now``, oldest first (the rule in the module docstring)."""
    anchor = tenant.billing_anchor_day
    started = subscription.started_at
    if period_name is not None:
        period = period_named(period_name, anchor)
        ended = period.end_instant() <= now and period.end_instant() > started
        return [period] if ended else []
    latest = latest_ended_period(now, anchor)
    if latest.end_instant() <= started:
        return []
    last_start = (
        await IssuedInvoice.filter(tenant_id=tenant.id)
        .order_by("-period_start")
        .first()
        .values_list("period_start", flat=True)
    )
    if last_start is None:
        return [latest]
    periods: list[BillingPeriod] = []
    period = next_period(period_containing(last_start, anchor), anchor)  # type: ignore[arg-type]
    while period.start <= latest.start:
        if period.end_instant() > started:
            periods.append(period)
        period = next_period(period, anchor)
    return periods


async def next_number(tenant_id: uuid.UUID | str, year: int) -> int:
    """Raise the tenant's series of ``year`` by one (inside the issuing transaction) and return it."""
    await InvoiceSequence.bulk_create(
        [InvoiceSequence(tenant_id=tenant_id, year=year, last_number=0)], ignore_conflicts=True
    )
    row = await InvoiceSequence.get(tenant_id=tenant_id, year=year)
    current = int(row.last_number)
    raised = await InvoiceSequence.filter(id=row.id, last_number=current).update(last_number=current + 1)
    if raised != 1:
        raise SequenceConflict(f"invoice series {tenant_id}/{year} moved")
    return current + 1


def invoice_email(tenant: Tenant, invoice: IssuedInvoice, period: BillingPeriod) -> dict[str, Any]:
    """What the invoice e-mail says: the template ``invoice_issued`` (app/templates/email)."""
    return {
        "tenant_name": tenant.name,
        "number": invoice.number,
        "period_name": period.name,
        "period_start": invoice.period_start,
        "period_last_day": invoice.period_end - dt.timedelta(days=1),
        "issued_on": invoice.issued_at,
        "total": Money.of(invoice.total, invoice.currency),
    }


async def issue_period(tenant: Tenant, period: BillingPeriod, now: dt.datetime) -> Issued | None:
    """Issue ``tenant``'s invoice of ``period`` unless it already is; ``None`` when nothing was issued."""
    try:
        async with in_transaction():
            await lock_tenant(tenant.id)
            if await IssuedInvoice.exists(tenant_id=tenant.id, period_start=period.start):
                return None  # another instance (or an earlier run) issued it
            content = await invoice_service.tenant_invoice(tenant, period, now=now)
            year = now.astimezone(dt.UTC).year
            sequence = await next_number(tenant.id, year)
            invoice = await IssuedInvoice.create(
                tenant_id=tenant.id,
                number=invoice_number(tenant.slug, year, sequence),
                year=year,
                sequence=sequence,
                period_start=period.start,
                period_end=period.end,
                currency=content.currency,
                subtotal=content.subtotal.amount,
                discount=content.discount.amount,
                total=content.total.amount,
                issued_at=now,
            )
            await IssuedInvoiceLine.bulk_create(
                [
                    IssuedInvoiceLine(
                        invoice_id=invoice.id,
                        position=position,
                        kind=str(line.kind),
                        code=line.code,
                        description=line.description,
                        quantity=line.quantity,
                        unit_price=line.unit_price.amount,
                        days=line.days,
                        amount=line.amount.amount,
                    )
                    for position, line in enumerate(content.lines)
                ]
            )
            await notify_admins(
                tenant.id,
                emails.INVOICE_ISSUED,
                invoice_email(tenant, invoice, period),
                now=now,
                dedupe_key=f"invoice-issued:{invoice.id}",
                attachments=[{"kind": INVOICE_PDF, "invoice_id": str(invoice.id)}],
            )
            await audit.record(
                tenant_id=tenant.id,
                principal=None,
                action="invoice.issue",
                now=now,
                subject_id=invoice.id,
                number=invoice.number,
                period=period.name,
                total=str(content.total.amount),
                currency=content.currency,
            )
    except (IntegrityError, SequenceConflict):  # a concurrent issuer won: nothing of ours was kept
        logger.info("invoice issued concurrently", extra={"tenant_id": str(tenant.id), "period": period.name})
        return None
    return Issued(tenant.slug, invoice.number, period.name, str(invoice.total), invoice.currency)


async def issue_due_invoices(
    now: dt.datetime, *, period_name: str | None = None, batch_size: int = 200
) -> list[Issued]:
    """Issue every due invoice at ``now`` (or those of ``period_name``); what was issued. Safe to run
    from any number of places at once."""
    if period_name is not None:
        invoice_service.parse_period(period_name, anchor_day=1, now=now)  # InvalidPeriod if malformed
        period_name = period_name.strip()
    issued: list[Issued] = []
    after: str | None = None
    while True:
        query = PlanSubscription.filter(status=PlanSubscriptionStatus.ACTIVE, started_at__lt=now)
        if after is not None:
            query = query.filter(tenant_id__gt=after)
        subscriptions = await query.select_related("tenant").order_by("tenant_id").limit(batch_size)
        for subscription in subscriptions:
            tenant = subscription.tenant
            for period in await due_periods(tenant, subscription, now, period_name=period_name):
                done = await issue_period(tenant, period, now)
                if done is not None:
                    issued.append(done)
        if len(subscriptions) < batch_size:
            return issued
        after = str(subscriptions[-1].tenant_id)


class InvoiceIssuingTask:
    """Runs ``issue_due_invoices`` every ``interval`` seconds in the app's lifespan."""

    def __init__(
        self, *, clock: Clock, interval: float = 300.0, on_enqueued: Callable[[], None] | None = None
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.on_enqueued = on_enqueued  # the outbox dispatcher's ``wake``: the e-mails go out at once

    async def run_once(self) -> int:
        issued = await issue_due_invoices(self.clock.now())
        if issued and self.on_enqueued is not None:
            self.on_enqueued()
        return len(issued)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[InvoiceIssuingTask]:
        async with repeating(self.run_once, every=self.interval, name="invoice-issuing", logger=logger):
            yield self
