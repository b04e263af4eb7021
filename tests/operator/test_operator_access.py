"""The operator API's edge: operator keys only, scopes per field, revocation, and a schema of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.auth.operator import OPS_READ, TENANTS_WRITE
from app.models.operators import OperatorKey
from app.schema import schema
from app.seed import SeedResult
from tests.conftest import GraphQLClient
from tests.operator.conftest import OperatorClient

ROOT = Path(__file__).resolve().parents[2]
WHO = "{ operatorKey { name prefix scopes } }"


async def test_an_operator_key_sees_its_own_name_and_scopes(operator: OperatorClient) -> None:
    body = await operator.post(WHO, scopes=(OPS_READ,))
    assert body["data"]["operatorKey"]["scopes"] == [OPS_READ]
    key = await operator.key(OPS_READ)
    assert key.startswith(f"tgo_{body['data']['operatorKey']['prefix']}_")


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "MISSING"),
        ("Bearer tgo_00000000_forged", "OPERATOR_KEY_UNKNOWN"),
        ("Basic YWRtaW46YWRtaW4=", "MALFORMED_HEADER"),
    ],
)
async def test_without_a_valid_operator_key_nothing_runs_not_even_introspection(
    operator: OperatorClient, authorization: str | None, reason: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await operator.http.post(
        "/operator/graphql", json={"query": "{ __schema { types { name } } }"}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": reason}
    assert "data" not in response.json()


async def test_an_environment_key_or_user_token_is_no_operator_key(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    for credential in (demo.connector_keys["acme"], await gql.token_for("admin@acme.test")):
        response = await operator.raw(WHO, key=credential)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["reason"] == "NOT_AN_OPERATOR_KEY"


async def test_an_operator_key_is_refused_on_the_public_endpoint(
    operator: OperatorClient, gql: GraphQLClient
) -> None:
    body = await gql.post("{ viewer { __typename } }", key=await operator.key(OPS_READ))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_field_needs_its_scope(operator: OperatorClient) -> None:
    body = await operator.post("{ auditLog { totalCount } }", scopes=(TENANTS_WRITE,))
    assert body["data"] == {"auditLog": None}
    [error] = body["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN", "requiredScopes": [OPS_READ]}


async def test_a_revoked_key_is_refused_on_its_next_request(operator: OperatorClient) -> None:
    key = await operator.key(OPS_READ)
    assert (await operator.raw(WHO, key=key)).status_code == 200
    await OperatorKey.filter(prefix=key.split("_")[1]).update(revoked_at=operator.clock.now())
    response = await operator.raw(WHO, key=key)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["reason"] == "OPERATOR_KEY_REVOKED"


async def test_only_json_posts(operator: OperatorClient) -> None:
    key = await operator.key(OPS_READ)
    response = await operator.http.post(
        "/operator/graphql",
        content=f"query={WHO}",
        headers={"Authorization": f"Bearer {key}", "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    response = await operator.http.get("/operator/graphql", params={"query": WHO})
    assert response.status_code == 405


def test_partners_never_see_the_operator_api() -> None:
    """No root field of the operator API exists on /graphql, and no type made for it."""
    from app.resolvers.operator.schema import operator_schema

    public, private = schema._schema, operator_schema()._schema
    for root in ("query_type", "mutation_type"):
        operator_root, public_root = getattr(private, root), getattr(public, root)
        if operator_root is not None:
            assert not set(operator_root.fields) & set(public_root.fields)
    assert "OperatorKey" in private.type_map
    assert not {name for name in private.type_map if name.startswith("Operator")} & set(public.type_map)


def test_committed_operator_schema_matches_the_code() -> None:
    from app.resolvers.operator.schema import operator_schema

    assert (ROOT / "operator.graphql").read_text() == operator_schema().as_str() + "\n", (
        "operator.graphql is stale: run `tollgate export-schema --operator > operator.graphql`"
    )
