"""Every e-mail, in every language, as its reader gets it: a plain-text and an HTML part.

Each kind is rendered in en, pt-BR and es from sample figures (a hostile tenant name among them), and
both parts are checked: nothing left unrendered, the HTML well formed and escaped, money and dates in
the reader's format. Then through the public API: the purchase e-mail of nova (pt-BR) as its admin
receives it (``pytest -s tests/test_email_templates.py -k pt_br`` prints it), and one alert e-mail
per usage report however many thresholds it crosses.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from app.clock import FrozenClock
from app.i18n import LOCALES, Locale
from app.i18n.catalogs import problems
from app.models.catalog import AddOn
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant, User
from app.money import Money
from app.notifications import emails
from app.notifications.emails import Named, render
from app.seed import SeedResult
from tests.api.test_alerts import credits_to
from tests.api.test_checkout import checkout
from tests.api.test_store import add
from tests.conftest import GraphQLClient
from tests.emails import alert_subject, number, percent

HOSTILE = 'Nova <script>alert("x")</script> & Co'
NOV_30 = dt.date(2026, 11, 30)
WARNINGS = ["Credits in use now exceed the limit after the cancellation."]


def brl(amount: str) -> Money:
    return Money(Decimal(amount), "BRL")


CREDITS = Named("1,000 credits", {"pt-BR": "1.000 créditos", "es": "1.000 créditos"})
BLING = Named("Bling integration", {"pt-BR": "Integração Bling", "es": "Integración Bling"})
PLAN_M = Named("ERP Pro", {"pt-BR": "ERP Pro", "es": "ERP Pro"})
PLAN_S = Named("ERP Start", {})
ALERTS = [
    {"kind": "CREDITS", "threshold": 100, "state": "TRIGGERED", "used": 4200, "limit": 4000},
    {"kind": "CREDITS", "threshold": 90, "state": "TRIGGERED", "used": 4200, "limit": 4000},
    {"kind": "USERS", "threshold": 80, "state": "RESOLVED", "used": 3, "limit": 10},
]

CONTEXTS: dict[str, dict[str, Any]] = {
    emails.PURCHASE: {
        "order_ref": "1a2b3c4d",
        "tenant_name": HOSTILE,
        "bought_by": "admin@nova.test",
        "lines": [
            {"add_on": CREDITS, "quantity": 2, "free": False, "monthly": True, "price": brl("1234.56")},
            {"add_on": BLING, "quantity": 1, "free": True, "monthly": True, "price": brl("0")},
        ],
        "monthly_increase": brl("1234.56"),
        "days_left": 8,
        "period_last_day": NOV_30,
        "due_on_next_invoice": brl("329.22"),
        "one_off_total": brl("0"),
        "coupon_code": "WELCOME10",
        "discount": brl("32.92"),
        "total": brl("296.30"),
        "new_monthly_total": brl("1584.46"),
        "to_configure": [{"add_on": BLING, "fields": ["API token", "Store URL"]}],
    },
    emails.ADD_ON_CANCELLED: {
        "actor": "admin@nova.test",
        "tenant_name": HOSTILE,
        "add_on": CREDITS,
        "available_until": NOV_30,
        "ends_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        "warnings": WARNINGS,  # as the cancellation service words them
    },
    emails.CANCELLATION_UNDONE: {"actor": "admin@nova.test", "tenant_name": HOSTILE, "add_on": CREDITS},
    emails.ADD_ON_ENDED: {"tenant_name": HOSTILE, "add_on": CREDITS, "ended_on": NOV_30},
    emails.PLAN_UPGRADED: {
        "actor": "admin@nova.test",
        "tenant_name": HOSTILE,
        "from_plan": PLAN_S,
        "to_plan": PLAN_M,
        "from_price": brl("149.90"),
        "to_price": brl("1234.56"),
        "change_fee": brl("99.00"),
        "effective_on": NOV_30,
        "new_monthly_total": brl("1300.00"),
    },
    emails.PLAN_CHANGE_SCHEDULED: {
        "actor": "admin@nova.test",
        "tenant_name": HOSTILE,
        "from_plan": PLAN_M,
        "to_plan": PLAN_S,
        "from_price": brl("349.90"),
        "to_price": brl("1234.56"),
        "change_fee": None,
        "effective_on": NOV_30,
    },
    emails.PLAN_CHANGE_CANCELLED: {
        "actor": "admin@nova.test",
        "tenant_name": HOSTILE,
        "from_plan": PLAN_M,
        "to_plan": PLAN_S,
        "effective_on": NOV_30,
    },
    emails.PLAN_CHANGE_APPLIED: {
        "tenant_name": HOSTILE,
        "from_plan": PLAN_M,
        "to_plan": PLAN_S,
        "to_price": brl("1234.56"),
        "effective_on": NOV_30,
    },
    emails.INVOICE_ISSUED: {
        "tenant_name": HOSTILE,
        "number": "NOVA-2026-0001",
        "period_name": "2026-11",
        "period_start": dt.date(2026, 11, 1),
        "period_last_day": NOV_30,
        "issued_on": dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.UTC),
        "total": brl("1234.56"),
    },
    emails.QUOTE_REQUEST: {
        "tenant_slug": "nova",
        "tenant_name": HOSTILE,
        "add_on": BLING,
        "add_on_code": "integration-bling",
        "erps": "bling, tiny",
        "erp": None,
        "currency": "BRL",
        "requested_by": "admin@nova.test",
        "message": "<b>Call</b> us\non Monday, 30/11/2026.",
    },
    emails.QUOTE_RECEIVED: {"add_on": BLING, "requested_by": "admin@nova.test", "tenant_name": HOSTILE},
    emails.LIMIT_ALERT: {"alerts": ALERTS, "period": "2026-11", "tenant_name": HOSTILE},
    emails.ALLOWANCE_PASSED: {
        "tenant_slug": "nova",
        "tenant_name": HOSTILE,
        "used": 159_601,
        "allowance": 159_600,
        "period": "2026-11",
        "credits_used": 4200,
    },
}
CONTEXTS[emails.ALLOWANCE_PASSED_VENDOR] = CONTEXTS[emails.ALLOWANCE_PASSED]

# What the money of 1234.56 and 30 November 2026 read like.
MONEY = {"en": "R$1,234.56", "pt-BR": "R$ 1.234,56", "es": "1.234,56 BRL"}
DATES = {"en": "11/30/2026", "pt-BR": "30/11/2026", "es": "30/11/2026"}
VOID = {"meta", "br", "img", "hr", "link", "input", "col", "area", "base", "wbr", "source"}


class Structure(HTMLParser):
    """Fails on an element closed out of order or left open (void elements aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1:] == [tag], f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def plain(text: str) -> str:
    return text.replace("\xa0", " ").replace("\u202f", " ")


