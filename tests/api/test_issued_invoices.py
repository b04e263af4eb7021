"""Issued invoices (issue 14): issued once at the end of a period, numbered without gaps per tenant and
year (also with concurrent issuers, SQLite and PostgreSQL), immutable, read over GraphQL, served as a
PDF to the tenant's admins and e-mailed to them with the PDF attached; ``tollgate invoices issue``.

The clock starts at 2026-11-23 12:00 UTC; the tests move it to 2026-12-01 00:05, when acme's (anchor 1)
period 2026-11 has just ended, nova's (anchor 10) latest ended one is 2026-10 and legacy's (anchor 1)
is 2026-11.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdf
import pytest
from tortoise.expressions import F

from app.clock import FrozenClock
from app.main import create_app
from app.models.audit import AuditEntry
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn
from app.models.invoices import InvoiceSequence, IssuedInvoice, IssuedInvoiceLine
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant
from app.seed import SeedResult
from app.services import audit, invoice_issuing, invoices
from app.services.invoice_pdf import render_pdf
from app.services.periods import period_named
from app.settings import Settings
from tests.api.test_checkout import checkout
from tests.api.test_store import add
from tests.conftest import GraphQLClient, count_queries
from tests.smtp import SmtpServer

ACME = "admin@acme.test"
MEMBER = "member@acme.test"
NOVA = "admin@nova.test"
LEGACY = "admin@legacy.test"
PERIOD_END = dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.UTC)
RACERS = 8
MONEY = "{ amount currency }"
INVOICE = f"""
  id number period {{ name start end }} issuedAt currency pdfPath
  lines {{ kind code description quantity unitPrice {MONEY} days amount {MONEY} }}
  subtotal {MONEY} discount {MONEY} total {MONEY}
