"""Hostile documents meet a clear GraphQL error before any resolver runs (issue 6, query limits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.clock import FrozenClock
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import client_for, production_changes


async def post(client: httpx.AsyncClient, query: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query})
    body: dict[str, Any] = response.json()
    return body


def messages(body: dict[str, Any]) -> str:
    return " ".join(error["message"] for error in body.get("errors", []))


async def test_a_document_deeper_than_the_limit_is_refused(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    # The schema has no cycles, so the default limit (10) is met by no real query: prove the rule at 2.
    async with client_for(settings, clock, max_query_depth=2) as shallow:
        allowed = await post(shallow, "{ plans { limits { storageBytes } } }")
        refused = await post(shallow, "query Deep { myPlan { ... on MyPlan { plan { limits { users } } } } }")

    assert "errors" not in allowed
    assert "'Deep' exceeds maximum operation depth of 2" in messages(refused)
    assert refused.get("data") is None


async def test_too_many_aliases_are_refused(client: httpx.AsyncClient, demo: SeedResult) -> None:
    aliased = " ".join(f"p{index}: plans {{ code }}" for index in range(21))

    body = await post(client, f"{{ {aliased} }}")

    assert "aliases" in messages(body).lower()
    assert body.get("data") is None


async def test_a_document_over_the_token_limit_is_refused(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    huge = "{ plans { " + " ".join(["code"] * 3_000) + " } }"

    body = await post(client, huge)

    assert "token" in messages(body).lower()


@pytest.fixture
async def production_client(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> AsyncIterator[httpx.AsyncClient]:
    production = production_changes()
    async with client_for(settings, clock, **production, introspection=False) as client:
        yield client


async def test_production_gives_no_field_suggestions(
    client: httpx.AsyncClient, production_client: httpx.AsyncClient
) -> None:
    development = await post(client, "{ plans { cod } }")
    production = await post(production_client, "{ plans { cod } }")

    assert "Did you mean" in messages(development)
    assert "Cannot query field 'cod'" in messages(production)
    assert "Did you mean" not in messages(production)


async def test_introspection_can_be_switched_off(
    client: httpx.AsyncClient, production_client: httpx.AsyncClient
) -> None:
    query = "{ __schema { queryType { name } } }"

    assert (await post(client, query))["data"]["__schema"]["queryType"]["name"] == "Query"
    refused = await post(production_client, query)
    assert "introspection" in messages(refused).lower()
    assert refused.get("data") is None
