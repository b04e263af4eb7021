"""Tokens of the SaaS's own identity provider (OpenID Connect), verified against its JWKS (issue 13).

The IdP here is real: a Starlette app served by uvicorn on a local port, publishing its discovery document
and its JWKS, with RSA and EC keys made by ``cryptography`` and tokens signed by PyJWT. The gateway fetches
its keys over HTTP as it would from Auth0 or Keycloak. The clock is frozen at 2026-11-23 12:00 UTC and moved
by the tests (the key cache and the refetch interval follow it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import connect

from app.auth.tokens import issue_user_token
from app.clock import FrozenClock
from app.main import create_app
from app.models.enums import Role
from app.models.tenancy import Tenant, User
from app.seed import SeedResult
from app.settings import Settings
from tests.api.test_checkout import checkout
from tests.api.test_store import add
from tests.conftest import GraphQLClient, client_for
from tests.live import PROTOCOLS, serving

AUDIENCE = "https://api.tollgate.test"
VIEWER = "{ viewer { kind role tenant { slug } user { email role } } }"
MINUTE = dt.timedelta(minutes=1)


class IdentityProvider:
    """A local OpenID provider: keys by kid (only the published ones are in its JWKS), and what it served."""

    def __init__(self) -> None:
        self.issuer = ""
        self.private: dict[str, Any] = {}
        self.algorithm: dict[str, str] = {}
        self.published: list[str] = []
        self.down = False
        self.jwks_body: bytes | None = None  # served instead of the keys when set
        self.served: list[str] = []  # paths asked, in order
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/keys", self._jwks),
            ]
        )

    async def _discovery(self, request: Request) -> Response:
        self.served.append("discovery")
        return JSONResponse({"issuer": self.issuer, "jwks_uri": f"{self.issuer}/keys"})

    async def _jwks(self, request: Request) -> Response:
        self.served.append("jwks")
        if self.down:
            return Response("unavailable", status_code=503)
        if self.jwks_body is not None:
            return Response(self.jwks_body, media_type="application/json")
        keys = []
        for kid in self.published:
            public = self.private[kid].public_key()
            algorithm = jwt.get_algorithm_by_name(self.algorithm[kid])
            jwk = algorithm.to_jwk(public, as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": self.algorithm[kid], "use": "sig"})
        return JSONResponse({"keys": keys})

    @property
    def jwks_fetches(self) -> int:
        return self.served.count("jwks")

    def add_key(self, kid: str, algorithm: str = "RS256", *, publish: bool = True) -> None:
        if algorithm.startswith("ES"):
            self.private[kid] = ec.generate_private_key(ec.SECP256R1())
        else:
            self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.algorithm[kid] = algorithm
        if publish:
            self.published.append(kid)

    def public_pem(self, kid: str) -> bytes:
        return bytes(
            self.private[kid]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def claims(self, now: dt.datetime, **changes: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": [AUDIENCE, f"{self.issuer}/userinfo"],
            "sub": "idp|alice",
            "email": "alice@acme.example",
            "name": "Alice Andrade",
            "tollgate_environment": "acme",
            "tollgate_role": "admin",
            "locale": "pt-BR",
            "iat": int(now.timestamp()),
            "exp": int((now + dt.timedelta(hours=1)).timestamp()),
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, now: dt.datetime, kid: str = "k1", **changes: Any) -> str:
        return jwt.encode(
            self.claims(now, **changes),
            self.private[kid],
            algorithm=self.algorithm[kid],
            headers={"kid": kid},
        )


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.add_key("k1", "RS256")
    provider.add_key("e1", "ES256")
    async with serving(provider.app) as address:
        provider.issuer = f"http://{address}"
        yield provider


def with_oidc(settings: Settings, idp: IdentityProvider, **changes: Any) -> Settings:
    return settings.model_copy(update={"oidc_issuer": idp.issuer, "oidc_audience": AUDIENCE, **changes})


@contextlib.asynccontextmanager
async def gateway(
    settings: Settings, clock: FrozenClock, idp: IdentityProvider, **changes: Any
) -> AsyncIterator[GraphQLClient]:
    """A gateway trusting ``idp`` (its lifespan running: the verifier's HTTP client is closed after)."""
    async with client_for(with_oidc(settings, idp), clock, **changes) as http:
        yield GraphQLClient(http, settings, clock)


async def as_bearer(gql: GraphQLClient, token: str, query: str = VIEWER, **variables: Any) -> dict[str, Any]:
    response = await gql.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refusal(body: dict[str, Any]) -> tuple[str, str | None]:
    assert body["data"]["viewer"] is None, body
    extensions = body["errors"][0]["extensions"]
    return extensions["code"], extensions.get("reason")


# --- Accepted tokens ---------------------------------------------------------------------------------------


async def test_an_rs256_token_creates_its_user_just_in_time(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp) as gql:
        first = await as_bearer(gql, idp.token(clock.now()))
        again = await as_bearer(gql, idp.token(clock.now()))

    assert (
        first
        == again
        == {
            "data": {
                "viewer": {
                    "kind": "USER",
                    "role": "ADMIN",
                    "tenant": {"slug": "acme"},
                    "user": {"email": "alice@acme.example", "role": "ADMIN"},
                }
            }
        }
    )
    user = await User.get(external_id="idp|alice")
    assert (user.email, user.name, user.role, user.locale) == (
        "alice@acme.example",
        "Alice Andrade",
        Role.ADMIN,
        "pt-BR",
    )
    assert str(user.tenant_id) == str((await Tenant.get(slug="acme")).id)
    assert await User.filter(external_id="idp|alice").count() == 1
    # Discovered once, its keys fetched once: the second token was verified with the cached keys.
    assert idp.served == ["discovery", "jwks"]


async def test_an_es256_token_of_a_member_is_accepted(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    token = idp.token(
        clock.now(), "e1", sub="idp|bruno", email="Bruno@Nova.example", tollgate_environment="nova",
        tollgate_role=["viewer", "billing"], locale=None,
    )  # fmt: skip
    async with gateway(settings, clock, idp) as gql:
        body = await as_bearer(gql, token)

    assert body["data"]["viewer"]["user"] == {"email": "bruno@nova.example", "role": "MEMBER"}
    assert body["data"]["viewer"]["tenant"] == {"slug": "nova"}
    assert (await User.get(external_id="idp|bruno")).locale is None


async def test_a_just_in_time_admin_buys_an_add_on(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp) as gql:
        token = idp.token(clock.now())
        # The GraphQLClient's tokens are by e-mail: the IdP's token stands in for "alice".
        gql.tokens["alice@acme.example"] = token
        added = await add(gql, "users-5", as_="alice@acme.example")
        bought = await checkout(gql, "oidc-alice-1", as_="alice@acme.example")

    assert added["__typename"] == "AddToCartSuccess"
    assert bought["__typename"] == "CheckoutSuccess", bought
    assert [line["addOnCode"] for line in bought["order"]["lines"]] == ["users-5"]


async def test_the_jwks_url_may_be_set_rather_than_discovered(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp, oidc_jwks_url=f"{idp.issuer}/keys") as gql:
        body = await as_bearer(gql, idp.token(clock.now()))

    assert body["data"]["viewer"]["user"]["email"] == "alice@acme.example"
    assert idp.served == ["jwks"]


async def test_later_tokens_update_the_user(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp) as gql:
        await as_bearer(gql, idp.token(clock.now()))
        body = await as_bearer(
            gql,
            idp.token(
                clock.now(),
                email="alice.a@acme.example",
                name="Alice A.",
                tollgate_role="member",
                locale="es",
            ),
        )
        unchanged_locale = await as_bearer(
            gql, idp.token(clock.now(), email="alice.a@acme.example", name="Alice A.", locale=None)
        )

    assert body["data"]["viewer"]["user"] == {"email": "alice.a@acme.example", "role": "MEMBER"}
    assert unchanged_locale["data"]["viewer"]["role"] == "ADMIN"
    user = await User.get(external_id="idp|alice")
    assert (user.email, user.name, user.role, user.locale) == (
        "alice.a@acme.example",
        "Alice A.",
        Role.ADMIN,
        "es",
    )


async def test_tokens_of_tollgate_token_keep_working_with_oidc_on(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    admin = await User.get(email="admin@acme.test")
    token = issue_user_token(
        user_id=str(admin.id), tenant_id=str(admin.tenant_id), email=admin.email,
        secret=settings.jwt_secret, now=clock.now(), ttl=dt.timedelta(hours=1),
    )  # fmt: skip
    async with gateway(settings, clock, idp) as gql:
        body = await as_bearer(gql, token)

    assert body["data"]["viewer"]["user"]["email"] == "admin@acme.test"
    assert idp.served == []  # the IdP is not asked about tokens it did not issue


# --- Key rotation and the key cache ------------------------------------------------------------------------


async def test_a_new_key_is_fetched_once_and_a_removed_key_is_refused_after_the_cache_expires(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp) as gql:
        assert (await as_bearer(gql, idp.token(clock.now(), "k1")))["data"]["viewer"] is not None
        clock.set(clock.now() + MINUTE)
        idp.add_key("k2", "RS256")  # the IdP rotates: publishes k2 and signs with it
        new_tokens = await asyncio.gather(*(as_bearer(gql, idp.token(clock.now(), "k2")) for _ in range(20)))
        assert all(body["data"]["viewer"] is not None for body in new_tokens)
        assert idp.jwks_fetches == 2  # twenty callers, one refetch

        idp.published.remove("k1")  # and retires k1: its tokens hold while the cache does
        clock.set(clock.now() + MINUTE)
        still = await as_bearer(gql, idp.token(clock.now(), "k1"))
        clock.set(clock.now() + dt.timedelta(seconds=settings.oidc_jwks_cache_seconds))
        retired = await as_bearer(gql, idp.token(clock.now(), "k1"))
        current = await as_bearer(gql, idp.token(clock.now(), "k2"))

    assert still["data"]["viewer"] is not None
    assert refusal(retired) == ("UNAUTHENTICATED", "TOKEN_KEY_UNKNOWN")
    assert current["data"]["viewer"] is not None


async def test_unknown_key_ids_refetch_at_most_once_per_interval(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    idp.add_key("stranger", "RS256", publish=False)  # a key the IdP never published
    async with gateway(settings, clock, idp) as gql:
        await as_bearer(gql, idp.token(clock.now()))
        clock.set(clock.now() + MINUTE)
        flood = await asyncio.gather(*(as_bearer(gql, idp.token(clock.now(), "stranger")) for _ in range(20)))
        clock.set(clock.now() + dt.timedelta(seconds=5))
        soon_after = await as_bearer(gql, idp.token(clock.now(), "stranger"))
        fetches_within_the_interval = idp.jwks_fetches
        clock.set(clock.now() + dt.timedelta(seconds=6))
        later = await as_bearer(gql, idp.token(clock.now(), "stranger"))

    assert {refusal(body) for body in [*flood, soon_after, later]} == {
        ("UNAUTHENTICATED", "TOKEN_KEY_UNKNOWN")
    }
    assert fetches_within_the_interval == 2  # the first fetch, and one for the whole flood
    assert idp.jwks_fetches == 3  # 11 s later, once more


async def test_cached_keys_keep_working_while_the_jwks_is_down(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp) as gql:
        await as_bearer(gql, idp.token(clock.now()))
        idp.down = True
        clock.set(clock.now() + dt.timedelta(seconds=settings.oidc_jwks_cache_seconds + 1))  # cache expired
        body = await as_bearer(gql, idp.token(clock.now()))

    assert body["data"]["viewer"]["user"]["email"] == "alice@acme.example"
    assert idp.served[-1] == "jwks"  # it tried, failed, and kept the keys it had


@pytest.mark.parametrize("failure", ["down", "too large", "not json", "no usable key"])
async def test_without_keys_the_refusal_says_the_keys_could_not_be_fetched(
    settings: Settings,
    clock: FrozenClock,
    demo: SeedResult,
    idp: IdentityProvider,
    failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    idp.down = failure == "down"
    idp.jwks_body = {
        "down": None,
        "too large": b'{"keys": [], "padding": "' + b"x" * (1024 * 1024) + b'"}',
        "not json": b"<html>",
        "no usable key": json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]}).encode(),
    }[failure]
    async with gateway(settings, clock, idp) as gql:
        body = await as_bearer(gql, idp.token(clock.now()))

    assert refusal(body) == ("UNAUTHENTICATED", "JWKS_UNAVAILABLE")
    assert "could not fetch the identity provider's keys" in caplog.text


async def test_an_unreachable_identity_provider_is_a_clear_refusal(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    token = idp.token(clock.now())
    gone = settings.model_copy(update={"oidc_jwks_url": "http://127.0.0.1:9/keys"})  # discard port: nothing
    async with gateway(gone, clock, idp) as gql:
        body = await as_bearer(gql, token)

    assert refusal(body) == ("UNAUTHENTICATED", "JWKS_UNAVAILABLE")


# --- Refused tokens ----------------------------------------------------------------------------------------


def forged(idp: IdentityProvider, now: dt.datetime, case: str) -> str:
    claims = idp.claims(now)
    if case == "another issuer":
        return idp.token(now, iss="https://evil.example")
    if case == "another audience":
        return idp.token(now, aud="https://another-api.example")
    if case == "expired":
        return idp.token(now, exp=int((now - MINUTE).timestamp()))
    if case == "issued in the future":
        return idp.token(now, iat=int((now + dt.timedelta(hours=1)).timestamp()))
    if case == "not yet valid":
        return idp.token(now, nbf=int((now + dt.timedelta(hours=1)).timestamp()))
    if case == "alg none":
        return jwt.encode(claims, "", algorithm="none", headers={"kid": "k1"})
    if case == "HS256 with the public key as secret":
        header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
        return _hs256(header, claims, idp.public_pem("k1"))
    if case == "HS256 with the gateway's secret":
        return jwt.encode(claims, "tollgate-development-jwt-secret-change-me", algorithm="HS256")
    if case == "RS256 claiming tollgate":
        return idp.token(now, iss="tollgate", tid="x")
    if case == "ES256 header on an RSA key":
        return _relabelled(idp.token(now), "ES256")
    if case == "bad signature":
        head, body, signature = idp.token(now).split(".")
        return f"{head}.{body}.{signature[::-1]}"
    raise AssertionError(case)


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """What PyJWT refuses to do (a public key's PEM as an HMAC secret), done by hand as attackers do."""
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def _relabelled(token: str, algorithm: str) -> str:
    import base64

    head, body, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header["alg"] = algorithm
    new_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{new_head}.{body}.{signature}"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("another issuer", "TOKEN_INVALID"),
        ("another audience", "TOKEN_INVALID"),
        ("expired", "TOKEN_EXPIRED"),
        ("issued in the future", "TOKEN_INVALID"),
        ("not yet valid", "TOKEN_INVALID"),
        ("alg none", "TOKEN_INVALID"),
        ("HS256 with the public key as secret", "TOKEN_INVALID"),
        ("HS256 with the gateway's secret", "TOKEN_INVALID"),
        ("RS256 claiming tollgate", "TOKEN_INVALID"),
        ("ES256 header on an RSA key", "TOKEN_INVALID"),
        ("bad signature", "TOKEN_INVALID"),
    ],
)
async def test_forged_or_foreign_tokens_are_refused(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider, case: str, reason: str
) -> None:
    async with gateway(settings, clock, idp) as gql:
        body = await as_bearer(gql, forged(idp, clock.now(), case))

    assert refusal(body) == ("UNAUTHENTICATED", reason)
    assert not await User.filter(external_id="idp|alice").exists()


async def test_expiry_allows_the_leeway_and_no_more(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    now = clock.now()
    async with gateway(settings, clock, idp) as gql:
        within = await as_bearer(gql, idp.token(now, exp=int(now.timestamp()) - 29))
        beyond = await as_bearer(gql, idp.token(now, exp=int(now.timestamp()) - 30))

    assert within["data"]["viewer"] is not None
    assert refusal(beyond) == ("UNAUTHENTICATED", "TOKEN_EXPIRED")


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"sub": None}, "sub"),
        ({"email": None}, "email"),
        ({"tollgate_environment": None}, "tollgate_environment"),
        ({"exp": None}, "exp"),
        ({"iat": None}, "iat"),
        ({"aud": None}, "aud"),
        ({"email": "not-an-address"}, "email"),
        ({"sub": "x" * 256}, "sub"),
        ({"email": "a\x00b@acme.example"}, "email"),
        ({"tollgate_environment": ["acme"]}, "tollgate_environment"),
        ({"exp": "soon"}, None),
    ],
)
async def test_tokens_missing_a_claim_are_refused(
    settings: Settings,
    clock: FrozenClock,
    demo: SeedResult,
    idp: IdentityProvider,
    changes: dict[str, Any],
    missing: str | None,
) -> None:
    async with gateway(settings, clock, idp) as gql:
        body = await as_bearer(gql, idp.token(clock.now(), **changes))

    assert refusal(body) == ("UNAUTHENTICATED", "TOKEN_INVALID")
    if missing is not None:
        assert repr(missing) in body["errors"][0]["message"]
    assert await User.filter(tenant__slug="acme", external_id__not_isnull=True).count() == 0


