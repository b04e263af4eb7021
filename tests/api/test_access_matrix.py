"""Every foundation query, for each kind of caller: anonymous, admin, member, connector key, partner key."""

from __future__ import annotations

import pytest

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.models.tenancy import ApiKey, Tenant
from app.seed import SeedResult
from tests.conftest import GraphQLClient

QUERY = """
query Everything($code: String!) {
  plans { code }
  addOns { code }
  addOn(code: $code) { code }
  viewer { kind tenant { slug } }
  myPlan { __typename ... on Error { code } }
}
"""

CATALOG = "query Catalog($code: String!) { plans { code } addOns { code } addOn(code: $code) { code } }"

# caller -> (viewer kind, myPlan answer); None = UNAUTHENTICATED GraphQL error on that field.
EXPECTED = {
    "anonymous": (None, None),
    "admin": ("USER", "MyPlan"),
    "member": ("USER", "NOT_ADMIN"),
    "legacy-admin": ("USER", "NOT_ELIGIBLE"),
    "connector": ("API_KEY", "NOT_ADMIN"),
    "partner": ("API_KEY", "NOT_ADMIN"),
}


async def credentials(caller: str, gql: GraphQLClient, demo: SeedResult) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller in ("admin", "member"):
        return {"as_": f"{caller}@nova.test"}
    if caller == "legacy-admin":
        return {"as_": "admin@legacy.test"}
    if caller == "connector":
        return {"key": demo.connector_keys["nova"]}
    key = generate_api_key()
    await ApiKey.create(
        tenant=await Tenant.get(slug="nova"),
        name="partner",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=list(scopes.PARTNER_SCOPES),
    )
    return {"key": key.plaintext}


@pytest.mark.parametrize("caller", list(EXPECTED))
async def test_each_caller_gets_the_catalog_and_only_what_it_may_see(
    caller: str, gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await gql.post(QUERY, {"code": "start-pack"}, **await credentials(caller, gql, demo))
    viewer_kind, my_plan = EXPECTED[caller]

    if viewer_kind is None:
        # viewer and myPlan are non-null, so their errors null the whole answer (GraphQL's rule)...
        assert body["data"] is None
        assert {error["extensions"]["code"] for error in body["errors"]} == {"UNAUTHENTICATED"}
        # ...while the public catalog alone answers anyone.
        body = await gql.post(CATALOG, {"code": "start-pack"})
    data = body["data"]
    assert len(data["plans"]) == 5
    assert len(data["addOns"]) == 15
    assert data["addOn"] == {"code": "start-pack"}
    if viewer_kind is None:
        return
    assert "errors" not in body
    assert data["viewer"]["kind"] == viewer_kind
    assert data["viewer"]["tenant"]["slug"] == ("legacy" if caller == "legacy-admin" else "nova")
    answer = data["myPlan"]["__typename"] if my_plan == "MyPlan" else data["myPlan"]["code"]
    assert answer == my_plan
