"""Languages: which one a request or a recipient reads, its messages (gettext catalogs) and its formats.

Three locales: ``en`` (the default, and the language of the message ids), ``pt-BR`` and ``es``. Messages
live in gettext catalogs under ``app/i18n/locales/<locale>/LC_MESSAGES/<domain>.po`` (docs/translating.md),
one domain per kind of text: ``errors`` (what a failure says), ``labels`` (texts the API composes: price
labels, conditions) and ``emails`` (the e-mail templates). The compiled ``.mo`` files ship in the package.

A message is written once, in English, as a template with named fields (``_("No add-on {code}.",
code=...)``): a ``Text`` that is rendered in a locale only when someone reads it, so the same failure reads
in Portuguese for one caller and Spanish for another. Money and dates are formatted by Babel from CLDR.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from babel import Locale as BabelLocale
from babel.dates import format_skeleton
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locales"
DOMAINS = ("errors", "labels", "emails")


class Locale(StrEnum):
    """A language of the back office and of the e-mails, as its BCP 47 tag."""

    EN = "en"
    PT_BR = "pt-BR"
    ES = "es"


DEFAULT_LOCALE = Locale.EN
LOCALES = tuple(locale.value for locale in Locale)


def locale_of(tag: str | None) -> Locale | None:
    """The locale a stored or claimed tag names (``pt-BR``, ``pt_br``, ``pt``, ``es-ES``...), else none."""
    if not tag:
        return None
    normalised = tag.strip().replace("_", "-").lower()
    for locale in Locale:
        if normalised == locale.value.lower():
            return locale
    language = normalised.split("-", 1)[0]
    return {"en": Locale.EN, "pt": Locale.PT_BR, "es": Locale.ES}.get(language)


MAX_ACCEPT_LANGUAGE = 512  # a longer header is read up to here: it cannot make a request expensive


def negotiate(accept_language: str | None) -> Locale | None:
    """The best of our locales for an ``Accept-Language`` header (RFC 9110 12.5.4), or none that fits.

    Ranges are taken by quality (ties keep their order); ``*`` and ranges with ``q=0`` choose nothing.
    """
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language[:MAX_ACCEPT_LANGUAGE].split(",")):
        tag, _, parameters = item.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and 0 < quality <= 1:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        locale = locale_of(tag)
        if locale is not None:
            return locale
    return None


@functools.cache
def babel_locale(locale: Locale | str) -> BabelLocale:
    return BabelLocale.parse(str(locale), sep="-")


@functools.cache
def translations(locale: Locale) -> Translations:
    """Every domain's messages in ``locale``, merged (loaded once per process)."""
    merged = Translations()
    for domain in DOMAINS:
        loaded = Translations.load(LOCALE_DIR, [str(babel_locale(locale))], domain)
        if isinstance(loaded, Translations):
            merged.merge(loaded)
    return merged


def gettext(locale: Locale, message: str) -> str:
    return translations(locale).gettext(message)


class Text:
    """A message in English with named fields, rendered in a locale when it is read.

    ``str(text)`` is the English rendering (logs, the default locale)."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, params: dict[str, Any]) -> None:
        self.template = template
        self.params = params

    def render(self, locale: Locale | None = None) -> str:
        template = gettext(locale, self.template) if locale is not None else self.template
        return template.format(**self.params) if self.params else template

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Text({self.template!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Text):
            return (self.template, self.params) == (other.template, other.params)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.template)


def _(template: str, /, **params: Any) -> Text:
    """A message of the ``errors`` domain: ``template`` with the fields it names (Babel extracts it)."""
    return Text(template, params)


def label(template: str, /, **params: Any) -> Text:
    """A text of the ``labels`` domain (what the API composes for display), as ``_``."""
    return Text(template, params)


def localized(texts: Mapping[str, str], locale: Locale, fallback: str) -> str:
    """A catalog text (``names``, ``descriptions``, ``conditions``: locale -> text) in ``locale``, else in
    English, else ``fallback`` (the ``name``/``description`` column, written in English)."""
    return texts.get(locale.value) or texts.get(DEFAULT_LOCALE.value) or fallback


def render(message: str | Text, locale: Locale | None) -> str:
    return message.render(locale) if isinstance(message, Text) else message


@functools.lru_cache(maxsize=8192)  # Babel takes ~40 µs an amount; prices and totals repeat
def format_money(amount: Decimal, currency: str, locale: Locale) -> str:
    """``R$ 1.234,56`` (pt-BR), ``1.234,56 €`` (es), ``€1,234.56`` (en): CLDR's currency format."""
    return format_currency(amount, currency, locale=babel_locale(locale))


@functools.lru_cache(maxsize=8192)
def format_number(value: int | Decimal, locale: Locale) -> str:
    """``4.000`` (pt-BR, es), ``4,000`` (en)."""
    return format_decimal(value, locale=babel_locale(locale))


@functools.lru_cache(maxsize=1024)
def format_percentage(value: int | Decimal, locale: Locale) -> str:
    """A percentage (``80``) as the locale writes it: ``80%`` (pt-BR, en), ``80 %`` (es)."""
    return format_percent(Decimal(value) / 100, locale=babel_locale(locale))


def format_date(date: dt.date, locale: Locale) -> str:
    """Day, month and year in the locale's own order: ``30/11/2026`` (pt-BR, es), ``11/30/2026`` (en)."""
    return format_skeleton("yMd", date, locale=babel_locale(locale))


def format_long_date(date: dt.date, locale: Locale) -> str:
    """``30 de nov. de 2026`` (pt-BR), ``30 nov 2026`` (es), ``Nov 30, 2026`` (en)."""
    return format_skeleton("yMMMd", date, locale=babel_locale(locale))


def join_list(items: Iterable[str], locale: Locale) -> str:
    """``a, b e c`` (pt-BR), ``a, b y c`` (es), ``a, b, and c`` (en)."""
    return format_list(list(items), locale=babel_locale(locale))
