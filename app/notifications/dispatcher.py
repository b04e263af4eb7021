"""Sends the outbox: claims due rows with a lease, sends them, retries with exponential backoff.

Several gateway instances may run a dispatcher: a row is claimed by one conditional UPDATE, so
only one of them sends it. Each message carries a Message-ID derived from its row, so a receiver
can recognise the rare duplicate left by a crash between sending and recording the send.

A dispatcher that dies while holding rows (its lease) leaves them PENDING: another one takes them
over once the lease has expired. While the SMTP server is down or answers 4xx, messages wait, with
the backoff capped at an hour, for as long as it takes; only permanent refusals (5xx) count towards
``max_attempts`` and end up DEAD (tests/test_mail_delivery.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
from tortoise.expressions import F, Q

from app.background import repeating
from app.clock import Clock
from app.models.enums import OutboxStatus
from app.models.notifications import OutboxEmail
from app.notifications.mailer import Mailer
from app.observability import OUTBOX_DELIVERIES
from app.services.invoice_issuing import INVOICE_PDF
from app.services.invoice_pdf import invoice_pdf

logger = logging.getLogger("tollgate.outbox")


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    maintype: str
    subtype: str
    content: bytes


def is_transient(error: Exception) -> bool:
    """Failures that say nothing about the message: the server is down, unreachable, slow, or answers
    4xx ("try again later"). Only permanent refusals (5xx, a malformed message...) may give up."""
    if isinstance(error, aiosmtplib.SMTPConnectError):
        return True
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return 400 <= error.code < 500
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= refused.code < 500 for refused in error.recipients)
    return isinstance(error, OSError)


def backoff(attempts: int) -> dt.timedelta:
    """5 s, 10 s, 20 s ... capped at one hour."""
    return dt.timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


class OutboxDispatcher:
    def __init__(
        self,
        mailer: Mailer,
        *,
        clock: Clock,
        mail_from: str = "Tollgate <billing@tollgate.local>",
        batch_size: int = 50,
        poll_interval: float = 1.0,
        max_attempts: int = 12,
        lease: dt.timedelta = dt.timedelta(minutes=2),
    ) -> None:
        self.mailer = mailer
        self.clock = clock
        self.mail_from = mail_from
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.lease = lease
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass now (after a commit that queued e-mails) instead of at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Send every due message once; the number sent."""
        now = self.clock.now()
        due = (
            Q(status=OutboxStatus.PENDING)
            & Q(next_attempt_at__lte=now)
            & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        )
        candidates = await OutboxEmail.filter(due).order_by("created_at").limit(self.batch_size)
        sent = 0
        for row in candidates:
            claimed = await OutboxEmail.filter(due, id=row.id).update(claimed_until=now + self.lease)
            if claimed:
                sent += await self._deliver(row)
        return sent

    async def _deliver(self, row: OutboxEmail) -> int:
        try:
            await self.mailer.send(self._message(row, await self._attachments(row)))
        except Exception as error:  # any delivery failure is retried later
            attempts = row.attempts + 1
            # An SMTP server that is down loses nothing: the message waits (backoff capped at an hour)
            # until it is back, however long that takes. Only permanent refusals end up DEAD.
            give_up = attempts >= self.max_attempts and not is_transient(error)
            await OutboxEmail.filter(id=row.id).update(
                attempts=F("attempts") + 1,
                status=OutboxStatus.DEAD if give_up else OutboxStatus.PENDING,
                next_attempt_at=self.clock.now() + backoff(attempts),
                claimed_until=None,
                last_error=f"{type(error).__name__}: {error}"[:2000],
            )
            OUTBOX_DELIVERIES.labels(outcome="dead" if give_up else "retry").inc()
            logger.warning("outbox delivery failed", extra={"email_id": str(row.id), "attempts": attempts})
            return 0
        await OutboxEmail.filter(id=row.id).update(
            status=OutboxStatus.SENT, sent_at=self.clock.now(), claimed_until=None, attempts=F("attempts") + 1
        )
        OUTBOX_DELIVERIES.labels(outcome="sent").inc()
        return 1

    async def _attachments(self, row: OutboxEmail) -> list[Attachment]:
        """The files of ``row``'s attachment references, rendered now (invoice_pdf: the invoice's PDF).
        A reference to nothing fails the delivery (retried, then DEAD) rather than send a mail without it."""
        files: list[Attachment] = []
        for reference in row.attachments or []:
            if reference.get("kind") != INVOICE_PDF:
                raise ValueError(f"unknown attachment kind {reference.get('kind')!r}")
            rendered = await invoice_pdf(reference["invoice_id"])
            if rendered is None:
                raise ValueError(f"no invoice {reference['invoice_id']!r} to attach")
            invoice, content = rendered
            files.append(Attachment(f"{invoice.number}.pdf", "application", "pdf", content))
        return files

    def _message(self, row: OutboxEmail, attachments: Sequence[Attachment] = ()) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = row.to_address
        message["Subject"] = row.subject
        message["Date"] = format_datetime(row.created_at)
        message["Message-ID"] = f"<{row.id}@tollgate>"
        message.set_content(row.body)
        if row.html_body:  # rows queued before the HTML part existed have only the text
            message.add_alternative(row.html_body, subtype="html")
        for file in attachments:
            message.add_attachment(
                file.content, maintype=file.maintype, subtype=file.subtype, filename=file.filename
            )
        if row.locale:  # last: setting the content and the attachments moves Content-* headers
            message["Content-Language"] = row.locale  # RFC 3282: the language it was written in
        return message

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[OutboxDispatcher]:
        async with repeating(
            self.run_once, every=self.poll_interval, name="outbox-dispatcher", logger=logger, wake=self._wake
        ):
            yield self
