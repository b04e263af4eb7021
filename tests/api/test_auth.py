"""Who is calling: user tokens and API keys, and every way credentials can be wrong."""

from __future__ import annotations

import asyncio
import datetime as dt

import jwt

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.auth.tokens import issue_user_token
from app.clock import FrozenClock
from app.models.tenancy import ApiKey, Tenant, User
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import GraphQLClient, client_for, count_queries

VIEWER = (
    "{ viewer { kind role scopes keyPrefix tenant { slug currency storeEligible } user { email role } } }"
)


def code_of(body: dict[str, object]) -> tuple[str, str | None]:
    error = body["errors"][0]  # type: ignore[index]
    return error["extensions"]["code"], error["extensions"].get("reason")  # type: ignore[no-any-return]


async def test_viewer_for_each_kind_of_caller(gql: GraphQLClient, demo: SeedResult) -> None:
    admin = await gql.post(VIEWER, as_="admin@acme.test")
    member = await gql.post(VIEWER, as_="member@nova.test")
    connector = await gql.post(VIEWER, key=demo.connector_keys["legacy"])

    assert admin["data"]["viewer"] == {
        "kind": "USER",
        "role": "ADMIN",
        "scopes": [],
        "keyPrefix": None,
        "tenant": {"slug": "acme", "currency": "EUR", "storeEligible": True},
        "user": {"email": "admin@acme.test", "role": "ADMIN"},
    }
    assert member["data"]["viewer"]["role"] == "MEMBER"
    assert member["data"]["viewer"]["tenant"]["slug"] == "nova"
    assert connector["data"]["viewer"]["kind"] == "API_KEY"
    assert connector["data"]["viewer"]["scopes"] == sorted(scopes.CONNECTOR_SCOPES)
    assert connector["data"]["viewer"]["tenant"] == {
        "slug": "legacy",
        "currency": "BRL",
        "storeEligible": False,
    }
    assert connector["data"]["viewer"]["user"] is None


async def test_partner_key_reads_its_own_tenant(gql: GraphQLClient, demo: SeedResult) -> None:
    nova = await Tenant.get(slug="nova")
    key = generate_api_key()
    await ApiKey.create(
        tenant=nova,
        name="partner",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=list(scopes.PARTNER_SCOPES),
    )

    body = await gql.post(VIEWER, key=key.plaintext)

    assert body["data"]["viewer"]["tenant"]["slug"] == "nova"
    assert body["data"]["viewer"]["keyPrefix"] == key.prefix
    assert body["data"]["viewer"]["scopes"] == ["catalog:read", "tenant:read"]


