"""Mail-delivery guarantees of the outbox, against a real SMTP server (aiosmtpd) in the test process:

- an e-mail committed with its change is delivered exactly once even when the dispatcher dies between
  the commit and the sending (the app is restarted: a new dispatcher) or in the middle of a send;
- with the SMTP server down nothing is lost, however long it stays down, and everything is delivered
  when it comes back; only a permanent refusal (5xx) ends up DEAD.

The e-mails come from real changes made over GraphQL (cancelAddOn), so they are written in the
same transaction as the change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from starlette.applications import Starlette

from app.clock import FrozenClock
from app.main import create_app
from app.models.billing import AddOnSubscription
from app.models.enums import OutboxStatus, Role
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant, User
from app.notifications.dispatcher import OutboxDispatcher
from app.notifications.mailer import SmtpMailer
from app.resolvers.ids import global_id
from app.seed import SeedResult
from app.services import invoice_issuing
from app.settings import Settings
from tests.conftest import GraphQLClient
from tests.emails import html_of, language_of, says, subject_of, text_of
from tests.smtp import Inbox, SmtpServer, free_port

CANCEL = "mutation($id: ID!) { cancelAddOn(activeAddOnId: $id) { __typename } }"
SETTLE_SECONDS = 10.0
POLL_SECONDS = 0.05


async def cancel(gql: GraphQLClient, code: str, tenant: str) -> None:
    subscription = await AddOnSubscription.get(add_on__code=code, tenant__slug=tenant)
    body = await gql.post(
        CANCEL, {"id": global_id("ActiveAddOn", subscription.id)}, as_=f"admin@{tenant}.test"
    )
    assert body["data"]["cancelAddOn"]["__typename"] == "CancelAddOnSuccess", body


async def queue_three_emails(gql: GraphQLClient) -> None:
    """Two admins of acme and one of nova are told of a cancellation: three rows in the outbox."""
    acme = await Tenant.get(slug="acme")
    await User.create(tenant=acme, email="boss@acme.test", name="Second admin", role=Role.ADMIN)
    await cancel(gql, "credits-1000", "acme")
    await cancel(gql, "users-5", "nova")
    assert await OutboxEmail.filter(status=OutboxStatus.PENDING).count() == 3


async def wait_until(condition: Any) -> None:
    """Poll ``condition`` (the background loops run meanwhile) for up to SETTLE_SECONDS."""
    for _ in range(int(SETTLE_SECONDS / POLL_SECONDS)):
        if await condition():
            return
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError("timed out waiting for the background tasks")


def restarted_app(settings: Settings, clock: FrozenClock) -> Starlette:
    """A new process of the gateway: its own dispatcher, the same database (and no invoice issuing: its
    e-mails are not the ones these tests count; tests/api/test_issued_invoices.py covers them)."""
    quiet = settings.model_copy(update={"invoice_issue_interval_seconds": 0})
    return create_app(quiet, clock=clock, manage_orm=False, run_background_tasks=True)


async def all_sent() -> bool:
    return not await OutboxEmail.filter(status=OutboxStatus.PENDING).exists()


async def test_emails_committed_before_a_crash_are_delivered_exactly_once_by_the_restarted_app(
    gql: GraphQLClient, demo: SeedResult, settings: Settings, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    # The app behind ``gql`` runs no dispatcher: it crashed right after committing the changes.
    await queue_three_emails(gql)
    settings.smtp_url = smtp_server.url

    app = restarted_app(settings, clock)
    async with app.router.lifespan_context(app):
        await wait_until(all_sent)
    second = restarted_app(settings, clock)  # and restarted once more: nothing is sent twice
    async with second.router.lifespan_context(second):
        await asyncio.sleep(1.5)

    received = sorted(str(m["To"]) for m in smtp_server.inbox.messages)
    assert received == ["admin@acme.test", "admin@nova.test", "boss@acme.test"]
    rows = await OutboxEmail.all()
    assert {f"<{row.id}@tollgate>" for row in rows} == {m["Message-ID"] for m in smtp_server.inbox.messages}
    assert {(row.status, row.attempts) for row in rows} == {(OutboxStatus.SENT, 1)}
    # Each one arrives with a plain-text and an HTML part, in its reader's language.
    for message in smtp_server.inbox.messages:
        assert message.get_content_type() == "multipart/alternative"
        assert "<html" in html_of(message)
        assert says(language_of(message), "Until then the cancellation can be undone in My plan.") in text_of(
            message
        )


async def test_without_smtp_the_restarted_app_writes_each_email_once_to_the_mail_folder(
    gql: GraphQLClient, demo: SeedResult, settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    await queue_three_emails(gql)
    assert settings.smtp_url is None

    for _ in range(2):
        app = restarted_app(settings, clock)
        async with app.router.lifespan_context(app):
            await wait_until(all_sent)

    files = sorted(settings.mail_dir.glob("*.eml"))
    assert len(files) == 3
    assert {path.stem.split("_")[0] for path in files} == {
        str(i) for i in await OutboxEmail.all().values_list("id", flat=True)
    }


@pytest.fixture
async def silent_smtp_peer() -> AsyncIterator[int]:
    """A server that accepts connections and never answers: a send to it hangs until cancelled."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    yield port
    server.close()


