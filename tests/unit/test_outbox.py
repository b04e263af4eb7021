"""The outbox dispatcher against a real SMTP server."""

from __future__ import annotations

import datetime as dt

from app.clock import FrozenClock
from app.models.enums import OutboxStatus
from app.models.notifications import OutboxEmail
from app.notifications.outbox import Email, enqueue, notify_admins
from app.seed import SeedResult
from tests.smtp import SmtpServer


async def test_queued_email_is_delivered_once_over_smtp(
    demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    await enqueue([Email(to="someone@acme.test", subject="Hello", body="Body")], now=clock.now())
    dispatcher = smtp_server.dispatcher(clock)

    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0

    assert smtp_server.inbox.subjects() == ["Hello"]
    row = await OutboxEmail.get(to_address="someone@acme.test")
    assert row.status == OutboxStatus.SENT
    assert smtp_server.inbox.messages[0]["Message-ID"] == f"<{row.id}@tollgate>"


async def test_nothing_is_lost_while_the_smtp_server_is_down(
    demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    from app.models.tenancy import Tenant

    acme = await Tenant.get(slug="acme")
    context = {"actor": "admin@acme.test", "tenant_name": acme.name, "add_on": "Webhooks"}
    await notify_admins(acme.id, "cancellation_undone", context, now=clock.now())
    dispatcher = smtp_server.dispatcher(clock)
    smtp_server.stop()

    assert await dispatcher.run_once() == 0
    row = await OutboxEmail.get(to_address="admin@acme.test")
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert row.next_attempt_at > clock.now()

    smtp_server.start()
    assert await dispatcher.run_once() == 0  # not due yet: backoff
    clock.advance(dt.timedelta(minutes=1))
    assert await dispatcher.run_once() == 1
    assert [m["To"] for m in smtp_server.inbox.messages] == ["admin@acme.test"]


async def test_dedupe_key_queues_an_email_once(demo: SeedResult, clock: FrozenClock) -> None:
    email = Email(to="a@acme.test", subject="Ends today", body="...", dedupe_key="add-on-ended:1")
    await enqueue([email], now=clock.now())
    await enqueue([email], now=clock.now())
    assert await OutboxEmail.filter(to_address="a@acme.test").count() == 1
