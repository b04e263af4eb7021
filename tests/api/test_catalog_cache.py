"""The public catalog's answers are reused for a while, per currency, and only they
(app.edge.response_cache)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.catalog import AddOn, Plan
from app.seed import SeedResult
from app.services import catalog as catalog_service
from app.settings import Settings
from tests.conftest import GraphQLClient, client_for, count_queries

CATALOG = (
    "query Catalog { plans { code price { amount currency } } addOns { code price { amount currency } } }"
)


@pytest.fixture
async def cached(settings: Settings, clock: FrozenClock, demo: SeedResult) -> AsyncIterator[GraphQLClient]:
    async with client_for(settings, clock, catalog_cache_seconds=0.3) as http:
        yield GraphQLClient(http, settings, clock)


def price_of(body: dict[str, Any], code: str) -> dict[str, str]:
    price: dict[str, str] = next(a for a in body["data"]["addOns"] if a["code"] == code)["price"]
    return price


async def test_a_repeated_catalog_query_costs_no_query_until_it_expires(cached: GraphQLClient) -> None:
    first = await cached.post(CATALOG)
    await AddOn.filter(code="users-1").update(prices={"EUR": "5.90", "BRL": "29.90"})

    with count_queries() as queries:
        again = await cached.post(CATALOG)
    await asyncio.sleep(0.35)
    later = await cached.post(CATALOG)

    assert queries.count == 0
    assert again == first
    assert price_of(first, "users-1") == {"amount": "4.90", "currency": "EUR"}
    assert price_of(later, "users-1") == {"amount": "5.90", "currency": "EUR"}


async def test_each_currency_has_its_own_answer(cached: GraphQLClient) -> None:
    anonymous = await cached.post(CATALOG)
    nova = await cached.post(CATALOG, as_="admin@nova.test")  # a BRL environment
    acme = await cached.post(CATALOG, as_="admin@acme.test")  # EUR

    assert price_of(anonymous, "users-1")["currency"] == "EUR"
    assert price_of(nova, "users-1") == {"amount": "24.90", "currency": "BRL"}
    # The same answer but for the Start Pack, sold per ERP: quote-only (no price) for acme's ERP.
    assert price_of(acme, "start-pack") is None
    assert price_of(anonymous, "start-pack") == {"amount": "490.00", "currency": "EUR"}
    without_start_pack = [a for a in anonymous["data"]["addOns"] if a["code"] != "start-pack"]
    assert [a for a in acme["data"]["addOns"] if a["code"] != "start-pack"] == without_start_pack
    assert acme["data"]["plans"] == anonymous["data"]["plans"]


async def test_documents_that_are_not_only_the_catalog_are_never_reused(cached: GraphQLClient) -> None:
    mixed = "query Mixed { plans { code } viewer { tenant { slug } } }"
    assert (await cached.post(mixed, as_="admin@acme.test"))["data"]["viewer"]["tenant"]["slug"] == "acme"

    nova = await cached.post(mixed, as_="admin@nova.test")

    assert nova["data"]["viewer"]["tenant"]["slug"] == "nova"


async def test_an_unknown_code_is_an_answer_reused_until_it_expires(cached: GraphQLClient) -> None:
    query = "query One($code: String!) { addOn(code: $code) { code } }"
    missing = await cached.post(query, {"code": "soon"})
    await AddOn.create(code="soon", name="Soon", category="REPORTS", prices={"EUR": "1.00"})

    again = await cached.post(query, {"code": "soon"})
    await asyncio.sleep(0.35)
    found = await cached.post(query, {"code": "soon"})

    assert missing == again == {"data": {"addOn": None}}
    assert found == {"data": {"addOn": {"code": "soon"}}}


async def test_errors_are_not_reused(cached: GraphQLClient, monkeypatch: pytest.MonkeyPatch) -> None:
    query = "query Plans { plans { code } }"
    working = catalog_service.list_plans

    async def failing() -> list[Plan]:
        raise RuntimeError("the database is down")

    monkeypatch.setattr(catalog_service, "list_plans", failing)
    failed = await cached.post(query)
    monkeypatch.setattr(catalog_service, "list_plans", working)
    recovered = await cached.post(query)

    assert failed["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert recovered["data"]["plans"]
