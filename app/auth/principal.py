"""Resolving the ``Authorization`` header into the caller: a user or an API key, and its tenant."""

from __future__ import annotations

import datetime as dt
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


async def authenticate(authorization: str | None, *, jwt_secret: str, now: dt.datetime) -> Principal | None:
    """``None`` without credentials; ``Unauthenticated`` (with a reason) for bad ones."""
    token = bearer_token(authorization)
    if token is None:
        return None
    if looks_like_api_key(token):
        return await _authenticate_api_key(token)
    return await _authenticate_user(token, jwt_secret=jwt_secret, now=now)


async def _authenticate_api_key(token: str) -> Principal:
    key = await ApiKey.get_or_none(key_hash=hash_api_key(token)).select_related("tenant")
    if key is None:
        raise Unauthenticated("Unknown API key.", reason="API_KEY_UNKNOWN")
    if key.revoked_at is not None:
        raise Unauthenticated("This API key has been revoked.", reason="API_KEY_REVOKED")
    if not key.tenant.is_active:
        raise Unauthenticated("The environment of this key is disabled.", reason="TENANT_INACTIVE")
    return Principal(tenant=key.tenant, api_key=key)


async def _authenticate_user(token: str, *, jwt_secret: str, now: dt.datetime) -> Principal:
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
    return Principal(tenant=user.tenant, user=user)