async def test_no_credentials_nulls_the_viewer_only(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post("{ plans { code } viewer { kind } }")

    assert body["data"]["viewer"] is None
    assert len(body["data"]["plans"]) == 5
    assert [(error["path"], error["extensions"]["code"]) for error in body["errors"]] == [
        (["viewer"], "UNAUTHENTICATED")
    ]


async def test_viewer_id_is_the_callers_and_stable(gql: GraphQLClient, demo: SeedResult) -> None:
    query = "{ viewer { id user { id } tenant { id } } }"
    admin = (await gql.post(query, as_="admin@acme.test"))["data"]["viewer"]
    again = (await gql.post(query, as_="admin@acme.test"))["data"]["viewer"]
    member = (await gql.post(query, as_="member@acme.test"))["data"]["viewer"]
    key = (await gql.post(query, key=demo.connector_keys["acme"]))["data"]["viewer"]
    other_key = (await gql.post(query, key=demo.connector_keys["nova"]))["data"]["viewer"]

    assert again == admin
    assert len({admin["id"], member["id"], key["id"], other_key["id"]}) == 4
    assert admin["tenant"]["id"] == member["tenant"]["id"] == key["tenant"]["id"] != other_key["tenant"]["id"]
    # A viewer is not its user account: each type has ids of its own.
    assert admin["id"] != admin["user"]["id"]
    assert key["user"] is None


async def test_malformed_header_and_token(gql: GraphQLClient, demo: SeedResult) -> None:
    response = await gql.http.post("/graphql", json={"query": VIEWER}, headers={"Authorization": "Token abc"})
    garbage = await gql.post(VIEWER, key="not-a-jwt")

    assert code_of(response.json()) == ("UNAUTHENTICATED", "MALFORMED_HEADER")
    assert code_of(garbage) == ("UNAUTHENTICATED", "TOKEN_INVALID")


async def test_token_signed_with_another_secret(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    user = await User.get(email="admin@acme.test")
    forged = issue_user_token(
        user_id=str(user.id),
        tenant_id=str(user.tenant_id),
        email=user.email,
        secret="x" * 40,
        now=clock.now(),
        ttl=dt.timedelta(hours=1),
    )
    assert code_of(await gql.post(VIEWER, key=forged)) == ("UNAUTHENTICATED", "TOKEN_INVALID")


async def test_token_naming_another_tenant_is_refused(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    user = await User.get(email="admin@acme.test")
    nova = await Tenant.get(slug="nova")
    token = issue_user_token(
        user_id=str(user.id),
        tenant_id=str(nova.id),
        email=user.email,
        secret=gql.settings.jwt_secret,
        now=clock.now(),
        ttl=dt.timedelta(hours=1),
    )
    assert code_of(await gql.post(VIEWER, key=token)) == ("UNAUTHENTICATED", "USER_UNKNOWN")


async def test_expired_token(gql: GraphQLClient, demo: SeedResult, clock: FrozenClock) -> None:
    token = await gql.token_for("admin@acme.test")
    assert "errors" not in await gql.post(VIEWER, key=token)

    clock.advance(dt.timedelta(days=31))

    assert code_of(await gql.post(VIEWER, key=token)) == ("UNAUTHENTICATED", "TOKEN_EXPIRED")


async def test_token_without_required_claims(gql: GraphQLClient, demo: SeedResult) -> None:
    token = jwt.encode({"iss": "tollgate", "sub": "someone"}, gql.settings.jwt_secret, algorithm="HS256")
    assert code_of(await gql.post(VIEWER, key=token)) == ("UNAUTHENTICATED", "TOKEN_INVALID")


async def test_disabled_user(gql: GraphQLClient, demo: SeedResult) -> None:
    token = await gql.token_for("member@acme.test")
    await User.filter(email="member@acme.test").update(is_active=False)
    assert code_of(await gql.post(VIEWER, key=token)) == ("UNAUTHENTICATED", "USER_UNKNOWN")


async def test_unknown_and_revoked_api_keys(gql: GraphQLClient, demo: SeedResult, clock: FrozenClock) -> None:
    key = demo.connector_keys["acme"]
    assert "errors" not in await gql.post(VIEWER, key=key)

    await ApiKey.filter(prefix=key.split("_")[1]).update(revoked_at=clock.now())

    assert code_of(await gql.post(VIEWER, key=key)) == ("UNAUTHENTICATED", "API_KEY_REVOKED")
    assert code_of(await gql.post(VIEWER, key="tg_deadbeef_nope")) == ("UNAUTHENTICATED", "API_KEY_UNKNOWN")


async def test_bad_credentials_do_not_break_the_public_catalog(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post("{ plans { code price { currency } } }", key="tg_deadbeef_nope")
    assert "errors" not in body
    assert body["data"]["plans"][0]["price"]["currency"] == "EUR"


async def test_the_credential_cache_remembers_a_caller_for_its_ttl_only(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    async with client_for(settings, clock, auth_cache_seconds=1.0) as http:
        cached = GraphQLClient(http, settings, clock)
        assert "errors" not in await cached.post(VIEWER, key=key)
        await ApiKey.filter(prefix=key.split("_")[1]).update(revoked_at=clock.now())

        with count_queries() as queries:
            still = await cached.post(VIEWER, key=key)  # within the ttl (its second half, at least)
        await asyncio.sleep(1.05)
        refused = await cached.post(VIEWER, key=key)

    assert "errors" not in still
    assert queries.count == 0
    assert code_of(refused) == ("UNAUTHENTICATED", "API_KEY_REVOKED")


async def test_a_remembered_token_still_expires_on_time(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    async with client_for(settings, clock, auth_cache_seconds=300) as http:
        client = GraphQLClient(http, settings, clock)
        assert "errors" not in await client.post(VIEWER, as_="admin@acme.test")  # a 30-day token, now cached
        clock.advance(dt.timedelta(days=31))

        expired = await client.post(VIEWER, as_="admin@acme.test")

    assert code_of(expired) == ("UNAUTHENTICATED", "TOKEN_EXPIRED")
