"""Tokens of the SaaS's own OpenID Connect identity provider, verified against its JWKS (docs/identity.md).

The IdP signs with asymmetric keys (RS256, ES256) that it publishes at its JWKS address and rotates.
This module keeps those keys (``JwksCache``: fetched once, again after ``TOLLGATE_OIDC_JWKS_CACHE_SECONDS``,
and at once for a key id it has not seen, at most every ``min_refetch_seconds``, concurrent callers sharing
one fetch) and turns a token into the claims of the user it names (``OidcVerifier``). Who that user is in
Tollgate is the business of ``app.services.just_in_time_users``.

Every refusal is ``Unauthenticated`` with a stable ``reason`` (the table is in docs/identity.md); a JWKS that
cannot be fetched is one of them (``JWKS_UNAVAILABLE``), never a 500.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
import orjson

from app.auth.tokens import ISSUER as TOLLGATE_ISSUER
from app.auth.tokens import valid_expiry
from app.i18n import Text, _
from app.models.enums import Role
from app.services.errors import Unauthenticated
from app.services.just_in_time_users import IdentityClaims

if TYPE_CHECKING:  # httpx is imported where used: only gateways with an IdP fetch its keys
    import httpx

    from app.settings import Settings

logger = logging.getLogger("tollgate.oidc")

# Asymmetric algorithms only: with a symmetric one (HS*), the public key everyone can download would be the
# secret that signs (the classic algorithm confusion); "none" signs nothing.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_JWKS_BYTES = 1024 * 1024  # a JWKS holds a handful of keys: a few KiB
FETCH_TIMEOUT_SECONDS = 5.0
MIN_REFETCH_SECONDS = 10.0  # an unknown kid (or a failed fetch) fetches the JWKS again at most this often
MAX_ID_LENGTH = 255  # User.external_id
MAX_EMAIL_LENGTH = 254  # User.email
MAX_NAME_LENGTH = 200  # User.name
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCALE = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def check_oidc_settings(settings: Settings) -> None:
    """Refuse at startup what would make the gateway accept forged tokens or none at all."""
    if settings.oidc_issuer is None:
        return
    if not settings.oidc_issuer.strip() or settings.oidc_issuer == TOLLGATE_ISSUER:
        raise ValueError(
            f"TOLLGATE_OIDC_ISSUER may not be empty nor {TOLLGATE_ISSUER!r} (the development tokens')"
        )
    if not settings.oidc_audience:
        raise ValueError("TOLLGATE_OIDC_AUDIENCE is required with TOLLGATE_OIDC_ISSUER")
    algorithms = allowed_algorithms(settings)
    refused = [name for name in algorithms if name not in ASYMMETRIC_ALGORITHMS]
    if refused or not algorithms:
        raise ValueError(
            f"TOLLGATE_OIDC_ALGORITHMS: {', '.join(refused) or 'none given'}; "
            f"only asymmetric algorithms are accepted ({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})"
        )
    jwks_source = settings.oidc_jwks_url or settings.oidc_issuer
    if not jwks_source.startswith(("https://", "http://")):
        raise ValueError(
            "TOLLGATE_OIDC_JWKS_URL (or, to discover it, TOLLGATE_OIDC_ISSUER) must be an http(s) URL"
        )
    for name in ("environment", "user_id", "email", "name", "role", "locale"):
        if not getattr(settings, f"oidc_{name}_claim").strip():
            raise ValueError(f"TOLLGATE_OIDC_{name.upper()}_CLAIM may not be empty")


def allowed_algorithms(settings: Settings) -> list[str]:
    return [name.strip() for name in settings.oidc_algorithms.split(",") if name.strip()]


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` of a JWT, unverified: only to choose who verifies it (the issuer's keys or the secret)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


class JwksUnavailable(Exception):
    """The JWKS (or the discovery document naming it) could not be fetched or read."""


class JwksCache:
    """The IdP's signing keys by ``kid``, fetched with ``http`` and kept ``cache_seconds`` (by ``now``).

    - A ``kid`` not in the keys fetches them again at once (the IdP rotated), but at most once per
      ``min_refetch_seconds``: a flood of tokens naming made-up key ids costs the IdP one request per
      interval, and callers arriving during a fetch wait for that one (no thundering herd).
    - A fetch that fails leaves the keys as they were (the gateway keeps accepting tokens of known keys while
      the IdP is down); expired keys are used until a fetch succeeds. With no keys at all, the caller is
      refused with ``JWKS_UNAVAILABLE``.
    - Keys are kept only when usable for an allowed algorithm: symmetric (``oct``) keys and encryption keys
      (``use: enc``) are dropped, and each key verifies with its own algorithm only.
    """

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str | None,
        algorithms: list[str],
        http: httpx.AsyncClient,
        cache_seconds: float,
        min_refetch_seconds: float = MIN_REFETCH_SECONDS,
    ) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._algorithms = frozenset(algorithms)
        self._http = http
        self._ttl = dt.timedelta(seconds=cache_seconds)
        self._min_refetch = dt.timedelta(seconds=min_refetch_seconds)
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._fetched_at: dt.datetime | None = None
        self._attempted_at: dt.datetime | None = None
        self._fetching: asyncio.Future[None] | None = None

    async def key(self, kid: str | None, now: dt.datetime) -> jwt.PyJWK:
        """The key that signed a token naming ``kid``; ``Unauthenticated`` when there is none."""
        keys = self._keys
        stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
        if (keys is None or stale or self._find(keys, kid) is None) and self._may_fetch(now):
            await self._refresh(now)
        keys = self._keys
        if keys is None:
            raise Unauthenticated(
                _("The identity provider's signing keys could not be fetched; try again shortly."),
                reason="JWKS_UNAVAILABLE",
            )
        key = self._find(keys, kid)
        if key is None:
            raise Unauthenticated(
                _("The bearer token was signed with a key the identity provider does not publish."),
                reason="TOKEN_KEY_UNKNOWN",
            )
        return key

    @staticmethod
    def _find(keys: Mapping[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(keys) == 1:  # a token without kid: only unambiguous with one key
            return next(iter(keys.values()))
        return keys.get(kid) if kid is not None else None

    def _may_fetch(self, now: dt.datetime) -> bool:
        if self._fetching is not None:
            return True  # join the fetch under way
        return self._attempted_at is None or not (
            self._attempted_at <= now < self._attempted_at + self._min_refetch
        )

    async def _refresh(self, now: dt.datetime) -> None:
        if self._fetching is None:
            self._attempted_at = now
            self._fetching = asyncio.ensure_future(self._fetch(now))
            self._fetching.add_done_callback(self._fetched)
        await asyncio.shield(self._fetching)

    def _fetched(self, _future: asyncio.Future[None]) -> None:
        self._fetching = None

    async def _fetch(self, now: dt.datetime) -> None:
        try:
            url = self._jwks_url or await self._discover()
            keys = self._usable_keys(await self._get_json(url))
        except Exception as error:  # JwksUnavailable, or whatever else: a caller is refused, never a 500
            logger.warning(
                "could not fetch the identity provider's keys; %s",
                "keeping the cached ones" if self._keys is not None else "no keys to verify tokens with",
                extra={"reason": str(error) if isinstance(error, JwksUnavailable) else type(error).__name__},
                exc_info=not isinstance(error, JwksUnavailable),
            )
            return
        self._keys, self._fetched_at = keys, now

    async def _discover(self) -> str:
        document = await self._get_json(f"{self._issuer.rstrip('/')}/.well-known/openid-configuration")
        # OIDC Discovery 4.3: the document's issuer must be the one configured (a mix-up otherwise).
        if document.get("issuer") != self._issuer:
            raise JwksUnavailable("the discovery document names another issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise JwksUnavailable("the discovery document has no http(s) jwks_uri")
        self._jwks_url = uri  # discovered once per process
        return uri

    async def _get_json(self, url: str) -> dict[str, Any]:
        import httpx

        try:
            async with self._http.stream("GET", url, timeout=FETCH_TIMEOUT_SECONDS) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"{url} answered HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksUnavailable(f"{url} answered more than {MAX_JWKS_BYTES} bytes")
        except httpx.HTTPError as error:
            raise JwksUnavailable(f"{url}: {type(error).__name__}") from None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise JwksUnavailable(f"{url} answered no JSON") from None
        if not isinstance(document, dict):
            raise JwksUnavailable(f"{url} answered no JSON object")
        return document

    def _usable_keys(self, document: dict[str, Any]) -> dict[str | None, jwt.PyJWK]:
        members = document.get("keys")
        if not isinstance(members, list):
            raise JwksUnavailable("the JWKS has no list of keys")
        keys: dict[str | None, jwt.PyJWK] = {}
        for member in members:
            if (
                not isinstance(member, dict)
                or member.get("kty") == "oct"
                or member.get("use", "sig") != "sig"
            ):
                continue  # symmetric keys would let anyone who reads the JWKS sign; "enc" keys do not sign
            try:
                key = jwt.PyJWK(member)
            except Exception:  # a malformed member (PyJWT's or cryptography's errors): the others verify
                continue
            kid = member.get("kid")
            if key.algorithm_name in self._algorithms and (kid is None or isinstance(kid, str)):
                keys.setdefault(kid, key)
        if not keys:
            raise JwksUnavailable("the JWKS holds no key for the accepted algorithms")
        return keys


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """Who a valid IdP token names, and until when the token holds."""

    claims: IdentityClaims
    expires_at: dt.datetime


class OidcVerifier:
    """One per app (``AppServices.oidc``): the settings' IdP, its key cache and the HTTP client it uses."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        min_refetch_seconds: float = MIN_REFETCH_SECONDS,
    ) -> None:
        if settings.oidc_issuer is None or settings.oidc_audience is None:
            raise ValueError("OIDC needs TOLLGATE_OIDC_ISSUER and TOLLGATE_OIDC_AUDIENCE")
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.algorithms = allowed_algorithms(settings)
        if http is None:
            import httpx

            http = httpx.AsyncClient(follow_redirects=False, timeout=FETCH_TIMEOUT_SECONDS)
        self._http = http
        self.keys = JwksCache(
            issuer=self.issuer,
            jwks_url=settings.oidc_jwks_url,
            algorithms=self.algorithms,
            http=self._http,
            cache_seconds=settings.oidc_jwks_cache_seconds,
            min_refetch_seconds=min_refetch_seconds,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcVerifier | None:
        return cls(settings) if settings.oidc_issuer is not None else None

    async def aclose(self) -> None:
        await self._http.aclose()

    def issued(self, token: str) -> bool:
        """Whether ``token`` claims this IdP as its issuer (unverified: it decides who verifies it)."""
        return unverified_issuer(token) == self.issuer

    async def verify(self, token: str, *, now: dt.datetime) -> VerifiedIdentity:
        """The identity a token of this IdP names, or ``Unauthenticated`` with a stable ``reason``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid(_("The bearer token is malformed.")) from None
        if header.get("alg") not in self.algorithms:  # before any key is looked up: none, HS256...
            raise _invalid(_("The bearer token's signature algorithm is not accepted."))
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None, now)
        claims = self._decode(token, key)
        expires_at = self._check_times(claims, now)
        return VerifiedIdentity(identity_of(claims, self.settings), expires_at)

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                options={
                    "require": ["exp", "iat", "iss", "aud"],
                    "verify_exp": False,  # against the injected clock, below
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise _invalid(_("The bearer token is meant for another audience.")) from None
        except jwt.InvalidIssuerError:
            raise _invalid(_("The bearer token comes from another issuer.")) from None
        except jwt.MissingRequiredClaimError as error:
            raise _invalid(_("The bearer token has no {claim} claim.", claim=repr(error.claim))) from None
        except jwt.PyJWTError:
            raise _invalid(_("The bearer token is malformed or its signature is wrong.")) from None
        return claims

    def _check_times(self, claims: dict[str, Any], now: dt.datetime) -> dt.datetime:
        leeway = self.settings.oidc_leeway_seconds
        expires = valid_expiry(claims.get("exp"))
        if expires + leeway <= now.timestamp():
            raise Unauthenticated(_("The bearer token has expired."), reason="TOKEN_EXPIRED")
        for name in ("iat", "nbf"):
            if name in claims and valid_expiry(claims[name]) - leeway > now.timestamp():
                raise _invalid(_("The bearer token's {name} is in the future.", name=repr(name)))
        # A principal is remembered up to the token's expiry (leeway included: it is accepted until then).
        return dt.datetime.fromtimestamp(expires + leeway, dt.UTC)


def _invalid(message: Text) -> Unauthenticated:
    return Unauthenticated(message, reason="TOKEN_INVALID")


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """The claim ``name``; when there is none and ``name`` is a dotted path (Keycloak's
    ``realm_access.roles``), the value at that path. A literal name wins: Auth0's namespaced claims
    (``https://tollgate.example/role``) hold dots too."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def identity_of(claims: Mapping[str, Any], settings: Settings) -> IdentityClaims:
    """The identity of verified ``claims``, read through the settings' claim names; a claim missing or
    unusable (too long, control characters, not a string) is ``TOKEN_INVALID`` naming it."""
    environment = _text(claims, settings.oidc_environment_claim, 64)
    external_id = _text(claims, settings.oidc_user_id_claim, MAX_ID_LENGTH)
    email = _text(claims, settings.oidc_email_claim, MAX_EMAIL_LENGTH).lower()
    if not _EMAIL.fullmatch(email):
        raise _invalid(
            _("The bearer token's {claim} claim is no e-mail address.", claim=repr(settings.oidc_email_claim))
        )
    name_value = claim(claims, settings.oidc_name_claim)
    name = _text(claims, settings.oidc_name_claim, None) if name_value is not None else email
    return IdentityClaims(
        environment=environment,
        external_id=external_id,
        email=email,
        name=name[:MAX_NAME_LENGTH],  # a display name: shortened rather than refused
        role=_role(claim(claims, settings.oidc_role_claim), settings),
        locale=_locale(claim(claims, settings.oidc_locale_claim)),
    )


def _text(claims: Mapping[str, Any], name: str, max_length: int | None) -> str:
    value = claim(claims, name)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(_("The bearer token has no {name} claim (a non-empty string).", name=repr(name)))
    value = value.strip()
    if _CONTROL.search(value) or (max_length is not None and len(value) > max_length):
        raise _invalid(
            _(
                "The bearer token's {name} claim is not usable (control characters, or longer than "
                "{max_length} characters).",
                name=repr(name),
                max_length=max_length,
            )
        )
    return value


def _role(value: Any, settings: Settings) -> Role:
    """ADMIN when the claim (a string, or a list of strings) holds one of ``TOLLGATE_OIDC_ADMIN_ROLES``."""
    admin_roles = {role.strip() for role in settings.oidc_admin_roles.split(",") if role.strip()}
    values = value if isinstance(value, list) else [value]
    return Role.ADMIN if any(isinstance(v, str) and v in admin_roles for v in values) else Role.MEMBER


def _locale(value: Any) -> str | None:
    """A BCP 47-looking tag of at most 16 characters, else none: a locale never locks a user out."""
    if isinstance(value, str) and len(value) <= 16 and _LOCALE.fullmatch(value):
        return value
    return None
