"""E-mails as people read them: one template pair per kind, rendered in each recipient's language.

Each kind has ``app/templates/email/<kind>.txt`` (the plain-text part, whose ``subject`` block is the
subject line) and ``<kind>.html`` (the HTML part, on ``layout.html``: one column, at most 600 px wide,
inline styles, readable in a narrow mail client). Their texts are ``{% trans %}`` blocks of the
``emails`` gettext domain (app/i18n/catalogs.py); money, dates, numbers and catalog names go through
filters that read the recipient's locale.

Who reads which language: a tenant's admin reads their own ``User.locale``, else the tenant's
``Tenant.locale``, else English; the tenant's extra alert recipients read the tenant's; the vendor's
operations address reads English (vendor-facing).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from babel.units import format_unit

from app.i18n import (
    DEFAULT_LOCALE,
    Locale,
    Text,
    babel_locale,
    format_date,
    format_long_date,
    format_money,
    format_number,
    format_percentage,
    locale_of,
    localized,
    translations,
)
from app.models.enums import Role
from app.models.tenancy import User
from app.money import Money

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"

# Every kind of e-mail the gateway sends (the value stored in ``OutboxEmail.kind``).
PURCHASE = "purchase"
ADD_ON_CANCELLED = "add_on_cancelled"
CANCELLATION_UNDONE = "cancellation_undone"
ADD_ON_ENDED = "add_on_ended"
PLAN_UPGRADED = "plan_upgraded"
PLAN_CHANGE_SCHEDULED = "plan_change_scheduled"
PLAN_CHANGE_CANCELLED = "plan_change_cancelled"
PLAN_CHANGE_APPLIED = "plan_change_applied"
INVOICE_ISSUED = "invoice_issued"
QUOTE_REQUEST = "quote_request"  # to the vendor's operations address
QUOTE_RECEIVED = "quote_received"  # the acknowledgement to the customer's admins
LIMIT_ALERT = "limit_alert"
ALLOWANCE_PASSED = "allowance_passed"  # to the customer's admins
ALLOWANCE_PASSED_VENDOR = "allowance_passed_vendor"  # to the operations address
KINDS = (
    PURCHASE,
    ADD_ON_CANCELLED,
    CANCELLATION_UNDONE,
    ADD_ON_ENDED,
    PLAN_UPGRADED,
    PLAN_CHANGE_SCHEDULED,
    PLAN_CHANGE_CANCELLED,
    PLAN_CHANGE_APPLIED,
    INVOICE_ISSUED,
    QUOTE_REQUEST,
    QUOTE_RECEIVED,
    LIMIT_ALERT,
    ALLOWANCE_PASSED,
    ALLOWANCE_PASSED_VENDOR,
)


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    locale: Locale


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Named:
    """A catalog item's name per locale (``Plan.names``/``AddOn.names``) with its default name."""

    name: str
    names: dict[str, str]


# --- Filters: what a template formats in the recipient's locale --------------------------------


def _locale(context: Any) -> Locale:
    return Locale(context.get("locale", DEFAULT_LOCALE))


@jinja2.pass_context
def _money(context: Any, value: Money | Decimal | str | int, currency: str | None = None) -> str:
    if isinstance(value, Money):
        return format_money(value.amount, value.currency, _locale(context))
    assert currency is not None, "an amount without its currency"
    return format_money(Decimal(value), currency, _locale(context))


def _day(value: dt.date | dt.datetime) -> dt.date:
    return value.astimezone(dt.UTC).date() if isinstance(value, dt.datetime) else value


@jinja2.pass_context
def _date(context: Any, value: dt.date | dt.datetime) -> str:
    return format_date(_day(value), _locale(context))


@jinja2.pass_context
def _long_date(context: Any, value: dt.date | dt.datetime) -> str:
    return format_long_date(_day(value), _locale(context))


@jinja2.pass_context
def _number(context: Any, value: int | Decimal) -> str:
    return format_number(value, _locale(context))


@jinja2.pass_context
def _gigabytes(context: Any, value: int) -> str:
    """Bytes as the plans count storage (1 GB = 1024³ bytes): ``5 GB``, ``1,1 GB`` (pt-BR, es)."""
    return format_unit(
        Decimal(value) / 1024**3, "digital-gigabyte", length="short", format="#,##0.#",
        locale=babel_locale(_locale(context)),
    )  # fmt: skip


@jinja2.pass_context
def _percent(context: Any, value: int | Decimal) -> str:
    """``80`` (a percentage) -> ``80%`` / ``80 %`` as the locale writes it."""
    return format_percentage(value, _locale(context))


@jinja2.pass_context
def _name(context: Any, item: Any) -> str:
    """A catalog item's name in the recipient's locale, else its default name."""
    if isinstance(item, str):
        return item
    return localized(getattr(item, "names", None) or {}, _locale(context), str(item.name))


@jinja2.pass_context
def _text(context: Any, message: str | Text) -> str:
    return message.render(_locale(context)) if isinstance(message, Text) else message


@functools.cache
def environment(locale: Locale) -> jinja2.Environment:
    """The templates with ``locale``'s messages (one environment per locale, built once)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False, default=False),
        extensions=["jinja2.ext.i18n", "jinja2.ext.do"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.policies["ext.i18n.trimmed"] = True  # as the catalogs extract them (app/i18n/catalogs.py)
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        money=_money,
        date=_date,
        long_date=_long_date,
        number=_number,
        gigabytes=_gigabytes,
        percent=_percent,
        name=_name,
        text=_text,
    )
    return env


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def render(kind: str, locale: Locale | str, **context: Any) -> RenderedEmail:
    """The subject, plain-text and HTML parts of the e-mail ``kind`` in ``locale``."""
    chosen = locale_of(str(locale)) or DEFAULT_LOCALE
    env = environment(chosen)
    values = {**context, "locale": chosen.value, "kind": kind}
    text_template = env.get_template(f"{kind}.txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(values)))
    subject = re.sub(r"[ \t\r\n]+", " ", subject).strip()  # one line; keeps no-break spaces (``80 %``)
    return RenderedEmail(
        subject=subject,
        text=_tidy(text_template.render(values)),
        html=env.get_template(f"{kind}.html").render({**values, "subject": subject}).strip() + "\n",
    )


# --- Recipients ---------------------------------------------------------------------------------


async def admin_recipients(tenant_id: uuid.UUID | str) -> list[Recipient]:
    """The tenant's active admins, each in their own locale, else the tenant's, else English."""
    rows = (
        await User.filter(tenant_id=tenant_id, role=Role.ADMIN, is_active=True)
        .order_by("email")
        .values_list("email", "locale", "tenant__locale")
    )
    return [
        Recipient(str(email), locale_of(locale) or locale_of(tenant) or DEFAULT_LOCALE)
        for email, locale, tenant in rows
    ]


def operations(address: str) -> Recipient:
    """The vendor's operations address (``settings.ops_email``): vendor-facing, in English."""
    return Recipient(address, Locale.EN)
