"""The language core (app.i18n): which locale a tag or a header names, and the formats of each locale."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.i18n import (
    MAX_ACCEPT_LANGUAGE,
    Locale,
    format_date,
    format_long_date,
    format_money,
    join_list,
    label,
    locale_of,
    localized,
    negotiate,
)

NBSP = "\xa0"  # CLDR separates the currency sign from the amount with a no-break space


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("en", Locale.EN),
        ("en-GB", Locale.EN),
        ("pt-BR", Locale.PT_BR),
        ("pt_br", Locale.PT_BR),
        ("PT-br", Locale.PT_BR),
        ("pt", Locale.PT_BR),
        ("pt-PT", Locale.PT_BR),
        ("es", Locale.ES),
        ("es-ES", Locale.ES),
        (" es-419 ", Locale.ES),
        ("fr", None),
        ("", None),
        (None, None),
        ("zz-ZZ-x-private", None),
    ],
)
def test_locale_of_reads_stored_and_claimed_tags(tag: str | None, locale: Locale | None) -> None:
    assert locale_of(tag) == locale


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("pt-BR,pt;q=0.9,en;q=0.8", Locale.PT_BR),
        ("fr-CH, fr;q=0.9, es;q=0.8, *;q=0.5", Locale.ES),  # the first range we speak, by quality
        ("en;q=0.5, es;q=0.9", Locale.ES),
        ("es;q=0.5, pt;q=0.5", Locale.ES),  # a tie keeps the header's order
        ("en;q=0, es;q=0.1", Locale.ES),  # q=0 means "not this one"
        ("*", None),
        ("fr, de", None),
        ("es;q=abc, pt-BR", Locale.PT_BR),  # a quality that is no number counts as none
        ("es;q=2", None),  # above 1: out of range
        ("", None),
        (None, None),
    ],
)
def test_negotiate_picks_the_best_of_our_locales(header: str | None, locale: Locale | None) -> None:
    assert negotiate(header) == locale


def test_negotiate_reads_a_hostile_header_only_up_to_its_bound() -> None:
    assert negotiate("x" * 10_000) is None
    assert negotiate(",;=" * 5000) is None
    assert negotiate("fr," * (MAX_ACCEPT_LANGUAGE // 3 + 1) + "es") is None  # past the bound: not read
    assert negotiate("es," + "fr," * 5000) == Locale.ES


def test_money_is_formatted_per_locale() -> None:
    amount = Decimal("1234.56")
    assert format_money(amount, "BRL", Locale.PT_BR) == f"R${NBSP}1.234,56"
    assert format_money(amount, "EUR", Locale.ES) == f"1.234,56{NBSP}€"
    assert format_money(amount, "EUR", Locale.EN) == "€1,234.56"
    assert format_money(Decimal("7.90"), "BRL", Locale.PT_BR) == f"R${NBSP}7,90"


def test_dates_are_formatted_per_locale() -> None:
    day = dt.date(2026, 11, 30)
    assert format_date(day, Locale.PT_BR) == "30/11/2026"
    assert format_date(day, Locale.ES) == "30/11/2026"
    assert format_date(day, Locale.EN) == "11/30/2026"
    assert format_long_date(day, Locale.EN) == "Nov 30, 2026"


def test_lists_are_joined_per_locale() -> None:
    assert join_list(["a", "b", "c"], Locale.EN) == "a, b, and c"
    assert join_list(["a", "b", "c"], Locale.PT_BR) == "a, b e c"
    assert join_list(["a", "b"], Locale.ES) == "a y b"
    assert join_list(["a"], Locale.ES) == "a"


def test_labels_are_translated_with_their_fields() -> None:
    assert label("FREE").render(Locale.PT_BR) == "GRÁTIS"
    assert label("FREE").render(Locale.ES) == "GRATIS"
    assert label("FREE").render(Locale.EN) == "FREE"
    assert label("{price}/month", price="R$ 7,90").render(Locale.PT_BR) == "R$ 7,90/mês"
    assert label("{price} once", price="490,00 €").render(Locale.ES) == "490,00 € (pago único)"
    assert str(label("{price}/month", price="€7.90")) == "€7.90/month"


def test_catalog_texts_fall_back_to_english_then_to_the_column() -> None:
    texts = {"en": "Reports", "pt-BR": "Relatórios"}
    assert localized(texts, Locale.PT_BR, "column") == "Relatórios"
    assert localized(texts, Locale.ES, "column") == "Reports"
    assert localized({}, Locale.ES, "column") == "column"
