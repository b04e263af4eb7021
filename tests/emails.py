"""Reading the e-mails the gateway sends, whatever language each recipient reads them in."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from email.header import decode_header, make_header
from email.message import Message

from babel.numbers import format_decimal, format_percent

from app.i18n import DEFAULT_LOCALE, Locale, babel_locale, format_date, format_money, gettext, locale_of
from app.models.catalog import AddOn
from app.models.notifications import OutboxEmail


def part_of(message: Message, content_type: str) -> str:
    """The decoded body part of ``content_type`` (not an attachment) of a delivered message."""
    for part in message.walk():
        if part.get_content_type() == content_type and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no {content_type} part in {message['Subject']!r}")


def subject_of(message: Message) -> str:
    """The subject as read (RFC 2047 encoded words decoded)."""
    return str(make_header(decode_header(str(message["Subject"]))))


def text_of(message: Message) -> str:
    return part_of(message, "text/plain")


def html_of(message: Message) -> str:
    return part_of(message, "text/html")


def language_of(message: Message | OutboxEmail) -> Locale:
    """The language a delivered message (its ``Content-Language``) or a queued one was written in."""
    tag = message.locale if isinstance(message, OutboxEmail) else message["Content-Language"]
    return locale_of(str(tag) if tag else None) or DEFAULT_LOCALE


def money(amount: str, currency: str, locale: Locale) -> str:
    return format_money(Decimal(amount), currency, locale)


def day(date: dt.date | str, locale: Locale) -> str:
    return format_date(dt.date.fromisoformat(date) if isinstance(date, str) else date, locale)


def says(locale: Locale, message: str, **values: object) -> str:
    """An e-mail sentence (an ``emails`` msgid) as ``locale`` reads it with ``values``."""
    return gettext(locale, message) % values if values else gettext(locale, message)


def opening(locale: Locale, message: str) -> str:
    """The words of a sentence before its first field, in ``locale`` (to recognise a subject)."""
    return gettext(locale, message).split("%(")[0]


def is_about(message: Message, subject: str) -> bool:
    """Whether a delivered message's subject is ``subject`` (an ``emails`` msgid) in its language."""
    pattern = ".+?".join(
        re.escape(part) for part in re.split(r"%\(\w+\)s", gettext(language_of(message), subject))
    )
    return re.fullmatch(pattern, subject_of(message)) is not None


def about(messages: list[Message], subject: str) -> list[Message]:
    return [message for message in messages if is_about(message, subject)]


async def add_on_name(code: str, locale: Locale) -> str:
    """An add-on's name as an e-mail in ``locale`` names it."""
    add_on = await AddOn.get(code=code)
    return add_on.names.get(locale.value) or add_on.name


def number(value: int, locale: Locale) -> str:
    return format_decimal(value, locale=babel_locale(locale))


def percent(value: int, locale: Locale) -> str:
    return format_percent(Decimal(value) / 100, locale=babel_locale(locale))


def alert_subject(locale: Locale, label: str, threshold: int, state: str = "TRIGGERED") -> str:
    """The subject of the alert e-mail headed by ``label`` (an ``emails`` msgid such as "Credits")."""
    name, share = gettext(locale, label), percent(threshold, locale)
    if state == "RESOLVED":
        return says(locale, "%(name)s back below %(percent)s of the limit", name=name, percent=share)
    if threshold == 100:
        return says(locale, "%(name)s: limit reached (%(percent)s)", name=name, percent=share)
    return says(locale, "%(name)s reached %(percent)s of the limit", name=name, percent=share)
