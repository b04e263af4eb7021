"""Money: ``Decimal`` amounts with a currency, rounded half-up to the currency's minor unit."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units of the currencies Tollgate sells in.
MINOR_UNITS: dict[str, int] = {"EUR": 2, "BRL": 2, "USD": 2, "GBP": 2, "CLP": 0, "JPY": 0}


class UnsupportedCurrencyError(ValueError):
    pass


def minor_unit(currency: str) -> Decimal:
    try:
        return Decimal(1).scaleb(-MINOR_UNITS[currency])
    except KeyError:
        raise UnsupportedCurrencyError(f"unsupported currency {currency!r}") from None


def round_amount(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: Decimal | str | int, currency: str) -> Money:
        """Money rounded to the currency's minor unit: the one place where rounding happens."""
        return cls(round_amount(Decimal(amount), currency), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls.of(0, currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def times(self, factor: Decimal | int) -> Money:
        """Multiply and round: a line amount (unit price x quantity, or a prorated share)."""
        return Money.of(self.amount * Decimal(factor), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def price_in(prices: dict[str, str], currency: str) -> Money:
    """The catalog price of an item in ``currency`` (catalog prices are maps currency -> decimal string)."""
    try:
        return Money.of(Decimal(prices[currency]), currency)
    except KeyError:
        raise UnsupportedCurrencyError(f"no price in {currency}") from None
