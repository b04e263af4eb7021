"""Issued invoices (issue 14): ``invoices`` and ``invoice(number)``; their PDF is served at
``GET /invoices/{number}.pdf`` (app.edge.invoice_download)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated
from urllib.parse import quote

import strawberry

from app import money
from app.auth import scopes
from app.models.invoices import IssuedInvoice as IssuedInvoiceModel
from app.resolvers.common import (
    AFTER_HELP,
    DEFAULT_PAGE_SIZE,
    PAGE_SIZE_HELP,
    BillingPeriod,
    Connection,
    Money,
    page_size,
)
from app.resolvers.context import Info
from app.resolvers.errors import NotAdminError, NotEligibleError, NotFoundError
from app.resolvers.ids import global_id
from app.resolvers.permissions import allow
from app.resolvers.store import InvoiceLine
from app.services import issued_invoices, periods
from app.services.pricing import InvoiceLineKind


def _money(amount: Decimal, currency: str) -> Money:
    return Money.of(money.Money.of(amount, currency))


@strawberry.type(
    description="An invoice issued at the end of a billing period: numbered, and never changed afterwards."
)
class IssuedInvoice:
    id: strawberry.ID = strawberry.field(description="The invoice's global id.")
    number: str = strawberry.field(
        description='Its number, gapless per environment and year of issue ("ACME-2026-0001").'
    )
    period: BillingPeriod = strawberry.field(description="The billing period invoiced.")
    issued_at: dt.datetime = strawberry.field(description="When it was issued.")
    currency: str = strawberry.field(description="The currency of every amount (ISO 4217).")
    lines: list[InvoiceLine] = strawberry.field(description="The charges, then the discounts, as issued.")
    subtotal: Money = strawberry.field(description="The charges, before discounts.")
    discount: Money = strawberry.field(description="The discounts, as a positive amount.")
    total: Money = strawberry.field(description="The subtotal minus the discounts.")
    pdf_path: str = strawberry.field(
        description="Where its PDF is (relative to the API's origin): GET it with the same Bearer "
        "credentials, admins only."
    )

    @classmethod
    def of(cls, invoice: IssuedInvoiceModel) -> IssuedInvoice:
        currency = invoice.currency
        return cls(
            id=global_id("IssuedInvoice", invoice.id),
            number=invoice.number,
            period=BillingPeriod.of(periods.BillingPeriod(invoice.period_start, invoice.period_end)),
            issued_at=invoice.issued_at,
            currency=currency,
            lines=[
                InvoiceLine(
                    kind=InvoiceLineKind(line.kind),
                    code=line.code,
                    description=line.description,
                    quantity=line.quantity,
                    unit_price=_money(line.unit_price, currency),
                    days=line.days,
                    amount=_money(line.amount, currency),
                )
                for line in sorted(invoice.lines, key=lambda line: line.position)
            ],
            subtotal=_money(invoice.subtotal, currency),
            discount=_money(invoice.discount, currency),
            total=_money(invoice.total, currency),
            pdf_path=f"/invoices/{quote(invoice.number)}.pdf",
        )


@strawberry.type(description="A page of the environment's issued invoices, the newest period first.")
class IssuedInvoiceConnection(Connection[IssuedInvoice]):
    pass


InvoicesResult = Annotated[
    IssuedInvoiceConnection | NotAdminError | NotEligibleError,
    strawberry.union("InvoicesResult", description="The issued invoices, or why they cannot be read."),
]
InvoiceResult = Annotated[
    IssuedInvoice | NotAdminError | NotEligibleError | NotFoundError,
    strawberry.union("InvoiceResult", description="The issued invoice, or why there is none."),
]


@strawberry.type
class Query:
    @strawberry.field(
        extensions=allow(scopes.TENANT_READ),
        description="The environment's issued invoices, the newest period first (the open period: "
        "`invoicePreview`). Admins of eligible environments only.",
    )
    async def invoices(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=PAGE_SIZE_HELP)] = DEFAULT_PAGE_SIZE,
        after: Annotated[str | None, strawberry.argument(description=AFTER_HELP)] = None,
    ) -> InvoicesResult | None:
        principal = await info.context.require_principal()
        page = await issued_invoices.page(
            principal,
            eligible_since=info.context.settings.store_eligible_since,
            first=page_size(first),
            after=after,
        )
        return IssuedInvoiceConnection.from_page(page, IssuedInvoice.of, after=after)

    @strawberry.field(
        extensions=allow(scopes.TENANT_READ),
        description="One issued invoice by its number. Admins of eligible environments only.",
    )
    async def invoice(
        self,
        info: Info,
        number: Annotated[str, strawberry.argument(description='Its number ("ACME-2026-0001").')],
    ) -> InvoiceResult | None:
        principal = await info.context.require_principal()
        invoice = await issued_invoices.find(
            principal, eligible_since=info.context.settings.store_eligible_since, number=number
        )
        return IssuedInvoice.of(invoice)
