"""Unexpected exceptions are masked (with a request id); typed errors and GraphQL's own pass through."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import strawberry
from strawberry.tools import merge_types

from app.clock import FrozenClock
from app.main import create_app
from app.resolvers.permissions import allow
from app.schema import Query, build_schema
from app.seed import SeedResult
from app.services.errors import NotFound
from app.settings import Settings

INTERNAL_DETAIL = "database password is hunter2"


@strawberry.type
class Faulty:
    @strawberry.field
    def boom(self) -> str:
        raise RuntimeError(INTERNAL_DETAIL)

    @strawberry.field(extensions=allow())
    def users_only(self) -> str:
        return "hello"

    @strawberry.field
    def typed_failure(self) -> str:
        # A typed failure no result union lists travels as a top-level error with its code.
        raise NotFound("Nothing is called that.", field="name")


async def post(app: Any, query: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        return await http.post("/graphql", json={"query": query}, headers=headers or {})


async def test_unexpected_errors_are_masked_under_concurrency(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    schema = build_schema(query=merge_types("Query", (Query, Faulty)))
    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False, schema=schema)

    responses = await asyncio.gather(*(post(app, "{ boom }") for _ in range(300)))

    for response in responses:
        assert INTERNAL_DETAIL not in response.text
        error = response.json()["errors"][0]
        assert error["message"] == "Unexpected error."
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert len({response.headers["x-request-id"] for response in responses}) == 300


async def test_typed_permission_and_validation_errors_are_not_masked(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    schema = build_schema(query=merge_types("Query", (Query, Faulty)))
    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False, schema=schema)
    key = demo.connector_keys["acme"]

    # English asked for: acme reads Spanish by default (docs/locales.md).
    english = {"Authorization": f"Bearer {key}", "Accept-Language": "en"}
    forbidden = (await post(app, "{ usersOnly }", english)).json()
    invalid = (await post(app, "{ noSuchField }")).json()
    not_found = (await post(app, "{ typedFailure }")).json()

    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "users of the back office" in forbidden["errors"][0]["message"]
    assert "noSuchField" in invalid["errors"][0]["message"]
    assert not_found["errors"][0]["message"] == "Nothing is called that."
    assert not_found["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "name"}


async def test_a_sane_caller_request_id_is_kept(client: httpx.AsyncClient) -> None:
    kept = await client.get("/healthz", headers={"X-Request-ID": "connector-42.retry-1"})
    replaced = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces;drop"})

    assert kept.headers["x-request-id"] == "connector-42.retry-1"
    assert len(replaced.headers["x-request-id"]) == 32
