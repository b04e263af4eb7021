"""``orders`` over GraphQL: every checkout of the caller's environment, newest first, by page, with its
lines, coupon, totals and who placed it; admins of eligible environments only; in a fixed number of
statements whatever the page's length."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from app.clock import FrozenClock
from app.models.store import Order, OrderLine
from app.models.tenancy import User
from app.seed import SeedResult
from tests.api.test_checkout import checkout
from tests.api.test_store import ADMIN, add, apply, eur
from tests.conftest import GraphQLClient, count_queries

MONEY = "{ amount currency }"
ORDERS = f"""
query($first: Int, $after: String) {{
  orders(first: $first, after: $after) {{
    __typename
    ... on Error {{ code message field }}
    ... on OrderConnection {{
      totalCount
      pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
      edges {{ cursor node {{ id }} }}
      nodes {{
        id idempotencyKey createdAt currency period {{ name start end }}
        placedBy {{ id name email }}
        coupon {{ code kind percentOff amountOff {MONEY} duration durationMonths }}
        subtotal {MONEY} discount {MONEY} total {MONEY} monthlyIncrease {MONEY}
        dueOnNextInvoice {MONEY} oneOffTotal {MONEY}
        lines {{
          addOnCode name cadence quantity activeAddOn {{ id addOn {{ code }} }}
          unitPrice {MONEY} lineTotal {MONEY} amountDue {MONEY} discount {MONEY} total {MONEY}
        }}
      }}
    }}
  }}
}}
"""


async def orders(gql: GraphQLClient, *, as_: str = ADMIN, **variables: Any) -> dict[str, Any]:
    body = await gql.post(ORDERS, variables, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["orders"]
    return result


async def two_checkouts(gql: GraphQLClient, clock: FrozenClock) -> tuple[dict[str, Any], dict[str, Any]]:
    """First users-1 x 2 with WELCOME10, a minute later storage-500mb without a coupon."""
    await add(gql, "users-1", 2)
    await apply(gql, "WELCOME10")
    first = await checkout(gql, "first")
    assert first["__typename"] == "CheckoutSuccess", first
    clock.advance(dt.timedelta(minutes=1))
    assert (await add(gql, "storage-500mb"))["__typename"] == "AddToCartSuccess"
    second = await checkout(gql, "second")
    assert second["__typename"] == "CheckoutSuccess", second
    return first["order"], second["order"]


async def test_orders_newest_first_with_lines_coupon_totals_and_placer(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    first, second = await two_checkouts(gql, clock)

    result = await orders(gql)

    assert result["__typename"] == "OrderConnection"
    assert result["totalCount"] == 2
    newest, oldest = result["nodes"]
    assert [newest["id"], oldest["id"]] == [second["id"], first["id"]]
    assert newest["createdAt"] > oldest["createdAt"]
    admin = await User.get(email=ADMIN)
    assert oldest["placedBy"] == {"id": oldest["placedBy"]["id"], "name": admin.name, "email": ADMIN}
    assert oldest["currency"] == "EUR"
    assert oldest["period"] == {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"}
    assert oldest["coupon"] == {
        "code": "WELCOME10",
        "kind": "PERCENT",
        "percentOff": "10.00",
        "amountOff": None,
        "duration": "REPEATING",
        "durationMonths": 3,
    }
    assert newest["coupon"] is None
    # The figures are the ones checkout answered with.
    for listed, placed in ((oldest, first), (newest, second)):
        for name in ("subtotal", "discount", "total", "monthlyIncrease", "dueOnNextInvoice", "oneOffTotal"):
            assert listed[name] == placed[name], name
        assert [line["addOnCode"] for line in listed["lines"]] == [
            line["addOnCode"] for line in placed["lines"]
        ]
    (line,) = oldest["lines"]
    assert (line["addOnCode"], line["cadence"], line["quantity"]) == ("users-1", "MONTHLY", 2)
    assert line["unitPrice"] == eur("4.90")
    assert line["lineTotal"] == eur("9.80")
    assert line["activeAddOn"]["addOn"] == {"code": "users-1"}
    assert newest["lines"][0]["addOnCode"] == "storage-500mb"
    assert newest["monthlyIncrease"] == eur("1.50")


async def test_paging_with_after(gql: GraphQLClient, demo: SeedResult, clock: FrozenClock) -> None:
    first, second = await two_checkouts(gql, clock)

    page = await orders(gql, first=1)
    assert [node["id"] for node in page["nodes"]] == [second["id"]]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["hasPreviousPage"] is False
    assert page["totalCount"] == 2

    rest = await orders(gql, first=1, after=page["pageInfo"]["endCursor"])
    assert [node["id"] for node in rest["nodes"]] == [first["id"]]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["hasPreviousPage"] is True


async def test_bad_page_arguments_are_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    for variables in ({"first": 0}, {"first": 101}, {"after": "bm90LWEtY3Vyc29y"}, {"after": "x" * 10_000}):
        body = await gql.post(ORDERS, variables, as_=ADMIN)
        assert body["data"]["orders"] is None
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", variables


async def test_a_deleted_placer_is_null(gql: GraphQLClient, demo: SeedResult, clock: FrozenClock) -> None:
    first, _ = await two_checkouts(gql, clock)

    await Order.filter(id=uuid.UUID(await _key(first["id"]))).update(user_id=None)  # as ON DELETE SET NULL

    listed = {node["id"]: node for node in (await orders(gql))["nodes"]}
    assert listed[first["id"]]["placedBy"] is None
    assert listed[first["id"]]["lines"]


async def _key(global_id: str) -> str:
    from app.resolvers.ids import key_of

    return str(key_of(global_id, "Order", field="id"))


async def test_members_are_refused_and_other_tenants_see_nothing(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await two_checkouts(gql, clock)

    member = await orders(gql, as_="member@acme.test")
    assert (member["__typename"], member["code"]) == ("NotAdminError", "NOT_ADMIN")
    nova = await orders(gql, as_="admin@nova.test")
    assert (nova["totalCount"], nova["nodes"]) == (0, [])
    legacy = await orders(gql, as_="admin@legacy.test")  # created before the store opened
    assert legacy["code"] == "NOT_ELIGIBLE"
    anonymous = await gql.post(ORDERS, {})
    assert anonymous["data"]["orders"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def copies(order_id: str, how_many: int, clock: FrozenClock) -> None:
    """``how_many`` more orders like this one (same lines), a second apart."""
    order = await Order.get(id=order_id)
    lines = await OrderLine.filter(order_id=order_id)
    for n in range(how_many):
        copy = await Order.create(
            **{
                name: getattr(order, name)
                for name in order._meta.db_fields
                if name not in {"id", "idempotency_key", "created_at"}
            },
            id=uuid.uuid4(),
            idempotency_key=f"copy-{n}",
            created_at=clock.now() + dt.timedelta(seconds=n + 1),
        )
        for line in lines:
            await OrderLine.create(
                **{
                    name: getattr(line, name)
                    for name in line._meta.db_fields
                    if name not in {"id", "order_id"}
                },
                id=uuid.uuid4(),
                order_id=copy.id,
            )


async def test_a_page_of_twenty_costs_the_statements_of_a_page_of_one(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    first, _ = await two_checkouts(gql, clock)
    await orders(gql, first=1)  # credentials verified and cached, as for any later request
    with count_queries() as one:
        page = await orders(gql, first=1)
    assert len(page["nodes"]) == 1

    await copies(await _key(first["id"]), 19, clock)
    with count_queries() as twenty:
        page = await orders(gql, first=20)

    assert len(page["nodes"]) == 20
    assert all(node["placedBy"]["email"] == ADMIN and node["lines"] for node in page["nodes"])
    assert twenty.count == one.count
    assert one.count <= 6