async def test_a_dispatcher_killed_in_the_middle_of_a_send_is_taken_over_once_its_lease_expires(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer, silent_smtp_peer: int
) -> None:
    await cancel(gql, "credits-1000", "acme")
    lease = dt.timedelta(minutes=2)
    dying = OutboxDispatcher(
        SmtpMailer(f"smtp://127.0.0.1:{silent_smtp_peer}", timeout=30), clock=clock, lease=lease
    )
    sending = asyncio.create_task(dying.run_once())

    async def claimed() -> bool:
        return await OutboxEmail.filter(claimed_until__isnull=False).exists()

    await wait_until(claimed)
    await asyncio.sleep(0.1)
    sending.cancel()  # the process dies while the SMTP conversation is in progress
    with pytest.raises(asyncio.CancelledError):
        await sending

    restarted = smtp_server.dispatcher(clock)
    # Until the lease runs out the row may still be in the hands of a live dispatcher: left alone.
    assert await restarted.run_once() == 0
    clock.advance(lease + dt.timedelta(seconds=1))
    assert await restarted.run_once() == 1
    assert await restarted.run_once() == 0
    assert [str(m["To"]) for m in smtp_server.inbox.messages] == ["admin@acme.test"]


async def test_with_the_smtp_server_down_for_hours_nothing_is_lost_and_all_is_delivered_when_it_is_back(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    await queue_three_emails(gql)
    smtp_server.stop()
    dispatcher = OutboxDispatcher(SmtpMailer(smtp_server.url, timeout=2), clock=clock, max_attempts=3)

    for _ in range(8):  # far more failures than max_attempts, over more than a day
        assert await dispatcher.run_once() == 0
        clock.advance(dt.timedelta(hours=4))

    rows = await OutboxEmail.all()
    assert {(row.status, row.attempts) for row in rows} == {(OutboxStatus.PENDING, 8)}
    assert all("Connect" in (row.last_error or "") for row in rows)
    assert all(
        row.next_attempt_at - clock.now() <= dt.timedelta(hours=1) for row in rows
    )  # backoff is capped

    smtp_server.start()
    assert await dispatcher.run_once() == 3
    assert await dispatcher.run_once() == 0
    assert sorted(str(m["To"]) for m in smtp_server.inbox.messages) == [
        "admin@acme.test",
        "admin@nova.test",
        "boss@acme.test",
    ]


async def test_the_apps_dispatcher_delivers_what_waited_while_the_smtp_server_was_down(
    gql: GraphQLClient, demo: SeedResult, settings: Settings, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    smtp_server.stop()
    settings.smtp_url = smtp_server.url
    app = restarted_app(settings, clock)
    async with app.router.lifespan_context(app):
        await cancel(gql, "credits-1000", "acme")

        async def tried() -> bool:
            return await OutboxEmail.filter(attempts__gte=1).exists()

        await wait_until(tried)
        smtp_server.start()
        clock.advance(dt.timedelta(minutes=1))  # past the backoff
        await wait_until(all_sent)

    assert [str(m["To"]) for m in smtp_server.inbox.messages] == ["admin@acme.test"]
    row = await OutboxEmail.get()
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)


class Greylisting(Inbox):
    """Answers 451 "try again later" to the first ``refusals`` deliveries, then accepts."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def handle_RCPT(  # noqa: N802 (aiosmtpd API)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.refusals > 0:
            self.refusals -= 1
            return "451 4.7.1 Greylisted, try again later"
        if address.startswith("gone@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def picky_smtp_server() -> Iterator[tuple[Greylisting, str]]:
    inbox = Greylisting(refusals=4)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, f"smtp://127.0.0.1:{port}"
    controller.stop()


async def test_a_temporary_refusal_is_retried_past_max_attempts_and_a_permanent_one_gives_up(
    demo: SeedResult, clock: FrozenClock, picky_smtp_server: tuple[Greylisting, str]
) -> None:
    from app.notifications.outbox import Email, enqueue

    inbox, url = picky_smtp_server
    await enqueue([Email(to="admin@acme.test", subject="Greylisted", body="...")], now=clock.now())
    dispatcher = OutboxDispatcher(SmtpMailer(url, timeout=5), clock=clock, max_attempts=2)

    for _ in range(4):  # four 451 answers: more than max_attempts, still waiting
        assert await dispatcher.run_once() == 0
        clock.advance(dt.timedelta(hours=1))
    assert (await OutboxEmail.get(subject="Greylisted")).status == OutboxStatus.PENDING
    assert await dispatcher.run_once() == 1
    assert inbox.subjects() == ["Greylisted"]

    await enqueue([Email(to="gone@acme.test", subject="Bounce", body="...")], now=clock.now())
    for _ in range(3):
        await dispatcher.run_once()
        clock.advance(dt.timedelta(hours=1))
    bounced = await OutboxEmail.get(subject="Bounce")
    assert (bounced.status, bounced.attempts) == (OutboxStatus.DEAD, 2)
    assert "550" in (bounced.last_error or "")


async def test_a_delivered_invoice_email_has_its_text_html_and_pdf_parts_and_an_old_row_only_text(
    demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    acme = await Tenant.get(slug="acme")
    clock.set(dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.UTC))
    await invoice_issuing.issue_due_invoices(clock.now())
    # A row queued before the HTML part existed: still delivered, as plain text.
    await OutboxEmail.create(
        tenant=acme, to_address="legacy@acme.test", subject="Old", body="Plain only.",
        next_attempt_at=clock.now(), created_at=clock.now(),
    )  # fmt: skip

    await smtp_server.dispatcher(clock).run_once()

    [invoice_email] = [m for m in smtp_server.inbox.to("admin@acme.test") if "ACME-2026" in subject_of(m)]
    parts = [(part.get_content_type(), part.get_filename()) for part in invoice_email.walk()]
    assert parts == [
        ("multipart/mixed", None),
        ("multipart/alternative", None),
        ("text/plain", None),
        ("text/html", None),
        ("application/pdf", parts[-1][1]),
    ]
    assert str(parts[-1][1]).endswith(".pdf")
    assert "ACME-2026" in text_of(invoice_email)
    assert "ACME-2026" in html_of(invoice_email)
    assert invoice_email["Content-Language"] == (await OutboxEmail.get(to_address="admin@acme.test")).locale
    [legacy] = smtp_server.inbox.to("legacy@acme.test")
    assert legacy.get_content_type() == "text/plain"
    assert text_of(legacy).strip() == "Plain only."
