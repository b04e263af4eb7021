"""Quote requests (issue 14; seed 002: "contact us for prices and availability per ERP").

An add-on sold for some ERPs only (``AddOn.erp_prices``) cannot be bought by an environment running
another ERP, or none: its admins ask for a quote instead. The request is recorded (``QuoteRequest``,
listed in the operators' operations view), the vendor's operations address and the environment's admins
are e-mailed through the outbox, and the audit log records it, all in one transaction.

A retried request (the same ``idempotency_key``) finds the first one: no second row, no second e-mail.
The tenant's row is locked first, so two admins sending the same key at once make one request.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import replace

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.auth.principal import Principal
from app.i18n import _
from app.models.catalog import AddOn
from app.models.quotes import QUOTE_MESSAGE_MAX_LENGTH, QuoteRequest
from app.models.tenancy import Tenant
from app.notifications import emails
from app.notifications.outbox import composed, enqueue, recipient_key
from app.services import audit
from app.services.access import require_store_access
from app.services.cart import add_on_on_sale
from app.services.catalog import prices_for, sold_for_erps
from app.services.errors import DomainError, ErrorCode, InvalidInput
from app.services.idempotency import IdempotencyKeyReused, validate_key
from app.services.locks import lock_tenant

AUDIT_ACTION = "quote.request"
_ALLOWED_CONTROLS = {"\n", "\t"}


class QuoteNotNeeded(DomainError):
    code = ErrorCode.QUOTE_NOT_NEEDED
    default_message = _("This add-on can be bought in the store: no quote is needed.")


def clean_message(message: str) -> str:
    """The customer's words without surrounding spaces; line breaks and tabs are kept, other control
    characters refused; at most ``QUOTE_MESSAGE_MAX_LENGTH`` characters."""
    text = message.replace("\r\n", "\n").strip()
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in text):
        raise InvalidInput(
            _("The message may not contain control characters (line breaks and tabs are fine)."),
            field="message",
        )
    if len(text) > QUOTE_MESSAGE_MAX_LENGTH:
        raise InvalidInput(
            _(
                "The message is {length} characters long; at most {maximum} are kept.",
                length=len(text),
                maximum=QUOTE_MESSAGE_MAX_LENGTH,
            ),
            field="message",
        )
    return text


async def request_quote(
    principal: Principal,
    *,
    add_on_code: str,
    message: str,
    idempotency_key: str | None,
    eligible_since: dt.date,
    ops_email: str,
    now: dt.datetime,
) -> QuoteRequest:
    """Record the admin's request for a quote of an add-on not sold for the environment's ERP."""
    require_store_access(principal, eligible_since=eligible_since)
    assert principal.user is not None  # require_store_access: admins are users
    key = validate_key(idempotency_key) if idempotency_key is not None else None
    text = clean_message(message)
    add_on = await add_on_on_sale(add_on_code)
    try:
        async with in_transaction():
            await lock_tenant(principal.tenant.id)
            if key is not None and (replayed := await _replay(principal, key, add_on, text)) is not None:
                return replayed
            tenant = await Tenant.get(id=principal.tenant.id)  # its ERP as it is now
            if prices_for(add_on, tenant.erp) is not None:
                raise QuoteNotNeeded(
                    _(
                        "{name} can be bought in the store for this environment: add it to the cart.",
                        name=add_on.name,
                    ),
                    field="addOnCode",
                )
            request = await QuoteRequest.create(
                tenant_id=tenant.id,
                add_on_code=add_on.code,
                message=text,
                requested_by=principal.user.email,
                created_at=now,
                idempotency_key=key,
            )
            await _tell(tenant, add_on, request, ops_email=ops_email, now=now)
            await audit.record(
                tenant_id=tenant.id,
                principal=principal,
                action=AUDIT_ACTION,
                now=now,
                subject_id=request.id,
                add_on_code=add_on.code,
                erp=tenant.erp,
                message_length=len(text),
            )
            return request
    except IntegrityError:
        # The same key committed meanwhile by a request that did not wait for the lock: replay it.
        if key is not None and (replayed := await _replay(principal, key, add_on, text)) is not None:
            return replayed
        raise


async def _replay(principal: Principal, key: str, add_on: AddOn, text: str) -> QuoteRequest | None:
    first = await QuoteRequest.get_or_none(tenant_id=principal.tenant.id, idempotency_key=key)
    if first is None:
        return None
    if first.add_on_code != add_on.code or first.message != text:
        raise IdempotencyKeyReused(
            _(
                "This idempotency key was already used to ask for a quote of another add-on or with "
                "another message."
            ),
            field="idempotencyKey",
        )
    return first


async def _tell(
    tenant: Tenant, add_on: AddOn, request: QuoteRequest, *, ops_email: str, now: dt.datetime
) -> None:
    """The vendor's operations address (who asks for what) and the environment's admins (we will call)."""
    context = {
        "tenant_slug": tenant.slug,
        "tenant_name": tenant.name,
        "add_on": add_on,
        "add_on_code": add_on.code,
        "erps": ", ".join(sold_for_erps(add_on)),
        "erp": tenant.erp,
        "currency": tenant.currency,
        "requested_by": request.requested_by,
        "message": request.message,
    }
    dedupe = f"quote-request:{request.id}"
    # The vendor's copy keeps its ``:ops`` key (one per request, even if the address is also an admin's).
    vendor = composed(emails.QUOTE_REQUEST, emails.operations(ops_email), context)
    queued = [replace(vendor, dedupe_key=recipient_key(f"{dedupe}:ops", ops_email))]
    queued += [
        composed(emails.QUOTE_RECEIVED, recipient, context, dedupe_key=dedupe)
        for recipient in await emails.admin_recipients(tenant.id)
    ]
    await enqueue(queued, now=now, tenant_id=tenant.id)
