"""Fixtures of the operator API's tests: operator keys, and a client that posts to ``/operator/graphql``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.auth.operator import OPERATOR_SCOPES, create_operator_key
from app.clock import FrozenClock


@dataclass
class OperatorClient:
    """Posts to the operator API with a key of the given scopes (every scope by default)."""

    http: httpx.AsyncClient
    clock: FrozenClock
    keys: dict[frozenset[str], str] = field(default_factory=dict)

    async def key(self, *scopes: str) -> str:
        wanted = frozenset(scopes or OPERATOR_SCOPES)
        if wanted not in self.keys:
            _, self.keys[wanted] = await create_operator_key(
                name=f"test {','.join(sorted(wanted))}", scopes=sorted(wanted), now=self.clock.now()
            )
        return self.keys[wanted]

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return await self.http.post(
            "/operator/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, scopes: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        response = await self.raw(query, variables, key=await self.key(*scopes))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def operator(client: httpx.AsyncClient, clock: FrozenClock) -> OperatorClient:
    return OperatorClient(client, clock)
