"""Types shared by every domain: Money, Limits, billing periods, connections, the ``Locale`` enum; and
``described_enum``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, Self, TypeVar

import strawberry
from graphql import GraphQLError

from app import i18n, money
from app.resolvers.context import Info
from app.resolvers.scalars import Long
from app.services import limits, periods
from app.services.credits import BYTES_PER_MB
from app.services.cursors import Page
from app.services.errors import ErrorCode

E = TypeVar("E", bound=type[Enum])
T = TypeVar("T")


def described_enum(python_enum: E, name: str, description: str, values: Mapping[Any, str]) -> E:
    """``python_enum`` as the GraphQL enum ``name``, with a description for every value (a partner reads
    them in GraphiQL); a value left undescribed is a mistake caught here, at import."""
    graphql_enum = strawberry.enum(python_enum, name=name, description=description)
    missing = [member.name for member in python_enum if member not in values]
    assert not missing, f"{name}: no description for {missing}"
    by_name = {member.name: text for member, text in values.items()}
    for value in graphql_enum.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = by_name[value.name]
    return graphql_enum


LocaleEnum = described_enum(
    i18n.Locale,
    "Locale",
    "A language the API answers in: translated catalog texts, labels, messages and formats (money, dates).",
    {
        i18n.Locale.EN: "English (en), the default.",
        i18n.Locale.PT_BR: "Brazilian Portuguese (pt-BR).",
        i18n.Locale.ES: "Spanish (es).",
    },
)


@strawberry.type(description="An amount in a currency; `amount` travels as a decimal string, never a float.")
class Money:
    amount: Decimal = strawberry.field(description='The amount, with the currency\'s decimals: "29.90".')
    currency: str = strawberry.field(description='ISO 4217 code: "EUR", "BRL".')

    @strawberry.field(
        description="The amount formatted for display in the caller's language (`viewer.locale`): "
        '"R$ 1.234,56" (pt-BR), "1.234,56 €" (es), "€1,234.56" (en).'
    )
    async def formatted(self, info: Info) -> str:
        return i18n.format_money(self.amount, self.currency, await info.context.locale())

    @classmethod
    def of(cls, value: money.Money) -> Money:
        return cls(amount=value.amount, currency=value.currency)


@strawberry.type(description="Limits of an environment, or what an add-on adds to them.")
class Limits:
    storage_bytes: Long = strawberry.field(description="Storage in bytes (a plan includes 10 GiB).")
    users: int = strawberry.field(description="User accounts.")
    integrations: int = strawberry.field(description="Integrations in use at once.")
    credits: int = strawberry.field(
        description="Credits: variants, customers, contacts, sales reps and admins."
    )

    @classmethod
    def of(cls, value: limits.Limits) -> Limits:
        return cls(
            storage_bytes=Long(value.storage_mb * BYTES_PER_MB),
            users=value.users,
            integrations=value.integrations,
            credits=value.credits,
        )


@strawberry.type(
    description='A billing period, named after the month it starts in ("2026-11"); it starts on the '
    "environment's billing anchor day."
)
class BillingPeriod:
    name: str = strawberry.field(description='"2026-11": the year and month the period starts in.')
    start: dt.date = strawberry.field(description="Its first day.")
    end: dt.date = strawberry.field(description="The first day after the period (exclusive).")

    @classmethod
    def of(cls, value: periods.BillingPeriod) -> BillingPeriod:
        return cls(name=value.name, start=value.start, end=value.end)


# --- Connections (the Relay cursor connection spec) -----------------------------------------------------

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
PAGE_SIZE_HELP = f"At most this many items ({DEFAULT_PAGE_SIZE} by default, {MAX_PAGE_SIZE} at most)."
AFTER_HELP = "Items after this cursor (an `endCursor` or an edge's `cursor` from this list)."


def page_size(first: int | None) -> int:
    """The page size a connection field serves; outside 1..MAX_PAGE_SIZE is the caller's mistake."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise bad_argument(f"first is between 1 and {MAX_PAGE_SIZE}.", argument="first")
    return size


def bad_argument(message: str, *, argument: str) -> GraphQLError:
    """An argument out of its documented range (a page size, a cursor): a top-level ``BAD_USER_INPUT``
    error, like a value that does not fit its type."""
    return GraphQLError(message, extensions={"code": ErrorCode.BAD_USER_INPUT, "field": argument})


@strawberry.type(description="Where a page stands in its list (the Relay cursor connection spec).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether items follow this page.")
    has_previous_page: bool = strawberry.field(description="Whether items precede this page.")
    start_cursor: str | None = strawberry.field(description="The first item's cursor; null: empty page.")
    end_cursor: str | None = strawberry.field(
        description="The last item's cursor: pass it as `after` for the next page; null: empty page."
    )


@strawberry.type(description="An item of a list with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Pass as `after` to continue after this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list, with its cursors and the length of the whole list.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of the page with their cursors.")
    nodes: list[T] = strawberry.field(description="The items of the page (the edges' nodes).")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")
    total_count: int = strawberry.field(description="Items in the whole list, every page.")

    @classmethod
    def from_page(cls, page: Page[Any], node: Callable[[Any], T], *, after: str | None) -> Self:
        """The connection of a service's page, each item made a node by ``node``."""
        edges = [Edge(cursor=cursor, node=node(item)) for cursor, item in page.items]
        return cls(
            edges=edges,
            nodes=[edge.node for edge in edges],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count,
        )
