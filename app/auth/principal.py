"""Resolving the ``Authorization`` header into the caller: a user or an API key, and its tenant."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass

from app.auth.api_keys import hash_api_key, looks_like_api_key
from app.auth.tokens import decode_user_token
from app.models.enums import Role
from app.models.tenancy import ApiKey, Tenant, User
from app.services.errors import Unauthenticated


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
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <token or API key>'.", reason="MALFORMED_HEADER")
    return token.strip()


class PrincipalCache:
    """Credentials verified in the last ``ttl`` seconds, and their caller.

    A connector or an SPA session sends the same credential on every request, and verifying it costs a
    query. Only successes are kept, never longer than a token's own expiry; a key revoked or a user
    disabled meanwhile is refused at most ``ttl`` seconds later (``TOLLGATE_AUTH_CACHE_SECONDS``).
    """

    def __init__(self, ttl: float, *, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float, dt.datetime | None]] = {}

    def get(self, credential: str, now: dt.datetime) -> Principal | None:
        entry = self._entries.get(credential)
        if entry is None:
            return None
        principal, fresh_until, expires_at = entry
        if time.monotonic() >= fresh_until or (expires_at is not None and now >= expires_at):
            del self._entries[credential]
            return None
        return principal

    def put(self, credential: str, principal: Principal, expires_at: dt.datetime | None) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # bounded; entries are cheap to rebuild
        self._entries[credential] = (principal, time.monotonic() + self.ttl, expires_at)


async def authenticate(
    authorization: str | None, *, jwt_secret: str, now: dt.datetime, cache: PrincipalCache | None = None
) -> Principal | None:
    """``None`` without credentials; ``Unauthenticated`` (with a reason) for bad ones."""
    token = bearer_token(authorization)
    if token is None:
        return None
    cached = cache.get(token, now) if cache is not None else None
    if cached is not None:
        return cached
    if looks_like_api_key(token):
        principal, expires_at = await _authenticate_api_key(token), None
    else:
        principal, expires_at = await _authenticate_user(token, jwt_secret=jwt_secret, now=now)
    if cache is not None:
        cache.put(token, principal, expires_at)
    return principal


async def _authenticate_api_key(token: str) -> Principal:
    key = await ApiKey.get_or_none(key_hash=hash_api_key(token)).select_related("tenant")
    if key is None:
        raise Unauthenticated("Unknown API key.", reason="API_KEY_UNKNOWN")
    if key.revoked_at is not None:
        raise Unauthenticated("This API key has been revoked.", reason="API_KEY_REVOKED")
    if not key.tenant.is_active:
        raise Unauthenticated("The environment of this key is disabled.", reason="TENANT_INACTIVE")
    return Principal(tenant=key.tenant, api_key=key)


async def _authenticate_user(
    token: str, *, jwt_secret: str, now: dt.datetime
) -> tuple[Principal, dt.datetime]:
    claims = decode_user_token(token, secret=jwt_secret, now=now)
    try:
        user_id, tenant_id = uuid.UUID(str(claims["sub"])), uuid.UUID(str(claims["tid"]))
    except ValueError:
        raise Unauthenticated("The bearer token names no valid user.", reason="TOKEN_INVALID") from None
    user = await User.get_or_none(id=user_id, tenant_id=tenant_id).select_related("tenant")
    if user is None or not user.is_active:
        raise Unauthenticated("The user of this token does not exist or is disabled.", reason="USER_UNKNOWN")
    if not user.tenant.is_active:
        raise Unauthenticated("The environment of this user is disabled.", reason="TENANT_INACTIVE")
    return Principal(tenant=user.tenant, user=user), dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
