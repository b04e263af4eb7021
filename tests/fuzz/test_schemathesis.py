"""Schemathesis generates GraphQL operations from the schema and fires them at a running gateway (issue 6).

Every query and mutation is called with valid credentials (an admin token and a connector key, in turn) and
arbitrary arguments. Typed errors and validation errors are fine answers; what must never happen is a 5xx, a
masked "Unexpected error." (a resolver that crashed), or another caller's data. Hostile strings in every text
and JSON argument, for every kind of caller and on PostgreSQL too, are tests/fuzz/test_hostile_strings.py's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graphql
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live import LiveGateway, gateway_env, live_gateway

EXAMPLES_PER_OPERATION = int(os.environ.get("TOLLGATE_FUZZ_EXAMPLES", "40"))


def json_objects() -> st.SearchStrategy[graphql.ObjectValueNode]:
    """Our JSON scalar (integration settings): objects of short keys and scalar values."""
    nodes = schemathesis.graphql.nodes
    values = st.one_of(
        st.text(max_size=30).map(nodes.String),
        st.integers(-(2**31), 2**31 - 1).map(nodes.Int),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    )
    keys = st.sampled_from(["url", "token", "client_id", "client_secret", "api_key", "shop", "x"])
    fields = st.dictionaries(keys, values, max_size=5).map(
        lambda pairs: [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=value)
            for key, value in pairs.items()
        ]
    )
    return fields.map(nodes.Object)


schemathesis.graphql.scalar("JSON", json_objects())


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    with live_gateway(
        gateway_env(tmp_path, TOLLGATE_RATE_LIMIT_PER_SECOND="0"), tmp_path / "gateway.log"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def credentials(gateway: LiveGateway) -> list[dict[str, str]]:
    return [
        {"Authorization": f"Bearer {gateway.token('admin@nova.test')}"},
        {"Authorization": f"Bearer {gateway.connector_key('nova')}"},
    ]


@pytest.fixture(scope="module")
def graphql_schema(gateway: LiveGateway) -> Any:
    return schemathesis.graphql.from_url(f"{gateway.url}/graphql")


def test_no_operation_crashes_the_server(
    graphql_schema: Any, credentials: list[dict[str, str]], gateway: LiveGateway
) -> None:
    cases: dict[str, int] = {}
    operations = [result.ok() for result in graphql_schema.get_all_operations()]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: Any) -> None:
            for headers in credentials:
                response = case.call(headers=headers)
                cases[case.operation.label] = cases.get(case.operation.label, 0) + 1
                assert_no_crash(case, response, gateway)

        fuzz()

    total = sum(cases.values())
    print(f"\nschemathesis: {total} cases over {len(cases)} operations: {sorted(cases)}")
    assert {operation.label for operation in operations} == set(cases)
    assert total >= 1_000


def assert_no_crash(case: Any, response: Any, gateway: LiveGateway) -> None:
    assert response.status_code < 500, response.text
    for error in response.json().get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code != "INTERNAL_SERVER_ERROR", f"{case.body}\n-> {error}\n{tail(gateway.log)}"
        assert error["message"] != "Unexpected error.", f"{case.body}\n-> {error}"


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text().splitlines()[-lines:])
