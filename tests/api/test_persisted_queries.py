"""Automatic persisted queries (by hash), and the allow-list mode for locked-down deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.clock import FrozenClock
from app.edge.persisted_queries import document_hash, load_manifest
from app.main import create_app
from app.seed import SeedResult
from app.settings import Settings

PLANS = "query Plans { plans { code } }"
VIEWER = "query Viewer { viewer { kind } }"


def apq(document: str | None, sha: str) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}}
    if document is not None:
        body["query"] = document
    return body


def code(response: httpx.Response) -> str:
    assert response.status_code == 200
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_automatic_persisted_query_round_trip(client: httpx.AsyncClient, demo: SeedResult) -> None:
    sha = document_hash(PLANS)

    first = await client.post("/graphql", json=apq(None, sha))
    registered = await client.post("/graphql", json=apq(PLANS, sha))
    by_hash = await client.post("/graphql", json=apq(None, sha))

    assert code(first) == "PERSISTED_QUERY_NOT_FOUND"
    assert registered.json() == by_hash.json()
    assert len(by_hash.json()["data"]["plans"]) == 5


async def test_hash_that_does_not_match_the_document(client: httpx.AsyncClient, demo: SeedResult) -> None:
    assert code(await client.post("/graphql", json=apq(PLANS, "0" * 64))) == "PERSISTED_QUERY_HASH_MISMATCH"
    assert code(
        await client.post("/graphql", json={"query": PLANS, "extensions": {"persistedQuery": 1}})
    ) == ("PERSISTED_QUERY_INVALID")


async def test_persisted_queries_work_over_get(client: httpx.AsyncClient, demo: SeedResult) -> None:
    sha = document_hash(PLANS)
    await client.post("/graphql", json=apq(PLANS, sha))
    extensions = orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha}}).decode()

    response = await client.get(
        "/graphql", params={"extensions": extensions}, headers={"Accept": "application/json"}
    )

    assert len(response.json()["data"]["plans"]) == 5


@pytest.fixture
def allowlist_app(tmp_path: Path, settings: Settings, clock: FrozenClock, demo: SeedResult) -> Any:
    manifest = tmp_path / "persisted-queries.json"
    manifest.write_bytes(orjson.dumps({document_hash(PLANS): PLANS}))
    locked = settings.model_copy(update={"persisted_queries_file": manifest, "allowlist_only": True})
    return create_app(locked, clock=clock, manage_orm=False, run_background_tasks=False)


async def test_allow_list_mode_runs_only_listed_documents(allowlist_app: Any) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=allowlist_app), base_url="http://t"
    ) as client:
        by_hash = await client.post("/graphql", json=apq(None, document_hash(PLANS)))
        in_full = await client.post("/graphql", json={"query": PLANS})
        other = await client.post("/graphql", json={"query": VIEWER})
        unknown_hash = await client.post("/graphql", json=apq(None, document_hash(VIEWER)))
        registering = await client.post("/graphql", json=apq(VIEWER, document_hash(VIEWER)))

    assert len(by_hash.json()["data"]["plans"]) == 5
    assert in_full.json() == by_hash.json()
    assert code(other) == "PERSISTED_QUERY_NOT_ALLOWED"
    assert code(unknown_hash) == "PERSISTED_QUERY_NOT_ALLOWED"
    assert code(registering) == "PERSISTED_QUERY_NOT_ALLOWED"  # APQ cannot widen the list


def test_a_manifest_whose_keys_are_not_the_hashes_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.json"
    manifest.write_bytes(orjson.dumps({"0" * 64: PLANS}))
    with pytest.raises(ValueError, match="not the SHA-256"):
        load_manifest(manifest)


def test_allow_list_mode_needs_a_manifest() -> None:
    with pytest.raises(ValueError, match="TOLLGATE_PERSISTED_QUERIES_FILE"):
        Settings(allowlist_only=True)