def test_every_kind_has_a_sample_here() -> None:
    assert set(CONTEXTS) == set(emails.KINDS)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", emails.KINDS)
def test_each_kind_renders_both_parts_in_each_locale(kind: str, locale: str) -> None:
    rendered = render(kind, locale, **CONTEXTS[kind])

    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text.strip()
    assert rendered.html.strip()
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "{{" not in part
        assert "{%" not in part
        assert "%(" not in part
        assert "%%" not in part
    parser = Structure()
    parser.feed(rendered.html)
    parser.close()
    assert parser.open == []
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in rendered.html
    assert "max-width:600px" in rendered.html
    assert '<meta name="viewport"' in rendered.html
    # The HTML escapes what it is given; the plain text shows it as it is.
    assert "<script>" not in rendered.html
    assert "<b>Call</b>" not in rendered.html
    if HOSTILE in rendered.text:
        assert "Nova &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in rendered.html
    if kind == emails.QUOTE_REQUEST:
        assert "&lt;b&gt;Call&lt;/b&gt;" in rendered.html


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    "kind",
    [
        emails.PURCHASE,
        emails.PLAN_UPGRADED,
        emails.PLAN_CHANGE_SCHEDULED,
        emails.PLAN_CHANGE_APPLIED,
        emails.INVOICE_ISSUED,
    ],
)
def test_money_and_dates_read_as_the_locale_writes_them(kind: str, locale: str) -> None:
    rendered = render(kind, locale, **CONTEXTS[kind])

    assert MONEY[locale] in plain(rendered.text)
    assert MONEY[locale] in plain(rendered.html)
    if kind not in (emails.PLAN_UPGRADED, emails.PLAN_CHANGE_APPLIED):
        assert DATES[locale] in plain(rendered.text)
        assert DATES[locale] in plain(rendered.html)


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [("pt-BR", "BRL", "R$ 1.234,56"), ("es", "EUR", "1.234,56 €"), ("en", "EUR", "€1,234.56")],
)
def test_the_purchase_total_in_each_locales_own_currency_format(
    locale: str, currency: str, expected: str
) -> None:
    context = {**CONTEXTS[emails.PURCHASE], "total": Money(Decimal("1234.56"), currency)}

    rendered = render(emails.PURCHASE, locale, **context)

    assert expected in plain(rendered.text)
    assert expected in plain(rendered.html)


