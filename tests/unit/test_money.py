from decimal import Decimal

import pytest

from app.money import Money, UnsupportedCurrencyError, price_in, round_amount


def test_rounding_is_half_up_to_the_minor_unit() -> None:
    assert round_amount(Decimal("2.345"), "EUR") == Decimal("2.35")
    assert round_amount(Decimal("2.344"), "EUR") == Decimal("2.34")
    assert round_amount(Decimal("-2.345"), "BRL") == Decimal("-2.35")
    assert round_amount(Decimal("1234.5"), "CLP") == Decimal("1235")


def test_line_amounts_round_once() -> None:
    assert Money.of("9.90", "EUR").times(Decimal(7) / Decimal(30)) == Money(Decimal("2.31"), "EUR")


def test_currencies_do_not_mix() -> None:
    with pytest.raises(ValueError, match="cannot combine"):
        Money.of("1", "EUR") + Money.of("1", "BRL")


def test_catalog_prices() -> None:
    assert price_in({"EUR": "29.9"}, "EUR") == Money(Decimal("29.90"), "EUR")
    with pytest.raises(UnsupportedCurrencyError):
        price_in({"EUR": "29.90"}, "BRL")
