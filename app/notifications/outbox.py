"""Queueing e-mails in the outbox, inside the caller's transaction (docs/design.md: events after commit).

A dedupe key is stored in a 255-character column, and a per-recipient key is built from an address
of up to 254 characters: ``recipient_key`` keeps ``base:address`` when it fits (so the keys of
e-mails queued before stay the same) and otherwise replaces the address with its SHA-256, and
``enqueue`` hashes any key still too long. Either way the same input gives the same key, so
deduplication holds for every length (issue 11).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.models.notifications import OutboxEmail
from app.notifications.emails import Recipient, admin_recipients, render

MAX_DEDUPE_KEY = 255  # OutboxEmail.dedupe_key


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fitted_key(key: str) -> str:
    """``key`` itself when it fits the column, else a digest of it (64 hex characters)."""
    return key if len(key) <= MAX_DEDUPE_KEY else f"sha256:{_sha256(key)}"


def recipient_key(base: str, address: str) -> str:
    """The dedupe key of the e-mail ``base`` to ``address``: ``base:address``, with the address
    hashed when the whole would not fit (addresses run to 254 characters)."""
    key = f"{base}:{address}"
    if len(key) <= MAX_DEDUPE_KEY:
        return key
    return fitted_key(f"{base}:sha256:{_sha256(address)}")


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str
    dedupe_key: str | None = None  # the same key is queued once, ever
    # Files rendered when the e-mail is sent, by reference (the dispatcher renders them):
    # [{"kind": "invoice_pdf", "invoice_id": "..."}].
    attachments: list[dict[str, str]] = field(default_factory=list)
    html_body: str | None = None  # the HTML part (sent as multipart/alternative with ``body``)
    kind: str | None = None  # the template it was rendered from (app.notifications.emails.KINDS)
    locale: str | None = None  # the language it was rendered in


MAX_SUBJECT = 300  # OutboxEmail.subject


def composed(
    kind: str,
    recipient: Recipient,
    context: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    attachments: list[dict[str, str]] | None = None,
) -> Email:
    """The e-mail ``kind`` rendered for ``recipient`` in their language; ``dedupe_key`` is the e-mail's,
    made per recipient here."""
    rendered = render(kind, recipient.locale, **context)
    return Email(
        to=recipient.address,
        subject=rendered.subject[:MAX_SUBJECT],
        body=rendered.text,
        html_body=rendered.html,
        kind=kind,
        locale=recipient.locale.value,
        dedupe_key=recipient_key(dedupe_key, recipient.address) if dedupe_key else None,
        attachments=list(attachments or []),
    )


async def enqueue(emails: list[Email], *, now: dt.datetime, tenant_id: uuid.UUID | str | None = None) -> None:
    """Write the e-mails to the outbox. Call inside the transaction of the change they report.

    Rows whose ``dedupe_key`` is already queued are skipped (INSERT ... ON CONFLICT DO NOTHING), so
    periodic tasks and retries can enqueue freely.
    """
    if not emails:
        return
    await OutboxEmail.bulk_create(
        [
            OutboxEmail(
                tenant_id=tenant_id,
                to_address=email.to,
                subject=email.subject,
                body=email.body,
                html_body=email.html_body,
                kind=email.kind,
                locale=email.locale,
                dedupe_key=None if email.dedupe_key is None else fitted_key(email.dedupe_key),
                attachments=list(email.attachments),
                next_attempt_at=now,
                created_at=now,
            )
            for email in emails
        ],
        ignore_conflicts=True,
    )


async def notify_admins(
    tenant_id: uuid.UUID | str,
    kind: str,
    context: dict[str, Any],
    *,
    now: dt.datetime,
    dedupe_key: str | None = None,
    attachments: list[dict[str, str]] | None = None,
) -> int:
    """E-mail every admin of the tenant, each in their language (docs/design.md: admins are told of every
    subscription change): the template ``kind`` rendered with ``context``."""
    recipients = await admin_recipients(tenant_id)
    await enqueue(
        [
            composed(kind, recipient, context, dedupe_key=dedupe_key, attachments=attachments)
            for recipient in recipients
        ],
        now=now,
        tenant_id=tenant_id,
    )
    return len(recipients)
