"""Reading the issued invoices (issue 14): ``invoices`` (newest period first) and ``invoice(number)``.
The same access as ``invoicePreview``: admins of eligible environments; another tenant's invoice is
``NOT_FOUND`` like a number that does not exist."""

from __future__ import annotations

import datetime as dt
import re

from app.auth.principal import Principal
from app.i18n import _
from app.models.invoices import IssuedInvoice
from app.services import cursors
from app.services.access import require_store_access
from app.services.errors import NotFound

CURSOR_KIND = "IssuedInvoice"
# What a number can be (an upper-cased slug, the year, the sequence; at most 96 characters, as the column).
# Nothing else reaches the database: PostgreSQL refuses a NUL byte, and 10,000 characters need no lookup.
_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9-]{0,95}")


def plausible_number(number: str) -> bool:
    return _NUMBER.fullmatch(number) is not None


def not_found() -> NotFound:
    return NotFound(_("This environment has no invoice with this number."), field="number")


async def page(
    principal: Principal, *, eligible_since: dt.date, first: int, after: str | None
) -> cursors.Page[IssuedInvoice]:
    """A page of the caller's tenant's invoices, the newest period first, each with its lines (one query
    for the lines of the whole page)."""
    require_store_access(principal, eligible_since=eligible_since)
    rows = IssuedInvoice.filter(tenant_id=principal.tenant.id)
    query = rows
    if after is not None:
        position = cursors.decode(after, CURSOR_KIND)
        try:
            before = dt.date.fromisoformat(position)
        except ValueError:
            raise cursors.ForeignCursor(field="after") from None
        query = rows.filter(period_start__lt=before)
    found = await query.order_by("-period_start").limit(first + 1).prefetch_related("lines")
    return cursors.Page(
        items=[(cursors.encode(CURSOR_KIND, row.period_start.isoformat()), row) for row in found[:first]],
        has_next_page=len(found) > first,
        total_count=await rows.count(),
    )


async def find(principal: Principal, *, eligible_since: dt.date, number: str) -> IssuedInvoice:
    """The caller's tenant's invoice ``number`` (exact, as issued), with its lines."""
    require_store_access(principal, eligible_since=eligible_since)
    number = number.strip().upper()  # numbers are upper case: "acme-2026-0001" finds ACME-2026-0001
    if not plausible_number(number):
        raise not_found()
    invoice = await IssuedInvoice.get_or_none(number=number, tenant_id=principal.tenant.id).prefetch_related(
        "lines"
    )
    if invoice is None:
        raise not_found()
    return invoice