@pytest.mark.parametrize("locale", ["pt-BR", "es"])
@pytest.mark.parametrize("kind", emails.KINDS)
def test_no_kind_is_left_in_english_for_a_locale(kind: str, locale: str) -> None:
    """Each kind has its template pair, and its words are translated: another locale reads another text."""
    assert (emails.TEMPLATES / f"{kind}.txt").is_file()
    assert (emails.TEMPLATES / f"{kind}.html").is_file()
    english, translated = render(kind, "en", **CONTEXTS[kind]), render(kind, locale, **CONTEXTS[kind])

    assert translated.subject != english.subject
    english_lines = set(english.text.splitlines()) - {"", *(f"- {warning}" for warning in WARNINGS)}
    assert not [line for line in translated.text.splitlines() if line in english_lines and len(line) > 24]


def test_the_emails_catalogs_are_whole() -> None:
    assert [problem for problem in problems() if "/emails." in problem] == []


def test_one_alert_e_mail_names_every_threshold_crossed_and_says_the_limit_is_reached() -> None:
    rendered = render(emails.LIMIT_ALERT, "en", alerts=ALERTS, period="2026-11")

    assert rendered.subject == "Credits: limit reached (100%)"
    assert "The limit is reached." in rendered.text
    assert "Credits reached 90% of the limit: 4,200 used of 4,000" in rendered.text
    assert "Users back below 80% of the limit: 3 used of 10" in rendered.text
    assert "Users back below 80% of the limit" in rendered.html


def test_an_unknown_locale_reads_english() -> None:
    assert render(emails.QUOTE_RECEIVED, "fr", **CONTEXTS[emails.QUOTE_RECEIVED]).subject == (
        "We received your quote request for Bling integration"
    )


# --- Through the public API ---------------------------------------------------------------------


async def test_a_purchase_e_mail_in_pt_br_as_the_client_receives_it(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await Tenant.filter(slug="nova").update(locale="pt-BR")
    await User.filter(tenant__slug="nova").update(locale=None)
    await add(gql, "users-1", as_="admin@nova.test")

    result = await checkout(gql, "pt-br-purchase", as_="admin@nova.test")

    assert result["__typename"] == "CheckoutSuccess", result
    email = await OutboxEmail.get(to_address="admin@nova.test")
    assert (email.kind, email.locale) == ("purchase", "pt-BR")
    users = await AddOn.get(code="users-1")
    name = users.names.get("pt-BR") or users.name
    assert email.subject.startswith("Sua assinatura foi atualizada: pedido ")
    assert "A assinatura de" in email.body
    assert f"- {name} x 1: R$" in email.body
    assert "por mês" in email.body
    assert "Total desta compra: R$ " in plain(email.body)
    assert "Total desta compra" in str(email.html_body)
    print(f"\nSubject: {email.subject}\nTo: {email.to_address}\nContent-Language: {email.locale}\n")
    print(email.body)


async def test_a_report_crossing_several_thresholds_sends_one_e_mail_per_recipient(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await Tenant.filter(slug="acme").update(alert_recipients=["finance@example.com"])

    await credits_to(gql, demo.connector_keys["acme"], clock, 4000)  # 80, 90 and 100% at once

    queued = await OutboxEmail.filter(tenant__slug="acme", kind="limit_alert").order_by("to_address")
    admins = await User.filter(tenant__slug="acme", role="ADMIN", is_active=True).count()
    assert len(queued) == admins + 1
    assert len({email.to_address for email in queued}) == len(queued)
    tenant_locale = Locale((await Tenant.get(slug="acme")).locale)
    for email in queued:
        locale = Locale(str(email.locale))
        assert email.subject == alert_subject(locale, "Credits", 100)
        assert percent(90, locale) in email.body
        assert percent(80, locale) in email.body
        assert number(4000, locale) in email.body
        if email.to_address == "finance@example.com":
            assert locale == tenant_locale  # the extra recipients read the tenant's language


@pytest.mark.parametrize(
    ("locale", "expected"),
    [(Locale.EN, "20 GB used of 20 GB"), (Locale.PT_BR, "1,5 GB"), (Locale.ES, "1,5 GB")],
)
def test_a_storage_alert_reads_in_gigabytes_as_the_plans_count_them(locale: Locale, expected: str) -> None:
    used = 20 * 1024**3 if locale is Locale.EN else 3 * 1024**3 // 2
    storage = {"kind": "STORAGE", "threshold": 100, "state": "TRIGGERED", "used": used, "limit": 20 * 1024**3}

    rendered = emails.render(emails.LIMIT_ALERT, locale, alerts=[storage], period="2026-11")

    assert expected in rendered.text
    assert expected in rendered.html
    assert "bytes" not in rendered.text
