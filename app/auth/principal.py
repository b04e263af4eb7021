"""Resolving the ``Authorization`` header into the caller: a user or an API key, and its tenant."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.auth.api_keys import KEY_PREFIX, hash_api_key, looks_like_api_key
from app.auth.oidc import OidcVerifier
from app.auth.tokens import decode_user_token
from app.broadcast import Broadcaster
from app.caching import RefreshingCache
from app.i18n import _
from app.models.enums import Role
from app.models.tenancy import ApiKey, Tenant, User
from app.services import invalidation, sql
from app.services.errors import Unauthenticated
from app.services.just_in_time_users import user_for_identity

REVOKED_CHANNEL = "api-key-revoked"  # messages: the prefix of a revoked key
USER_DISABLED_CHANNEL = "user-disabled"  # messages: the id of a user disabled (User.is_active set False)
TENANT_DEACTIVATED_CHANNEL = "tenant-deactivated"  # messages: the id of a tenant deactivated


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: Tenant
    user: User | None = None
    api_key: ApiKey | None = None

    @property
    def is_user(self) -> bool:
        return self.user is not None

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.role == Role.ADMIN

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.api_key.scopes) if self.api_key is not None else frozenset()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _space, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(_("Use 'Authorization: Bearer <token or API key>'."), reason="MALFORMED_HEADER")
    return token.strip()


class PrincipalCache:
    """Credentials verified in the last ``ttl`` seconds, and their caller.

    A connector or an SPA session sends the same credential on every request, and verifying it costs a
    query. Only successes are kept, never longer than a token's own expiry. A key revoked with
    ``tollgate apikey revoke`` is dropped at once by every instance that hears it on the broadcaster
    (``REVOKED_CHANNEL``, through Redis), and so are the tokens of a user whose disabling was announced
    (``USER_DISABLED_CHANNEL``, ``announce_user_disabled``); otherwise they are refused at most ``ttl``
    seconds later (``TOLLGATE_AUTH_CACHE_SECONDS``). Live WebSocket sessions end the same way
    (app.edge.live_sessions).
    """

    def __init__(self, ttl: float, *, max_entries: int = 10_000) -> None:
        self._cache: RefreshingCache[str, tuple[Principal, dt.datetime | None]] = RefreshingCache(
            ttl, max_entries=max_entries
        )

    async def principal(
        self,
        credential: str,
        now: dt.datetime,
        verify: Callable[[], Awaitable[tuple[Principal, dt.datetime | None]]],
    ) -> Principal:
        """The caller of ``credential``: remembered, else ``verify``-ed (never past a token's expiry)."""

        def unexpired(entry: tuple[Principal, dt.datetime | None]) -> bool:
            return entry[1] is None or now < entry[1]

        principal, _ = await self._cache.get(credential, verify, usable=unexpired)
        return principal

    def drop(self, authorization: str | None) -> None:
        """Forget the credential of this ``Authorization`` value (found invalid elsewhere)."""
        try:
            token = bearer_token(authorization)
        except Unauthenticated:
            return
        if token is not None:
            self._cache.invalidate(token)

    def drop_user(self, user_id: str) -> None:
        """Forget the tokens of this user (they were disabled): the gateway's own and its identity
        provider's alike, found by the verified caller they are cached with."""
        for credential, (principal, _expiry) in self._cache.items():
            if principal.user is not None and str(principal.user.id) == user_id:
                self._cache.invalidate(credential)

    def drop_tenant(self, tenant_id: str) -> None:
        """Forget every credential of this tenant (it was deactivated, or its settings changed)."""
        for credential, (principal, _expiry) in self._cache.items():
            if str(principal.tenant.id) == tenant_id:
                self._cache.invalidate(credential)

    def drop_api_key(self, prefix: str) -> None:
        """Forget the key with this prefix (it was revoked)."""
        start = f"{KEY_PREFIX}{prefix}_"
        for credential in [c for c in self._cache if c.startswith(start)]:
            self._cache.invalidate(credential)


async def announce_user_disabled(user_id: str, broadcaster: Broadcaster | None) -> None:
    """After ``User.is_active`` was set False and committed: every gateway sharing ``broadcaster`` forgets
    the user's cached tokens and closes their live sessions at once (others within the cache's ttl)."""
    await invalidation.announce(USER_DISABLED_CHANNEL, user_id, broadcaster)


async def announce_tenant_deactivated(tenant_id: str, broadcaster: Broadcaster | None) -> None:
    """After ``Tenant.is_active`` was set False and committed: every gateway sharing ``broadcaster`` forgets
    the cached credentials of the tenant and closes its live sessions at once (others within the ttl)."""
    await invalidation.announce(TENANT_DEACTIVATED_CHANNEL, tenant_id, broadcaster)


async def authenticate(
    authorization: str | None,
    *,
    jwt_secret: str,
    now: dt.datetime,
    cache: PrincipalCache | None = None,
    oidc: OidcVerifier | None = None,
) -> Principal | None:
    """``None`` without credentials; ``Unauthenticated`` (with a reason) for bad ones. With ``oidc``, tokens
    of the identity provider are accepted too, beside those of ``tollgate token``."""
    token = bearer_token(authorization)
    if token is None:
        return None

    async def verify() -> tuple[Principal, dt.datetime | None]:
        if looks_like_api_key(token):
            return await _authenticate_api_key(token), None
        return await _authenticate_user(token, jwt_secret=jwt_secret, now=now, oidc=oidc)

    if cache is None:
        principal, _ = await verify()
        return principal
    return await cache.principal(token, now, verify)


async def _authenticate_api_key(token: str) -> Principal:
    # Hand-written: on the connector's hot path, building this query through the ORM cost more than
    # running it (a miss of the credential cache happens for every key every few seconds).
    row = await sql.fetch_first(sql.with_tenant(ApiKey, 'm."key_hash" = {0}'), hash_api_key(token))
    if row is None:
        raise Unauthenticated(_("Unknown API key."), reason="API_KEY_UNKNOWN")
    key, tenant = sql.split_with_tenant(ApiKey, row)
    if key.revoked_at is not None:
        raise Unauthenticated(_("This API key has been revoked."), reason="API_KEY_REVOKED")
    if not tenant.is_active:
        raise Unauthenticated(_("The environment of this key is disabled."), reason="TENANT_INACTIVE")
    return Principal(tenant=tenant, api_key=key)


async def _authenticate_user(
    token: str, *, jwt_secret: str, now: dt.datetime, oidc: OidcVerifier | None = None
) -> tuple[Principal, dt.datetime]:
    # The token's own issuer picks who verifies it, each with its own algorithms only: the IdP's keys
    # (RS256, ES256) or the secret (HS256, issuer "tollgate"). An HS256 token claiming the IdP, or an RS256
    # one claiming "tollgate", is refused by the verifier it picked (no algorithm confusion).
    if oidc is not None and oidc.issued(token):
        identity = await oidc.verify(token, now=now)
        known, environment = await user_for_identity(identity.claims)
        return Principal(tenant=environment, user=known), identity.expires_at
    claims = decode_user_token(token, secret=jwt_secret, now=now)
    try:
        user_id, tenant_id = uuid.UUID(str(claims["sub"])), uuid.UUID(str(claims["tid"]))
    except ValueError:
        raise Unauthenticated(_("The bearer token names no valid user."), reason="TOKEN_INVALID") from None
    row = await sql.fetch_first(
        sql.with_tenant(User, 'm."id" = {0} AND m."tenant_id" = {1}'), user_id, tenant_id
    )
    user, tenant = sql.split_with_tenant(User, row) if row is not None else (None, None)
    if user is None or tenant is None or not user.is_active:  # unknown, or disabled since the token
        raise Unauthenticated(
            _("The user of this token does not exist or is disabled."), reason="USER_UNKNOWN"
        )
    if not tenant.is_active:
        raise Unauthenticated(_("The environment of this user is disabled."), reason="TENANT_INACTIVE")
    return Principal(tenant=tenant, user=user), dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