"""
ONE = f"""
query($number: String!) {{
  invoice(number: $number) {{ __typename ... on Error {{ code field }} ... on IssuedInvoice {{ {INVOICE} }} }}
}}
"""
LIST = f"""
query($first: Int, $after: String) {{
  invoices(first: $first, after: $after) {{
    __typename
    ... on Error {{ code }}
    ... on IssuedInvoiceConnection {{
      totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {INVOICE} }}
    }}
  }}
}}
"""


def as_graphql(invoice: invoices.pricing.Invoice) -> list[dict[str, Any]]:
    def money(value: Any) -> dict[str, Any]:
        return {"amount": f"{value.amount:.2f}", "currency": value.currency}

    return [
        {
            "kind": str(line.kind),
            "code": line.code,
            "description": line.description,
            "quantity": line.quantity,
            "unitPrice": money(line.unit_price),
            "days": line.days,
            "amount": money(line.amount),
        }
        for line in invoice.lines
    ]


async def issued_numbers() -> list[tuple[str, str]]:
    rows = await IssuedInvoice.all().order_by("number").values_list("number", "period_start")
    return [(str(number), str(start)) for number, start in rows]


async def last_preview(slug: str, period_name: str) -> invoices.pricing.Invoice:
    tenant = await Tenant.get(slug=slug)
    period = period_named(period_name, tenant.billing_anchor_day)
    return await invoices.tenant_invoice(
        tenant, period, now=period.end_instant() - dt.timedelta(microseconds=1)
    )


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


# --- Issuing -----------------------------------------------------------------------------------


async def test_each_ended_period_is_issued_once_numbered_and_equal_to_its_last_preview(
    demo: SeedResult, clock: FrozenClock
) -> None:
    preview = await last_preview("acme", "2026-11")
    clock.set(PERIOD_END)

    issued = await invoice_issuing.issue_due_invoices(clock.now())

    assert sorted((item.number, item.period) for item in issued) == [
        ("ACME-2026-0001", "2026-11"),
        ("LEGACY-2026-0001", "2026-11"),
        ("NOVA-2026-0001", "2026-10"),  # anchor 10: 2026-11 runs until 2026-12-10
    ]
    assert await invoice_issuing.issue_due_invoices(clock.now()) == []  # once
    acme = await IssuedInvoice.get(number="ACME-2026-0001").prefetch_related("lines")
    assert (acme.period_start, acme.period_end) == (dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    assert (acme.year, acme.sequence, acme.currency, acme.issued_at) == (2026, 1, "EUR", PERIOD_END)
    assert [
        (line.kind, line.code, line.description, line.quantity, line.unit_price, line.days, line.amount)
        for line in acme.lines
    ] == [
        (
            str(line.kind),
            line.code,
            line.description,
            line.quantity,
            line.unit_price.amount,
            line.days,
            line.amount.amount,
        )
        for line in preview.lines
    ]
    assert len(acme.lines) >= 3  # the plan and its add-ons
    assert (acme.subtotal, acme.discount, acme.total) == (
        preview.subtotal.amount,
        preview.discount.amount,
        preview.total.amount,
    )
    entry = await AuditEntry.get(action="invoice.issue", subject_id=str(acme.id))
    assert entry.tenant_id == acme.tenant_id


async def test_late_runs_catch_up_every_ended_period_in_the_year_of_issue(
    demo: SeedResult, clock: FrozenClock
) -> None:
    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())
    clock.set(dt.datetime(2027, 3, 2, 8, tzinfo=dt.UTC))  # December, January and February ended since

    issued = await invoice_issuing.issue_due_invoices(clock.now())

    acme = [(item.number, item.period) for item in issued if item.tenant_slug == "acme"]
    assert acme == [
        ("ACME-2027-0001", "2026-12"),
        ("ACME-2027-0002", "2027-01"),
        ("ACME-2027-0003", "2027-02"),
    ]
    nova = [(item.number, item.period) for item in issued if item.tenant_slug == "nova"]
    assert nova == [
        ("NOVA-2027-0001", "2026-11"),
        ("NOVA-2027-0002", "2026-12"),
        ("NOVA-2027-0003", "2027-01"),
    ]


async def test_no_backfill_and_never_a_period_ending_before_the_subscription_started(
    demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    await PlanSubscription.filter(tenant_id=acme.id).update(
        started_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )
    clock.set(PERIOD_END)

    issued = await invoice_issuing.issue_due_invoices(clock.now())
    assert "acme" not in {item.tenant_slug for item in issued}
    # Nova has years of history: only its latest ended period is issued, not the ones before.
    assert [item.period for item in issued if item.tenant_slug == "nova"] == ["2026-10"]
    # A named period that ended before the subscription started, or has not ended: nothing.
    named = await invoice_issuing.issue_due_invoices(clock.now(), period_name="2026-10")
    assert [(item.tenant_slug, item.number) for item in named] == [("legacy", "LEGACY-2026-0002")]
    assert not await IssuedInvoice.exists(tenant_id=acme.id)
    assert await invoice_issuing.issue_due_invoices(clock.now(), period_name="2026-12") == []


async def test_a_named_period_is_issued_for_every_tenant_once(demo: SeedResult, clock: FrozenClock) -> None:
    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())

    issued = await invoice_issuing.issue_due_invoices(clock.now(), period_name=" 2026-09 ")

    assert sorted(item.number for item in issued) == ["ACME-2026-0002", "LEGACY-2026-0002", "NOVA-2026-0002"]
    assert await invoice_issuing.issue_due_invoices(clock.now(), period_name="2026-09") == []
    with pytest.raises(invoices.InvalidPeriod):
        await invoice_issuing.issue_due_invoices(clock.now(), period_name="2026-13")


async def test_concurrent_issuers_issue_each_invoice_once_without_gaps(
    demo: SeedResult, clock: FrozenClock
) -> None:
    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())
    clock.set(dt.datetime(2027, 6, 1, 1, tzinfo=dt.UTC))  # six periods of acme to catch up, in 2027

    results = await asyncio.gather(*(invoice_issuing.issue_due_invoices(clock.now()) for _ in range(RACERS)))

    numbers = [item.number for result in results for item in result]
    assert len(numbers) == len(set(numbers))  # nobody issued an invoice twice
    acme = await IssuedInvoice.filter(tenant__slug="acme", year=2027).order_by("sequence")
    assert [invoice.sequence for invoice in acme] == [1, 2, 3, 4, 5, 6]
    assert [invoice.period_start.month for invoice in acme] == [12, 1, 2, 3, 4, 5]
    assert (
        await InvoiceSequence.get(tenant__slug="acme", year=2027).values_list("last_number", flat=True) == 6
    )
    assert sorted(numbers) == sorted(number for number, _ in await issued_numbers() if "-2027-" in number)
    # One e-mail per invoice and admin, however many issuers ran.
    emails = Counter(
        await OutboxEmail.filter(kind="invoice_issued", subject__contains="ACME-2027").values_list(
            "subject", flat=True
        )
    )
    assert len(emails) == 6
    assert set(emails.values()) == {1}


async def test_a_rolled_back_issue_gives_its_number_back(
    demo: SeedResult, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.set(PERIOD_END)
    real = audit.record
    failures = {"left": 1}

    async def flaky(**kwargs: Any) -> None:
        if kwargs.get("action") == "invoice.issue" and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("the database went away")
        await real(**kwargs)

    monkeypatch.setattr(audit, "record", flaky)
    acme = await Tenant.get(slug="acme")
    with pytest.raises(RuntimeError):
        await invoice_issuing.issue_period(acme, period_named("2026-11", 1), clock.now())
    assert not await IssuedInvoice.exists(tenant_id=acme.id)
    assert not await OutboxEmail.filter(kind="invoice_issued").exists()
    assert await InvoiceSequence.filter(tenant_id=acme.id, last_number__gt=0).count() == 0

    done = await invoice_issuing.issue_period(acme, period_named("2026-11", 1), clock.now())
    assert done is not None
    assert done.number == "ACME-2026-0001"


async def test_an_issued_invoice_never_changes(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())
    before = (await gql.post(ONE, {"number": "ACME-2026-0001"}, as_=ACME))["data"]["invoice"]

    # The catalog's prices change, a purchase follows, and an add-on of November is corrected.
    for add_on in await AddOn.all():
        await AddOn.filter(id=add_on.id).update(
            prices={currency: str(Decimal(price) * 2) for currency, price in add_on.prices.items()}
        )
    await add(gql, "users-1", 1)
    await checkout(gql, "after-issue")
    acme = await Tenant.get(slug="acme")
    await AddOnSubscription.filter(tenant_id=acme.id).update(unit_price=F("unit_price") + 1)
    recomputed = await invoices.tenant_invoice(acme, period_named("2026-11", 1), now=clock.now())
    assert recomputed.total.amount != Decimal(before["total"]["amount"])  # the data did move

    after = (await gql.post(ONE, {"number": "ACME-2026-0001"}, as_=ACME))["data"]["invoice"]
    assert after == before
    assert await invoice_issuing.issue_due_invoices(clock.now()) == []


# --- GraphQL -----------------------------------------------------------------------------------


async def test_invoices_are_read_newest_period_first_and_by_number(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    preview = await last_preview("acme", "2026-11")
    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())
    await invoice_issuing.issue_due_invoices(clock.now(), period_name="2026-10")

    first = (await gql.post(LIST, {"first": 1}, as_=ACME))["data"]["invoices"]
    assert first["totalCount"] == 2
    assert first["pageInfo"]["hasNextPage"]
    newest = first["nodes"][0]
    assert newest["number"] == "ACME-2026-0001"
    assert newest["period"] == {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"}
    assert newest["pdfPath"] == "/invoices/ACME-2026-0001.pdf"
    assert newest["lines"] == as_graphql(preview)
    assert newest["total"] == {"amount": f"{preview.total.amount:.2f}", "currency": "EUR"}
    second = await gql.post(LIST, {"first": 1, "after": first["pageInfo"]["endCursor"]}, as_=ACME)
    page = second["data"]["invoices"]
    assert [node["number"] for node in page["nodes"]] == ["ACME-2026-0002"]
    assert page["nodes"][0]["period"]["name"] == "2026-10"
    assert not page["pageInfo"]["hasNextPage"]

    one = (await gql.post(ONE, {"number": "acme-2026-0001"}, as_=ACME))["data"]["invoice"]
    assert one == {"__typename": "IssuedInvoice", **newest}
    for number in ("NOVA-2026-0001", "ACME-2099-0001", "", "x" * 10_000, "<script>"):
        answer = (await gql.post(ONE, {"number": number}, as_=ACME))["data"]["invoice"]
        assert answer == {"__typename": "NotFoundError", "code": "NOT_FOUND", "field": "number"}
    member = (await gql.post(ONE, {"number": "ACME-2026-0001"}, as_=MEMBER))["data"]["invoice"]
    assert member["code"] == "NOT_ADMIN"
    legacy = (await gql.post(LIST, {}, as_=LEGACY))["data"]["invoices"]
    assert legacy == {"__typename": "NotEligibleError", "code": "NOT_ELIGIBLE"}
    foreign = await gql.post(LIST, {"after": "bm9wZTox"}, as_=ACME)
    assert foreign["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_page_of_invoices_loads_its_lines_in_one_query(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())
    source = await IssuedInvoice.get(number="ACME-2026-0001").prefetch_related("lines")
    await gql.post(LIST, {"first": 1}, as_=ACME)  # the token and caches are warm

    async def statements(first: int) -> int:
        with count_queries() as counter:
            body = await gql.post(LIST, {"first": first}, as_=ACME)
        assert len(body["data"]["invoices"]["nodes"]) == min(
            first, await IssuedInvoice.filter(tenant_id=source.tenant_id).count()
        )
        return counter.count

    one = await statements(1)
    for month in range(1, 20):  # 19 more invoices, each with the same lines
        copy = await IssuedInvoice.create(
            tenant_id=source.tenant_id,
            number=f"ACME-2025-{month:04d}",
            year=2025,
            sequence=month,
            period_start=dt.date(2024 + (month - 1) // 12, (month - 1) % 12 + 1, 1),
            period_end=dt.date(2024 + month // 12, month % 12 + 1, 1),
            currency="EUR",
            subtotal=source.subtotal,
            discount=source.discount,
            total=source.total,
            issued_at=PERIOD_END,
        )
        await IssuedInvoiceLine.bulk_create(
            [
                IssuedInvoiceLine(
                    invoice_id=copy.id,
                    position=line.position,
                    kind=line.kind,
                    code=line.code,
                    description=line.description,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    days=line.days,
                    amount=line.amount,
                )
                for line in source.lines
            ]
        )
    assert await statements(20) == one


# --- PDF -----------------------------------------------------------------------------------------


async def test_the_pdf_is_served_to_the_tenants_admins_only(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())
    invoice = await IssuedInvoice.get(number="ACME-2026-0001").prefetch_related("lines")
    http = gql.http

    async def get(number: str, authorization: str | None) -> Any:
        headers = {} if authorization is None else {"Authorization": authorization}
        return await http.get(f"/invoices/{number}.pdf", headers=headers)

    admin = f"Bearer {await gql.token_for(ACME)}"
    response = await get("ACME-2026-0001", admin)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="ACME-2026-0001.pdf"'
    assert response.headers["cache-control"] == "private, no-store"
    text = pdf_text(response.content)
    assert "ACME-2026-0001" in text
    assert "Acme Storefront" in text
    for line in invoice.lines:
        assert line.description in text
        assert f"{line.amount:,.2f} EUR" in text
    assert f"Total: {invoice.total:,.2f} EUR" in text

    cases = [
        ("ACME-2026-0001", None, 401, "UNAUTHENTICATED"),
        ("ACME-2026-0001", "Bearer not-a-token", 401, "UNAUTHENTICATED"),
        ("ACME-2026-0001", "Basic abc", 401, "UNAUTHENTICATED"),
        ("ACME-2026-0001", f"Bearer {await gql.token_for(MEMBER)}", 403, "FORBIDDEN"),
        ("ACME-2026-0001", f"Bearer {demo.connector_keys['acme']}", 403, "FORBIDDEN"),
        ("ACME-2026-0001", f"Bearer {await gql.token_for(NOVA)}", 404, "NOT_FOUND"),  # another tenant's
        ("ACME-2099-0001", admin, 404, "NOT_FOUND"),
        ("x" * 500, admin, 404, "NOT_FOUND"),
        ("%00", admin, 404, "NOT_FOUND"),  # a NUL byte never reaches the database (PostgreSQL refuses it)
        ("ACME-2026-0001%00", admin, 404, "NOT_FOUND"),
    ]
    for number, authorization, status, code in cases:
        refused = await get(number, authorization)
        assert refused.status_code == status, (number, authorization)
        assert refused.json()["errors"][0]["extensions"]["code"] == code
    assert (await get("NOVA-2026-0001", admin)).status_code == 404


def test_hostile_and_exotic_text_never_breaks_the_pdf() -> None:
    invoice = IssuedInvoice(
        number="ACME-2026-0001",
        currency="EUR",
        period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 12, 1),
        issued_at=PERIOD_END,
        subtotal=Decimal("1234.50"),
        discount=Decimal("0.00"),
        total=Decimal("1234.50"),
    )
    line = IssuedInvoiceLine(
        position=0,
        kind="PLAN",
        code="p",
        description="</td><b>Plan</b> 日本語 🚀 \x00\u202e é" + "x" * 390,
        quantity=1,
        unit_price=Decimal("1234.50"),
        days=30,
        amount=Decimal("1234.50"),
    )

    text = pdf_text(render_pdf(invoice, 'Ünïcode ☃ <Co> & "quotes"', [line]))

    assert "</td><b>Plan</b> ??? ? ??" in text  # escaped, and what Latin-1 lacks is "?"
    assert "éxxx" in text
    assert 'Ünïcode ? <Co> & "quotes"' in text
    assert "Total: 1,234.50 EUR" in text


# --- E-mail --------------------------------------------------------------------------------------


async def test_the_admins_receive_the_pdf_by_email(
    demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())
    await invoice_issuing.issue_due_invoices(clock.now())

    await smtp_server.dispatcher(clock).run_once()

    messages = [m for m in smtp_server.inbox.to(ACME) if "ACME-2026-0001" in str(m["Subject"])]
    assert len(messages) == 1
    attachments = [part for part in messages[0].walk() if part.get_filename()]
    assert [(part.get_filename(), part.get_content_type()) for part in attachments] == [
        ("ACME-2026-0001.pdf", "application/pdf")
    ]
    payload = attachments[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert "ACME-2026-0001" in pdf_text(payload)
    assert not smtp_server.inbox.to(MEMBER)  # admins only


# --- Command line --------------------------------------------------------------------------------


def test_the_command_issues_what_is_due_once(tmp_path: Path) -> None:
    database = tmp_path / "cli.sqlite3"
    env = {
        **__import__("os").environ,
        "TOLLGATE_DATABASE_URL": f"sqlite://{database}",
        "TOLLGATE_MAIL_DIR": str(tmp_path / "mail"),
    }

    def tollgate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert tollgate("seed", "--demo").returncode == 0
    with sqlite3.connect(database) as connection:  # the demo was seeded now: make its plans a year old
        connection.execute("UPDATE plan_subscription SET started_at = '2025-01-01 00:00:00+00:00'")

    first = tollgate("invoices", "issue")
    assert first.returncode == 0, first.stderr
    assert "3 invoice(s) issued." in first.stdout
    assert "ACME-" in first.stdout
    again = tollgate("invoices", "issue")
    assert again.stdout.strip() == "0 invoice(s) issued."
    named = tollgate("invoices", "issue", "--period", "2025-06")
    assert "3 invoice(s) issued." in named.stdout
    assert "2025-06" in named.stdout
    assert tollgate("invoices", "issue", "--period", "2025-06").stdout.strip() == "0 invoice(s) issued."
    wrong = tollgate("invoices", "issue", "--period", "June")
    assert wrong.returncode == 2
    assert "billing period" in wrong.stderr


async def test_the_periodic_task_of_several_instances_issues_once_and_wakes_the_outbox(
    demo: SeedResult, clock: FrozenClock
) -> None:
    clock.set(PERIOD_END)
    woken: list[int] = []
    tasks = [
        invoice_issuing.InvoiceIssuingTask(clock=clock, interval=60, on_enqueued=lambda: woken.append(1))
        for _ in range(RACERS)
    ]

    counts = await asyncio.gather(*(task.run_once() for task in tasks))

    assert sum(counts) == 3
    assert len(woken) == sum(1 for count in counts if count)
    assert await IssuedInvoice.all().count() == 3
    assert await tasks[0].run_once() == 0


async def test_a_running_gateway_issues_what_is_due_unless_told_not_to(
    demo: SeedResult, clock: FrozenClock, settings: Settings
) -> None:
    clock.set(PERIOD_END)
    off = create_app(
        settings.model_copy(update={"invoice_issue_interval_seconds": 0}),
        clock=clock,
        manage_orm=False,
        run_background_tasks=True,
    )
    async with off.router.lifespan_context(off):
        await asyncio.sleep(0.3)
    assert await IssuedInvoice.all().count() == 0

    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=True)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if await IssuedInvoice.all().count() == 3:
                break
            await asyncio.sleep(0.05)
    assert sorted(await IssuedInvoice.all().values_list("number", flat=True)) == [
        "ACME-2026-0001",
        "LEGACY-2026-0001",
        "NOVA-2026-0001",
    ]


async def test_pdf_downloads_share_the_callers_request_budget_and_render_once(
    gql: GraphQLClient, demo: SeedResult, settings: Settings, clock: FrozenClock, monkeypatch: Any
) -> None:
    from app.services import invoice_pdf
    from tests.api.test_rate_limiting import bearer, limited_client

    clock.set(PERIOD_END)
    await invoice_issuing.issue_due_invoices(clock.now())
    renders: list[str] = []
    original = invoice_pdf.render_pdf

    def counting(invoice: Any, tenant_name: str, lines: list[Any]) -> bytes:
        renders.append(invoice.number)
        return original(invoice, tenant_name, lines)

    monkeypatch.setattr(invoice_pdf, "render_pdf", counting)
    admin = bearer(await gql.token_for(ACME))
    async with limited_client(settings, clock) as client:  # 3 requests, then 1 a second
        path = "/invoices/ACME-2026-0001.pdf"
        answers = [await client.get(path, headers=admin) for _ in range(4)]
        forged = [await client.get(path, headers=bearer("tg_x_y")) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[3].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert answers[0].content == answers[2].content
    assert renders == ["ACME-2026-0001"]  # an issued invoice never changes: rendered once
    # A forged credential is charged to its address, and refused.
    assert [answer.status_code for answer in forged] == [401, 401, 401, 429]
