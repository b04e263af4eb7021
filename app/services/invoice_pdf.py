"""The PDF of an issued invoice (issue 14): ``app/templates/invoice.html`` rendered by Jinja2 (HTML
escaping on) and laid out by fpdf2's ``write_html``.

fpdf2's core fonts (Helvetica) only cover Latin-1: every text taken from the data (tenant name, line
descriptions...) is first reduced to it, characters it cannot encode becoming "?", so a hostile or
exotic name never breaks the PDF (its exact text stays in the API). Amounts are written with the
currency code ("1,234.50 EUR"); issue 16 localises them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import jinja2

from app.models.invoices import IssuedInvoice

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("app", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def latin1(text: object) -> str:
    """``text`` reduced to what the core fonts can draw: anything else becomes "?" (control
    characters too)."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return cleaned.encode("latin-1", errors="replace").decode("latin-1")


def amount(value: Decimal, currency: str) -> str:
    return f"{value:,.2f} {latin1(currency)}"


def render_html(invoice: IssuedInvoice, tenant_name: str, lines: list[Any]) -> str:
    currency = invoice.currency
    return _TEMPLATES.get_template("invoice.html").render(
        invoice={"number": latin1(invoice.number), "currency": latin1(currency)},
        tenant_name=latin1(tenant_name),
        period_start=invoice.period_start.isoformat(),
        period_end=invoice.period_end.isoformat(),
        issued_on=invoice.issued_at.astimezone(dt.UTC).date().isoformat(),
        lines=[
            {
                "description": latin1(line.description),
                "quantity": line.quantity,
                "days": line.days,
                "unit_price": amount(line.unit_price, currency),
                "amount": amount(line.amount, currency),
            }
            for line in lines
        ],
        subtotal=amount(invoice.subtotal, currency),
        discount=amount(invoice.discount, currency),
        total=amount(invoice.total, currency),
    )


def render_pdf(invoice: IssuedInvoice, tenant_name: str, lines: list[Any]) -> bytes:
    """The PDF of ``invoice`` with its ``lines`` (in their order)."""
    from fpdf import FPDF  # fpdf2 and fontTools take longer to import than the rest of the app to start

    pdf = FPDF(format="A4")
    pdf.set_title(latin1(f"Invoice {invoice.number}"))
    pdf.set_creator("Tollgate")
    pdf.set_creation_date(invoice.issued_at)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.write_html(render_html(invoice, tenant_name, lines))
    return bytes(pdf.output())


async def invoice_pdf(invoice_id: uuid.UUID | str) -> tuple[IssuedInvoice, bytes] | None:
    """The invoice ``invoice_id`` and its PDF; ``None`` when there is no such invoice."""
    invoice = await IssuedInvoice.get_or_none(id=invoice_id).select_related("tenant")
    if invoice is None:
        return None
    return invoice, await pdf_of(invoice)


# Rendered PDFs by invoice id: an issued invoice never changes, so neither does its PDF. Bounded (about
# 3 KB each); rendering one takes tens of milliseconds of CPU, off the event loop.
_RENDERED: OrderedDict[str, bytes] = OrderedDict()
RENDERED_MAX = 256


async def pdf_of(invoice: IssuedInvoice) -> bytes:
    """The PDF of ``invoice`` (its tenant loaded or not)."""
    key = str(invoice.id)
    if key in _RENDERED:
        _RENDERED.move_to_end(key)
        return _RENDERED[key]
    await invoice.fetch_related("tenant", "lines")
    lines = sorted(invoice.lines, key=lambda line: line.position)
    # fpdf2 is pure Python: a thread keeps the event loop answering other requests meanwhile.
    content = await asyncio.to_thread(render_pdf, invoice, invoice.tenant.name, lines)
    _RENDERED[key] = content
    while len(_RENDERED) > RENDERED_MAX:
        _RENDERED.popitem(last=False)
    return content
