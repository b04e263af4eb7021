"""Admins whose e-mail address is 254 characters long (the longest valid address, RFC 5321) are e-mailed
on every path that e-mails admins, and the operation that e-mails them succeeds (issue 11).

Run on SQLite and on PostgreSQL (where a key longer than its column is refused instead of kept).
"""

from __future__ import annotations

import datetime as dt

from app.clock import FrozenClock
from app.models.billing import AddOnSubscription
from app.models.enums import Role
from app.models.metering import ProcessCounter
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant, User
from app.resolvers.ids import global_id
from app.seed import SeedResult
from app.services import lifecycle
from tests.api.test_cancellation import CANCEL, UNDO
from tests.api.test_checkout import checkout
from tests.api.test_process_starts import ALLOWANCE, OPS, start
from tests.api.test_store import add
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient
from tests.smtp import SmtpServer

# 64 characters before the @ (the longest local part), 189 after it in labels of at most 63.
LONGEST = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 56, "test"])
OTHER_LONGEST = "e" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 56, "test"])


async def long_admins(slug: str = "acme") -> list[str]:
    """Two more admins of ``slug`` with 254-character addresses (one of them is the caller below)."""
    assert len(LONGEST) == len(OTHER_LONGEST) == 254
    tenant = await Tenant.get(slug=slug)
    for address in (LONGEST, OTHER_LONGEST):
        await User.create(tenant=tenant, email=address, name="Long address", role=Role.ADMIN)
    return [LONGEST, OTHER_LONGEST]


async def queued_to(address: str, kind: str) -> int:
    return await OutboxEmail.filter(to_address=address, kind=kind).count()


async def test_a_usage_report_crossing_a_threshold_emails_admins_with_the_longest_addresses(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await long_admins()

    # acme: 4,000 credits; 3,300 is above 80%.
    result = await report(gql, demo.connector_keys["acme"], clock.now(), variants=3300 - 2408)

    assert (result["__typename"], result["applied"], result["report"]["creditsUsed"]) == (
        "ReportUsageSuccess",
        True,
        3300,
    )
    for address in (LONGEST, OTHER_LONGEST, "admin@acme.test"):
        assert await queued_to(address, "limit_alert") == 1


async def test_a_checkout_by_an_admin_with_the_longest_address_succeeds_and_emails_every_admin(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await long_admins()
    await add(gql, "users-1", as_=LONGEST)

    result = await checkout(gql, "long-address-order", as_=LONGEST)

    assert result["__typename"] == "CheckoutSuccess", result
    for address in (LONGEST, OTHER_LONGEST, "admin@acme.test"):
        assert await OutboxEmail.filter(to_address=address).count() == 1


async def test_processes_beyond_the_allowance_are_not_blocked_by_the_longest_addresses(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await long_admins()
    acme = await Tenant.get(slug="acme")
    await ProcessCounter.create(tenant=acme, period="2026-11", used=ALLOWANCE)
    key = demo.connector_keys["acme"]

    beyond = [await start(gql, key, f"beyond-{n}") for n in range(3)]

    assert [started["allowed"] for started in beyond] == [True, True, True]
    assert [started["processesUsed"] for started in beyond] == [ALLOWANCE + 1, ALLOWANCE + 2, ALLOWANCE + 3]
    assert await queued_to(OPS, "allowance_passed_vendor") == 1
    for address in (LONGEST, OTHER_LONGEST, "admin@acme.test"):
        assert await queued_to(address, "allowance_passed") == 1


async def test_a_cancellation_its_undoing_and_the_add_on_ending_email_admins_with_the_longest_addresses(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await long_admins()
    storage = await AddOnSubscription.get(tenant__slug="acme", add_on__code="storage-10gb")
    variables = {"id": global_id("ActiveAddOn", storage.id)}

    cancelled = await gql.post(CANCEL, variables, as_=LONGEST)
    undone = await gql.post(UNDO, variables, as_=LONGEST)
    cancelled_again = await gql.post(CANCEL, variables, as_=OTHER_LONGEST)

    assert cancelled["data"]["cancelAddOn"]["__typename"] == "CancelAddOnSuccess", cancelled
    assert undone["data"]["undoCancellation"]["__typename"] == "UndoCancellationSuccess", undone
    assert cancelled_again["data"]["cancelAddOn"]["__typename"] == "CancelAddOnSuccess", cancelled_again
    for address in (LONGEST, OTHER_LONGEST, "admin@acme.test"):
        assert await queued_to(address, "add_on_cancelled") == 2
        assert await queued_to(address, "cancellation_undone") == 1

    clock.set(dt.datetime(2026, 12, 1, 0, 1, tzinfo=dt.UTC))
    assert await lifecycle.notify_ended_add_ons(clock.now()) == 1
    assert await lifecycle.notify_ended_add_ons(clock.now()) == 0  # announced once
    for address in (LONGEST, OTHER_LONGEST, "admin@acme.test"):
        assert await queued_to(address, "add_on_ended") == 1


async def test_emails_to_the_longest_addresses_reach_the_smtp_server(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    await long_admins()
    await add(gql, "users-1", as_=LONGEST)
    assert (await checkout(gql, "long-address-delivery", as_=LONGEST))["__typename"] == "CheckoutSuccess"

    assert await smtp_server.dispatcher(clock).run_once() == 3

    assert len(smtp_server.inbox.to(LONGEST)) == len(smtp_server.inbox.to(OTHER_LONGEST)) == 1
    assert await OutboxEmail.filter(status="SENT").count() == 3
