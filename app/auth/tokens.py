"""User bearer tokens: HS256 JWTs whose claims name the user and its tenant."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import jwt

from app.i18n import _
from app.services.errors import Unauthenticated

ISSUER = "tollgate"
ALGORITHM = "HS256"
# The last second of year 9999: beyond it (or NaN) an expiry is no date a datetime can hold.
MAX_EXP = 253_402_300_799


def issue_user_token(
    *, user_id: str, tenant_id: str, email: str, secret: str, now: dt.datetime, ttl: dt.timedelta
) -> str:
    claims = {
        "iss": ISSUER,
        "sub": user_id,
        "tid": tenant_id,
        "email": email,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def session_expiry(token: str, *, secret: str, now: dt.datetime) -> dt.datetime:
    """When the token of a live session, verified at its ``connection_init``, expires.

    A token of ``tollgate token`` is decoded again with the secret; another (an identity provider's, whose
    keys may take a fetch to find) is read without its signature: the session verified it moments ago, and
    checks it again against its issuer's keys on every tick (app.edge.live_sessions).
    """
    unverified: Any = None
    with contextlib.suppress(jwt.PyJWTError):
        unverified = jwt.decode(token, options={"verify_signature": False})
    if not isinstance(unverified, dict) or unverified.get("iss") == ISSUER:
        claims = decode_user_token(token, secret=secret, now=now)
        return dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
    expires = valid_expiry(unverified.get("exp"))
    if expires <= now.timestamp():
        raise Unauthenticated(_("The bearer token has expired."), reason="TOKEN_EXPIRED")
    return dt.datetime.fromtimestamp(expires, dt.UTC)


def decode_user_token(token: str, *, secret: str, now: dt.datetime) -> dict[str, Any]:
    """The verified claims, or ``Unauthenticated`` with a stable ``reason``."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "require": ["exp", "iat", "sub", "tid"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError:
        raise Unauthenticated(
            _("The bearer token is malformed or its signature is wrong."), reason="TOKEN_INVALID"
        ) from None
    claims["exp"] = valid_expiry(claims["exp"])
    # Expiry is checked against the injected clock, not the machine's, so tests can move time.
    if claims["exp"] <= now.timestamp():
        raise Unauthenticated(_("The bearer token has expired."), reason="TOKEN_EXPIRED")
    return claims


def valid_expiry(value: object) -> int:
    """A token's time claim (``exp``, ``iat``, ``nbf``) as whole seconds, or ``TOKEN_INVALID``.

    PyJWT checks claims only when it verifies them, and we verify times ourselves (against the injected
    clock): a correctly signed token may still carry "exp": "soon", true, 1e300 or 10**30 (issue 11).
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not -MAX_EXP <= value <= MAX_EXP:
        raise Unauthenticated(
            _("The bearer token's times (exp, iat, nbf) are not valid dates."), reason="TOKEN_INVALID"
        )
    return int(value)
