"""User bearer tokens: HS256 JWTs whose claims name the user and its tenant."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt

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
            "The bearer token is malformed or its signature is wrong.", reason="TOKEN_INVALID"
        ) from None
    # PyJWT checks claims only when it verifies them, and we verify expiry ourselves: a correctly signed
    # token may still carry "exp": "soon", true, 1e300 or 10**30 (issue 11).
    expires = claims["exp"]
    if (
        isinstance(expires, bool)
        or not isinstance(expires, int | float)
        or not -MAX_EXP <= expires <= MAX_EXP
    ):
        raise Unauthenticated("The bearer token's expiry is not a valid date.", reason="TOKEN_INVALID")
    claims["exp"] = int(expires)
    # Expiry is checked against the injected clock, not the machine's, so tests can move time.
    if claims["exp"] <= now.timestamp():
        raise Unauthenticated("The bearer token has expired.", reason="TOKEN_EXPIRED")
    return claims