# --- Who the token names -----------------------------------------------------------------------------------


async def test_an_unknown_or_disabled_environment_is_refused(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    await Tenant.filter(slug="nova").update(is_active=False)
    async with gateway(settings, clock, idp) as gql:
        unknown = await as_bearer(gql, idp.token(clock.now(), tollgate_environment="atlantis"))
        disabled = await as_bearer(gql, idp.token(clock.now(), tollgate_environment="nova"))

    assert refusal(unknown) == ("UNAUTHENTICATED", "ENVIRONMENT_UNKNOWN")
    assert refusal(disabled) == ("UNAUTHENTICATED", "TENANT_INACTIVE")
    assert not await User.filter(external_id="idp|alice").exists()


async def test_a_user_disabled_in_tollgate_stays_refused_with_a_valid_token(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp) as gql:
        await as_bearer(gql, idp.token(clock.now()))
        await User.filter(external_id="idp|alice").update(is_active=False)
        body = await as_bearer(gql, idp.token(clock.now(), name="Alice, again"))

    assert refusal(body) == ("UNAUTHENTICATED", "USER_DISABLED")
    user = await User.get(external_id="idp|alice")
    assert (user.is_active, user.name) == (False, "Alice Andrade")


async def test_an_email_of_another_user_is_never_merged(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp) as gql:
        other_environment = await as_bearer(gql, idp.token(clock.now(), email="admin@nova.test"))
        same_environment = await as_bearer(gql, idp.token(clock.now(), email="ADMIN@acme.test"))
        await as_bearer(gql, idp.token(clock.now()))  # alice exists; then her IdP e-mail changes to nova's
        changed = await as_bearer(gql, idp.token(clock.now(), email="member@nova.test"))

    assert refusal(other_environment) == ("UNAUTHENTICATED", "EMAIL_IN_OTHER_ENVIRONMENT")
    assert refusal(same_environment) == ("UNAUTHENTICATED", "EMAIL_TAKEN")
    assert refusal(changed) == ("UNAUTHENTICATED", "EMAIL_IN_OTHER_ENVIRONMENT")
    assert (await User.get(external_id="idp|alice")).email == "alice@acme.example"
    assert (await User.get(email="admin@nova.test")).external_id is None


async def test_twenty_first_requests_of_a_new_user_create_one_user(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    async with gateway(settings, clock, idp) as gql:
        # Distinct tokens (another iat each), so that no cache joins them: twenty verifications at once.
        tokens = [idp.token(clock.now(), iat=int(clock.now().timestamp()) - n) for n in range(20)]
        bodies = await asyncio.gather(*(as_bearer(gql, token) for token in tokens))

    assert [body.get("errors") for body in bodies] == [None] * 20
    assert await User.filter(external_id="idp|alice").count() == 1


async def test_a_websocket_session_opens_with_an_identity_provider_token(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    app = create_app(with_oidc(settings, idp), clock=clock, manage_orm=False, run_background_tasks=False)
    token = idp.token(clock.now())
    async with serving(app) as address, connect(f"ws://{address}/graphql", subprotocols=PROTOCOLS) as socket:
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": VIEWER}}))
        answer = json.loads(await socket.recv())

    assert answer["type"] == "next", answer
    assert answer["payload"]["data"]["viewer"]["user"] == {"email": "alice@acme.example", "role": "ADMIN"}


async def test_the_verified_user_is_remembered_until_the_token_expires(
    settings: Settings, clock: FrozenClock, demo: SeedResult, idp: IdentityProvider
) -> None:
    token = idp.token(clock.now(), exp=int((clock.now() + MINUTE).timestamp()))
    async with gateway(settings, clock, idp, auth_cache_seconds=300) as gql:
        await as_bearer(gql, token)
        idp.down = True  # the IdP is not asked again while the token is remembered
        clock.set(clock.now() + dt.timedelta(seconds=30))
        remembered = await as_bearer(gql, token)
        clock.set(clock.now() + dt.timedelta(seconds=61))  # past exp + the 30 s leeway
        expired = await as_bearer(gql, token)

    assert remembered["data"]["viewer"]["user"]["email"] == "alice@acme.example"
    assert refusal(expired) == ("UNAUTHENTICATED", "TOKEN_EXPIRED")
    assert idp.served == ["discovery", "jwks"]
