"""The custom scalars and their wire formats: ``Long``, and ``DateTime``, ``Date`` and ``Decimal`` described
with ``@specifiedBy`` (issue 12). ``SCALAR_MAP`` gives them to the schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, NewType

import strawberry
from graphql import GraphQLError
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition, DecimalDefinition
from strawberry.types.scalar import ScalarDefinition

from app.services.errors import shown

Long = NewType("Long", int)

# The largest whole number a JavaScript Number holds exactly (Number.MAX_SAFE_INTEGER).
JAVASCRIPT_SAFE = 2**53 - 1


def _parse_long(value: Any) -> int:
    # A JSON integer only: not "12", 1.5, 1e3 (a float to JSON) or true; and within 64 bits (issue 11).
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        # A GraphQLError: the caller's mistake, reported as such in literals too (a ValueError is masked).
        raise GraphQLError("Long is a whole number between -2^63 and 2^63 - 1, as a JSON integer.")
    return value


LONG = strawberry.scalar(
    name="Long",
    description="A whole number up to 64 bits, as a JSON number (byte counts, large counters). JavaScript "
    f"reads it exactly up to 2^53 - 1 ({JAVASCRIPT_SAFE:,}, Number.MAX_SAFE_INTEGER): byte counts, the "
    "largest values here, stay far below that (8 PiB).",
    serialize=int,
    parse_value=_parse_long,
)

# The earliest and latest instants a DateTime argument may name: billing arithmetic (a month back, a
# period ahead) stays within what a datetime can hold.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9998, 12, 31, tzinfo=dt.UTC)


def parse_datetime(value: object) -> dt.datetime:
    """Strawberry's ISO 8601 parsing (ASCII digits only), then in UTC (no offset: UTC, as documented)
    and within 1970..9998: "0001-01-01T00:00:00+01:00" would overflow on conversion (issue 11)."""
    parsed = DateTimeDefinition.parse_value(value)  # type: ignore[misc]
    assert isinstance(parsed, dt.datetime)
    try:
        instant = parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise GraphQLError(f"DateTime {shown(value)} is out of range: between 1970 and 9998 only.")
    return instant


DATETIME = ScalarDefinition(
    name=DateTimeDefinition.name,
    description='An instant, as an RFC 3339 string in UTC: "2026-11-30T14:05:00+00:00". An input without '
    "an offset is read as UTC; inputs are accepted between 1970 and 9998.",
    specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339#section-5.6",
    serialize=DateTimeDefinition.serialize,
    parse_value=parse_datetime,
    parse_literal=None,
    origin=dt.datetime,
)

DATE = ScalarDefinition(
    name=DateDefinition.name,
    description='A calendar day, as an RFC 3339 full-date string: "2026-11-30".',
    specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339#section-5.6",
    serialize=DateDefinition.serialize,
    parse_value=DateDefinition.parse_value,
    parse_literal=None,
    origin=dt.date,
)

DECIMAL = ScalarDefinition(
    name=DecimalDefinition.name,
    description='An exact decimal number, as a JSON string: "29.90", "-5.00", "12.5". Digits with an '
    "optional minus and decimal point, no exponent (JSON's number grammar, quoted). Money amounts carry "
    "their currency's decimals (two); read them with a decimal type, never a binary float.",
    specified_by_url="https://ecma-international.org/publications-and-standards/standards/ecma-404/",
    serialize=DecimalDefinition.serialize,
    parse_value=DecimalDefinition.parse_value,
    parse_literal=None,
    origin=Decimal,
)

# The schema's custom scalars (NewType or Python type -> definition).
SCALAR_MAP: dict[object, Any] = {Long: LONG, dt.datetime: DATETIME, dt.date: DATE, Decimal: DECIMAL}
