"""Issued invoices (issue 14): one per tenant and billing period, numbered without gaps per tenant and
year, and never changed once written. ``invoicePreview`` computes the open period; these rows hold the
ended ones as they were issued."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.tenancy import Tenant


class IssuedInvoice(Model):
    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="invoices", on_delete=fields.RESTRICT
    )
    number = fields.CharField(max_length=96, unique=True)  # "ACME-2026-0001"
    year = fields.SmallIntField()  # the year of the series the number belongs to
    sequence = fields.IntField()  # its place in the tenant's series of that year, from 1
    period_start = fields.DateField()
    period_end = fields.DateField()  # exclusive
    currency = fields.CharField(max_length=3)
    subtotal = fields.DecimalField(max_digits=14, decimal_places=2)
    discount = fields.DecimalField(max_digits=14, decimal_places=2)
    total = fields.DecimalField(max_digits=14, decimal_places=2)
    issued_at = fields.DatetimeField()

    lines: fields.ReverseRelation[IssuedInvoiceLine]

    tenant_id: str

    class Meta:
        table = "issued_invoice"
        unique_together = (("tenant", "period_start"), ("tenant", "year", "sequence"))
        indexes = (("tenant_id", "issued_at"),)


class IssuedInvoiceLine(Model):
    id = fields.UUIDField(primary_key=True)
    invoice: fields.ForeignKeyRelation[IssuedInvoice] = fields.ForeignKeyField(
        "models.IssuedInvoice", related_name="lines", on_delete=fields.CASCADE
    )
    position = fields.SmallIntField()
    kind = fields.CharField(max_length=32)  # app.services.pricing.InvoiceLineKind
    code = fields.CharField(max_length=64)
    description = fields.CharField(max_length=400)
    quantity = fields.IntField()
    unit_price = fields.DecimalField(max_digits=14, decimal_places=2)
    days = fields.SmallIntField(null=True)
    amount = fields.DecimalField(max_digits=14, decimal_places=2)

    invoice_id: str

    class Meta:
        table = "issued_invoice_line"
        ordering = ["position"]


class InvoiceSequence(Model):
    """The last number given in a tenant's series of a year: taken and raised in the transaction that
    writes the invoice, so a rolled-back issue gives its number back (no gaps)."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="invoice_sequences", on_delete=fields.CASCADE
    )
    year = fields.SmallIntField()
    last_number = fields.IntField(default=0)

    tenant_id: str

    class Meta:
        table = "invoice_sequence"
        unique_together = (("tenant", "year"),)
