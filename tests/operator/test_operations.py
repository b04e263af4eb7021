"""The operations view over /operator/graphql: environments over their credit limit or beyond their process
allowance, open alerts, quote requests (marked handled), undelivered e-mails (resent through a real SMTP
server); scopes, audit, and a statement count that does not grow with the number of environments."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from app.auth.operator import OPS_READ, TENANTS_WRITE
from app.clock import FrozenClock
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.models.enums import OutboxStatus, Role
from app.models.metering import AlertKind, AlertState, LimitAlert, ProcessCounter
from app.models.notifications import OutboxEmail
from app.models.operators import OperatorAuditEntry
from app.models.quotes import QuoteRequest
from app.models.tenancy import Tenant, User
from app.models.usage import TenantUsage
from app.resolvers.ids import global_id
from app.seed import SeedResult
from tests.conftest import count_queries
from tests.operator.conftest import OperatorClient
from tests.smtp import SmtpServer

LIMITS = """
{ operations {
  overCreditLimit { environment { slug name } creditsUsed creditLimit percent lastReportAt }
  beyondProcessAllowance { environment { slug } period { name start end } processesStarted allowance }
} }
"""
ALERTS = """
query($first: Int, $after: String) { operations { openAlerts(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  nodes { id environment { slug } alert { kind threshold state used limit period { name } } }
} } }
"""
QUOTES = """
query($handled: Boolean) { operations { quoteRequests(handled: $handled) {
  totalCount nodes { id environment { slug } addOnCode message requestedBy createdAt handledAt handledBy }
} } }
"""
EMAILS = """
query($first: Int, $after: String) { operations { undeliveredEmails(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  nodes { id environment { slug } to subject attempts lastError createdAt }
} } }
"""
EVERYTHING = """
{ operations {
  overCreditLimit { environment { slug } creditsUsed creditLimit percent }
  beyondProcessAllowance { environment { slug } processesStarted allowance }
  openAlerts(first: 100) { totalCount nodes { environment { slug } alert { kind } } }
  quoteRequests { totalCount nodes { environment { slug } handledBy } }
  undeliveredEmails(first: 100) { totalCount nodes { environment { slug } to } }
} }
"""
HANDLE = """
mutation($id: ID!) { markQuoteRequestHandled(quoteRequestId: $id) {
  __typename ... on Error { code field }
  ... on MarkQuoteRequestHandledSuccess { quoteRequest { id handledAt handledBy } }
} }
"""
RESEND = """
mutation($id: ID!) { resendEmail(emailId: $id) {
  __typename ... on Error { code field message } ... on EmailNotUndeliveredError { status }
  ... on ResendEmailSuccess { emailId to subject }
} }
"""


async def make_environments(count: int, now: dt.datetime, *, prefix: str = "env") -> list[Tenant]:
    """``count`` store-eligible EUR environments on storefront-m, each with one admin and one member."""
    plan = await Plan.get(code="storefront-m")
    tenants = []
    for index in range(count):
        tenant = await Tenant.create(
            slug=f"{prefix}-{index}", name=f"Environment {index}", currency="EUR", created_at=now
        )
        await User.create(tenant=tenant, email=f"admin@{prefix}-{index}.test", name="Admin", role=Role.ADMIN)
        await PlanSubscription.create(tenant=tenant, plan=plan, started_at=now)
        tenants.append(tenant)
    return tenants


async def report(tenant: Tenant, credits: int, now: dt.datetime) -> None:
    values = {"variants": credits, "credits": credits, "measured_at": now}
    if not await TenantUsage.filter(tenant_id=tenant.id).update(**values):
        await TenantUsage.create(tenant_id=tenant.id, **values)


async def dead_email(
    tenant: Tenant | None, to: str, at: dt.datetime, subject: str = "Your add-on"
) -> OutboxEmail:
    return await OutboxEmail.create(
        tenant=tenant,
        to_address=to,
        subject=subject,
        body="Hello",
        status=OutboxStatus.DEAD,
        attempts=12,
        next_attempt_at=at,
        last_error="SMTPRecipientsRefused: 550 mailbox unavailable",
        created_at=at,
    )


def data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["operations"]
    return result


async def test_environments_over_their_credit_limit_are_listed_against_their_effective_limit(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    now = clock.now()
    acme = await Tenant.get(slug="acme")
    nova = await Tenant.get(slug="nova")
    # acme: storefront-m 3,000 credits + credits-1000 = 4,000: 4,500 is over; nova's limit is not reached.
    await report(acme, 4500, now)
    await report(nova, 10, now)
    rows = data(await operator.post(LIMITS, scopes=(OPS_READ,)))["overCreditLimit"]
    assert rows == [
        {
            "environment": {"slug": "acme", "name": "Acme Storefront"},
            "creditsUsed": 4500,
            "creditLimit": 4000,
            "percent": "112.50",
            "lastReportAt": now.isoformat(),
        }
    ]
    # Exactly at the limit is not over it (processes still start: the check is "above").
    await report(acme, 4000, now)
    assert data(await operator.post(LIMITS, scopes=(OPS_READ,)))["overCreditLimit"] == []


async def test_a_credit_pack_that_ended_no_longer_raises_the_limit(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    await report(acme, 3500, clock.now())
    assert data(await operator.post(LIMITS, scopes=(OPS_READ,)))["overCreditLimit"] == []
    await AddOnSubscription.filter(tenant=acme, add_on__code="credits-1000").update(ends_at=clock.now())
    [row] = data(await operator.post(LIMITS, scopes=(OPS_READ,)))["overCreditLimit"]
    assert (row["environment"]["slug"], row["creditLimit"]) == ("acme", 3000)


async def test_environments_beyond_their_process_allowance_this_period(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")  # anchor 1: period 2026-11; allowance 4,000 x 30 x 1.33
    nova = await Tenant.get(slug="nova")  # anchor 10: period 2026-11 too (from the 10th)
    allowance = 4000 * 30 * 133 // 100
    await ProcessCounter.create(tenant=acme, period="2026-11", used=allowance + 1)
    await ProcessCounter.create(tenant=acme, period="2026-10", used=10**9)  # last period: not this one
    [row] = data(await operator.post(LIMITS, scopes=(OPS_READ,)))["beyondProcessAllowance"]
    assert row == {
        "environment": {"slug": "acme"},
        "period": {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"},
        "processesStarted": allowance + 1,
        "allowance": allowance,
    }
    await ProcessCounter.filter(tenant=acme, period="2026-11").update(used=allowance)
    await ProcessCounter.create(tenant=nova, period="2026-11", used=0)
    assert data(await operator.post(LIMITS, scopes=(OPS_READ,)))["beyondProcessAllowance"] == []


async def test_an_inactive_environment_is_not_an_operational_concern(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    await report(acme, 10**6, clock.now())
    await Tenant.filter(id=acme.id).update(is_active=False)
    assert data(await operator.post(LIMITS, scopes=(OPS_READ,)))["overCreditLimit"] == []


async def alert(
    tenant: Tenant, kind: AlertKind, threshold: int, state: AlertState, at: dt.datetime, **kw: Any
) -> LimitAlert:
    return await LimitAlert.create(
        tenant=tenant, kind=kind, threshold=threshold, state=state, used=90, limit=100, created_at=at, **kw
    )


async def test_open_alerts_are_those_not_fallen_back_below_and_process_alerts_of_the_current_period(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    now = clock.now()
    acme = await Tenant.get(slug="acme")  # anchor 1: current period 2026-11
    nova = await Tenant.get(slug="nova")  # anchor 10: current period 2026-11 (from Nov 10th)
    t, r = AlertState.TRIGGERED, AlertState.RESOLVED
    closed = await alert(acme, AlertKind.CREDITS, 80, t, now)
    await alert(acme, AlertKind.CREDITS, 80, r, now)
    reopened = await alert(acme, AlertKind.CREDITS, 80, t, now)
    storage = await alert(nova, AlertKind.STORAGE, 90, t, now)
    await alert(acme, AlertKind.PROCESSES, 80, t, now, period="2026-10")  # a past period: over
    processes = await alert(nova, AlertKind.PROCESSES, 100, t, now, period="2026-11")
    body = await operator.post(ALERTS, {"first": 2}, scopes=(OPS_READ,))
    page = data(body)["openAlerts"]
    assert page["totalCount"] == 3
    assert [node["id"] for node in page["nodes"]] == [
        global_id("LimitAlert", processes.id),
        global_id("LimitAlert", storage.id),
    ]
    assert page["nodes"][0]["environment"] == {"slug": "nova"}
    assert page["nodes"][0]["alert"]["period"] == {"name": "2026-11"}
    rest = data(
        await operator.post(ALERTS, {"first": 2, "after": page["pageInfo"]["endCursor"]}, scopes=(OPS_READ,))
    )
    assert [node["id"] for node in rest["openAlerts"]["nodes"]] == [global_id("LimitAlert", reopened.id)]
    assert rest["openAlerts"]["pageInfo"]["hasNextPage"] is False
    assert closed.id != reopened.id


async def test_a_process_alert_of_an_anchor_whose_period_has_not_turned_stays_open(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    """2026-11-23 with anchor 28: the current period is still the one named 2026-10."""
    acme = await Tenant.get(slug="acme")
    await Tenant.filter(id=acme.id).update(billing_anchor_day=28)
    october = await alert(acme, AlertKind.PROCESSES, 80, AlertState.TRIGGERED, clock.now(), period="2026-10")
    await alert(acme, AlertKind.PROCESSES, 90, AlertState.TRIGGERED, clock.now(), period="2026-09")
    nodes = data(await operator.post(ALERTS, scopes=(OPS_READ,)))["openAlerts"]["nodes"]
    assert [node["id"] for node in nodes] == [global_id("LimitAlert", october.id)]


async def test_quote_requests_waiting_and_handled_and_marking_one_is_audited_once(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    now = clock.now()
    acme = await Tenant.get(slug="acme")
    older = await QuoteRequest.create(
        tenant=acme,
        add_on_code="integration-sap",
        message="Olá\n" + "x" * 1990,
        requested_by="admin@acme.test",
        created_at=now - dt.timedelta(hours=1),
    )
    newer = await QuoteRequest.create(
        tenant=acme, add_on_code="storage-10gb", message="", requested_by="admin@acme.test", created_at=now
    )
    waiting = data(await operator.post(QUOTES, {"handled": False}, scopes=(OPS_READ,)))["quoteRequests"]
    assert waiting["totalCount"] == 2
    assert [node["addOnCode"] for node in waiting["nodes"]] == ["storage-10gb", "integration-sap"]
    assert waiting["nodes"][1]["message"] == older.message

    request_id = global_id("QuoteRequest", older.id)
    clock.advance(dt.timedelta(minutes=5))
    done = (await operator.post(HANDLE, {"id": request_id}, scopes=(TENANTS_WRITE,)))["data"]
    result = done["markQuoteRequestHandled"]
    key = await operator.key(TENANTS_WRITE)
    assert result["quoteRequest"]["handledBy"] == key.split("_")[1]
    assert result["quoteRequest"]["handledAt"] == clock.now().isoformat()
    clock.advance(dt.timedelta(minutes=5))
    again = (await operator.post(HANDLE, {"id": request_id}, scopes=(TENANTS_WRITE,)))["data"]
    assert again["markQuoteRequestHandled"] == result  # the first handling stands
    [entry] = await OperatorAuditEntry.filter(action="quote_request.handle").select_related("operator_key")
    assert (entry.tenant_id, entry.subject_id, entry.operator_key.prefix) == (
        acme.id,
        str(older.id),
        key.split("_")[1],
    )

    handled = data(await operator.post(QUOTES, {"handled": True}, scopes=(OPS_READ,)))["quoteRequests"]
    assert [node["id"] for node in handled["nodes"]] == [request_id]
    left = data(await operator.post(QUOTES, {"handled": False}, scopes=(OPS_READ,)))["quoteRequests"]
    assert [node["id"] for node in left["nodes"]] == [global_id("QuoteRequest", newer.id)]


async def test_marking_an_unknown_or_foreign_id_is_not_found(
    operator: OperatorClient, demo: SeedResult
) -> None:
    for value in (
        global_id("QuoteRequest", uuid.uuid4()),
        global_id("QuoteRequest", "nope"),
        global_id("Coupon", "X"),
        "\x00" * 300,
    ):
        result = (await operator.post(HANDLE, {"id": value}, scopes=(TENANTS_WRITE,)))["data"]
        assert result["markQuoteRequestHandled"] == {
            "__typename": "NotFoundError",
            "code": "NOT_FOUND",
            "field": "quoteRequestId",
        }
    assert not await OperatorAuditEntry.exists()


async def test_an_undelivered_email_is_resent_and_arrives_at_a_real_smtp_server(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    now = clock.now()
    acme = await Tenant.get(slug="acme")
    email = await dead_email(acme, "admin@acme.test", now - dt.timedelta(days=1), subject="Add-on activated")
    await dead_email(None, "ops@vendor.test", now, subject="Vendor notice")
    page = data(await operator.post(EMAILS, scopes=(OPS_READ,)))["undeliveredEmails"]
    assert page["totalCount"] == 2
    assert page["nodes"][1] == {
        "id": global_id("UndeliveredEmail", email.id),
        "environment": {"slug": "acme"},
        "to": "admin@acme.test",
        "subject": "Add-on activated",
        "attempts": 12,
        "lastError": "SMTPRecipientsRefused: 550 mailbox unavailable",
        "createdAt": (now - dt.timedelta(days=1)).isoformat(),
    }
    assert page["nodes"][0]["environment"] is None

    email_id = global_id("UndeliveredEmail", email.id)
    result = (await operator.post(RESEND, {"id": email_id}, scopes=(TENANTS_WRITE,)))["data"]["resendEmail"]
    assert result == {
        "__typename": "ResendEmailSuccess",
        "emailId": email_id,
        "to": "admin@acme.test",
        "subject": "Add-on activated",
    }
    row = await OutboxEmail.get(id=email.id)
    assert (row.status, row.attempts, row.next_attempt_at) == (OutboxStatus.PENDING, 0, now)

    assert await smtp_server.dispatcher(clock).run_once() == 1
    [message] = smtp_server.inbox.to("admin@acme.test")
    assert message["Subject"] == "Add-on activated"
    assert (await OutboxEmail.get(id=email.id)).status == OutboxStatus.SENT
    [entry] = await OperatorAuditEntry.filter(action="email.resend")
    assert (entry.tenant_id, entry.subject_id) == (acme.id, str(email.id))
    assert entry.details == {"to": "admin@acme.test", "previous_attempts": 12}

    # Sent now: resending it again is refused, with its status, and writes nothing.
    again = (await operator.post(RESEND, {"id": email_id}, scopes=(TENANTS_WRITE,)))["data"]["resendEmail"]
    assert (again["__typename"], again["code"], again["status"]) == (
        "EmailNotUndeliveredError",
        "EMAIL_NOT_UNDELIVERED",
        "SENT",
    )
    assert await OperatorAuditEntry.filter(action="email.resend").count() == 1
    left = data(await operator.post(EMAILS, scopes=(OPS_READ,)))["undeliveredEmails"]
    assert [node["to"] for node in left["nodes"]] == ["ops@vendor.test"]


async def test_resending_an_unknown_email_is_not_found(operator: OperatorClient, demo: SeedResult) -> None:
    for value in (
        global_id("UndeliveredEmail", uuid.uuid4()),
        global_id("QuoteRequest", uuid.uuid4()),
        "💥" * 100,
    ):
        result = (await operator.post(RESEND, {"id": value}, scopes=(TENANTS_WRITE,)))["data"]["resendEmail"]
        assert (result["__typename"], result["field"]) == ("NotFoundError", "emailId")


async def test_undelivered_emails_page_by_cursor(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    now = clock.now()
    for index in range(5):
        await dead_email(None, f"nobody{index}@example.test", now - dt.timedelta(minutes=index % 2))
    seen: list[str] = []
    after = None
    while True:
        page = data(await operator.post(EMAILS, {"first": 2, "after": after}, scopes=(OPS_READ,)))[
            "undeliveredEmails"
        ]
        seen += [node["to"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == [f"nobody{index}@example.test" for index in range(5)]
    body = await operator.post(EMAILS, {"after": "Zm9yZ2Vk"}, scopes=(OPS_READ,))
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_view_needs_ops_read_and_its_actions_tenants_write(
    operator: OperatorClient, demo: SeedResult
) -> None:
    body = await operator.post(LIMITS, scopes=(TENANTS_WRITE,))
    assert body["data"] == {"operations": None}
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "requiredScopes": [OPS_READ]}
    for document, value in (
        (HANDLE, global_id("QuoteRequest", uuid.uuid4())),
        (RESEND, global_id("UndeliveredEmail", uuid.uuid4())),
    ):
        body = await operator.post(document, {"id": value}, scopes=(OPS_READ,))
        assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "requiredScopes": [TENANTS_WRITE]}


async def test_the_view_costs_the_same_statements_for_one_and_for_twenty_environments(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    now = clock.now()
    await operator.key(OPS_READ)

    async def populate(tenants: list[Tenant]) -> None:
        pack = await AddOn.get(code="credits-1000")
        for tenant in tenants:
            await report(tenant, 10**6, now)
            await AddOnSubscription.create(
                tenant=tenant, add_on=pack, quantity=1, unit_price=25, currency="EUR", contracted_at=now
            )
            await ProcessCounter.create(tenant=tenant, period="2026-11", used=10**7)
            await alert(tenant, AlertKind.CREDITS, 100, AlertState.TRIGGERED, now)
            await QuoteRequest.create(tenant=tenant, add_on_code="x", requested_by="a@b.test", created_at=now)
            await dead_email(tenant, f"admin@{tenant.slug}.test", now)

    async def statements() -> tuple[int, dict[str, Any]]:
        with count_queries() as counter:
            body = data(await operator.post(EVERYTHING, scopes=(OPS_READ,)))
        return counter.count, body

    await populate(await make_environments(1, now, prefix="one"))
    one, body = await statements()
    assert len(body["overCreditLimit"]) == 1
    assert body["undeliveredEmails"]["totalCount"] == 1
    await populate(await make_environments(19, now, prefix="more"))
    twenty, body = await statements()
    assert len(body["overCreditLimit"]) == 20
    assert len(body["beyondProcessAllowance"]) == 20
    assert body["openAlerts"]["totalCount"] == 20
    assert body["quoteRequests"]["totalCount"] == 20
    assert twenty == one, (one, twenty)
    assert one >= 8, (one, twenty)
