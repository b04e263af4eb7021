"""Operator keys: the vendor's staff and systems on ``/operator/graphql`` (never on ``/graphql``).

A key is ``tgo_<prefix>_<secret>``, stored as the SHA-256 of the whole key (as environments' API keys,
``app.auth.api_keys``), carries scopes of its own and is revoked with ``tollgate operator-key revoke``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.auth.api_keys import NewApiKey, generate_api_key, hash_api_key
from app.i18n import _
from app.models.operators import OperatorKey
from app.services.errors import Unauthenticated

OPERATOR_KEY_PREFIX = "tgo_"

TENANTS_WRITE = "tenants:write"  # provision, update, deactivate and reactivate environments
USERS_WRITE = "users:write"  # provision and deactivate users by the SaaS's external id
COUPONS_WRITE = "coupons:write"  # create and deactivate coupons
WEBHOOKS_WRITE = "webhooks:write"  # register endpoints, rotate their secrets, replay deliveries
OPS_READ = "ops:read"  # the operations view: environments, coupons, alerts, e-mails, deliveries

OPERATOR_SCOPES = frozenset({TENANTS_WRITE, USERS_WRITE, COUPONS_WRITE, WEBHOOKS_WRITE, OPS_READ})

REVOKED_OPERATOR_CHANNEL = "operator-key-revoked"  # messages: the prefix of a revoked operator key


@dataclass(frozen=True, slots=True)
class Operator:
    """The caller of the operator API."""

    key: OperatorKey

    @property
    def prefix(self) -> str:
        return self.key.prefix

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.key.scopes)


def looks_like_operator_key(token: str) -> bool:
    return token.startswith(OPERATOR_KEY_PREFIX)


def generate_operator_key() -> NewApiKey:
    return generate_api_key(OPERATOR_KEY_PREFIX)


async def create_operator_key(*, name: str, scopes: list[str], now: dt.datetime) -> tuple[OperatorKey, str]:
    """A new key and its plaintext (shown once)."""
    new = generate_operator_key()
    key = await OperatorKey.create(
        name=name, prefix=new.prefix, key_hash=new.key_hash, scopes=sorted(set(scopes)), created_at=now
    )
    return key, new.plaintext


async def authenticate_operator(token: str) -> Operator:
    """The operator of ``token``, or ``Unauthenticated`` with a stable reason."""
    if not looks_like_operator_key(token):
        raise Unauthenticated(
            _("The operator API takes operator keys only ('Authorization: Bearer tgo_...')."),
            reason="NOT_AN_OPERATOR_KEY",
        )
    key = await OperatorKey.get_or_none(key_hash=hash_api_key(token))
    if key is None:
        raise Unauthenticated(_("Unknown operator key."), reason="OPERATOR_KEY_UNKNOWN")
    if key.revoked_at is not None:
        raise Unauthenticated(_("This operator key has been revoked."), reason="OPERATOR_KEY_REVOKED")
    return Operator(key=key)
