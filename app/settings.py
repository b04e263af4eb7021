"""Configuration from ``TOLLGATE_*`` environment variables, with safe defaults for local use."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.edge.query_limits import QueryLimits

# Development defaults: good enough on a laptop, refused in production.
DEV_JWT_SECRET = "tollgate-development-jwt-secret-change-me"
DEV_ENCRYPTION_KEY = "dG9sbGdhdGUtZGV2LWtleS1ub3QtZm9yLXByb2QtMzI="


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLGATE_", extra="ignore", populate_by_name=True)

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite://tollgate.sqlite3"
    redis_url: str | None = None
    redis_channel_prefix: str = "tollgate:"  # pub/sub channels of live alerts
    smtp_url: str | None = Field(
        default=None, description="smtp://user:pass@host:port; without it e-mails are written to mail_dir"
    )
    mail_dir: Path = Path("var/mail")
    mail_from: str = "Tollgate <billing@tollgate.local>"
    ops_email: str = "ops@tollgate.local"
    # A usage report measured later than now by more than this is refused (connector clock skew).
    usage_report_max_skew_seconds: int = 300
    # quota's and creditUsage's live figures (usage, processes counted) are cached per instance; every change
    # drops them at once in every instance through the broadcaster, so this only bounds a lost broadcast.
    usage_cache_seconds: float = Field(default=60, ge=0, le=300)

    jwt_secret: str = DEV_JWT_SECRET
    jwt_ttl_seconds: int = 24 * 3600
    # Verified credentials are remembered this long: a revoked key is refused at most this much later
    # (at once by the gateways sharing a broadcaster with ``tollgate apikey revoke``: Redis).
    auth_cache_seconds: float = Field(default=30, ge=0, le=300)
    # Comma-separated Fernet keys, newest first: the first encrypts, all decrypt (key rotation).
    encryption_key: str = DEV_ENCRYPTION_KEY

    # How often the add-on lifecycle task looks for add-ons that ended (the "disabled today" e-mail).
    lifecycle_interval_seconds: float = Field(default=60.0, gt=0)
    # How often the invoice task looks for ended billing periods to issue (issue 14); 0: never (when
    # ``tollgate invoices issue`` runs from a scheduler instead).
    invoice_issue_interval_seconds: float = Field(default=300.0, ge=0, le=86400)
    # An e-mail being sent is held this long; if its sender dies, another instance takes it over after it.
    outbox_lease_seconds: float = Field(default=120, gt=0, le=3600)
    # Webhooks (docs/webhooks.md): a receiver slower than this to answer is retried later; a delivery being
    # sent is held this long (more than the timeout) so that no other instance sends it at the same time;
    # the delivery task looks for due deliveries this often (and at once after a commit that emitted some).
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=60)
    webhook_lease_seconds: float = Field(default=120, gt=0, le=3600)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=300)

    store_eligible_since: dt.date = dt.date(2022, 1, 1)
    default_currency: str = "EUR"

    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Persisted queries: a JSON file of documents by SHA-256; with allowlist_only, nothing else runs.
    persisted_queries_file: Path | None = None
    allowlist_only: bool = False

    graphiql: bool = True
    introspection: bool = True
    # Documents that ran cleanly skip the executor from then on, and live alert events are completed by a
    # compiled selection (app.edge.fast_path); False switches both off.
    fast_path: bool = True
    # Answers to the public catalog (plans, addOns) are reused this long; checkout re-reads every price.
    catalog_cache_seconds: float = Field(default=60, ge=0, le=3600)
    # Query limits (issue 6): over-limit documents get a GraphQL validation error.
    max_query_depth: int = Field(default=10, ge=2, le=100)
    max_query_aliases: int = Field(default=20, ge=0, le=1_000)
    max_query_tokens: int = Field(default=2_000, ge=100, le=100_000)
    # "Did you mean ...?" in validation errors; unset means on, except in production.
    field_suggestions: bool | None = None
    # Requests per second per API key, user or anonymous address, bursts up to rate_limit_burst; 0 is off.
    rate_limit_per_second: float = Field(default=50, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    # The client address (rate limit of anonymous callers) is read from X-Forwarded-For only when the direct
    # peer is one of these proxies: comma-separated addresses or CIDR networks; none by default.
    trusted_proxies: str = ""
    # Request bodies and WebSocket messages above this are refused (413; WebSocket close 1009).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1_024)
    # /metrics needs "Authorization: Bearer <this>" when set; production refuses to start without it.
    metrics_token: str | None = None
    # Browser pages of these other origins (comma-separated scheme://host[:port]) may call /graphql over HTTP
    # (CORS) and open its WebSocket; the page's own origin and non-browser clients always may. Its old name
    # TOLLGATE_WEBSOCKET_ALLOWED_ORIGINS still works; when both are set, TOLLGATE_CORS_ALLOWED_ORIGINS wins.
    # "*" (any origin, alone) is refused in production. Stored as browsers send Origin (see cors_origins).
    cors_allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=AliasChoices("TOLLGATE_CORS_ALLOWED_ORIGINS", "TOLLGATE_WEBSOCKET_ALLOWED_ORIGINS"),
    )
    # WebSocket: in-flight operations per connection, and the wait for connection_init.
    websocket_max_operations: int = Field(default=20, ge=1, le=1_000)
    websocket_init_timeout_seconds: float = Field(default=10, gt=0, le=300)
    # permessage-deflate: off by default, its zlib contexts cost about 50 KiB per connection, idle or not, and
    # one compression per subscriber and event, for messages (graphql-transport-ws) mostly small.
    websocket_compression: bool = False
    # Limit alerts committed but not pushed live (their process died first) are pushed by a background task
    # once this old, at start and then every alert_publish_interval_seconds (issue 11).
    alert_publish_grace_seconds: float = Field(default=5.0, ge=0, le=3600)
    alert_publish_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    # Integration URL settings may name private, loopback or link-local hosts (an on-premises ERP) only when
    # true; by default they must name a public host (issue 11, docs/security.md "Integration settings").
    integration_allow_private_hosts: bool = False

    # The SaaS's own OpenID Connect identity provider (docs/identity.md): its tokens are verified against its
    # JWKS and their users created just in time. No issuer, no OIDC (tokens of `tollgate token` only).
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None  # default: the jwks_uri of <issuer>/.well-known/openid-configuration
    oidc_algorithms: str = "RS256,ES256"  # comma-separated; never "none" nor HS* (algorithm confusion)
    oidc_environment_claim: str = "tollgate_environment"
    oidc_user_id_claim: str = "sub"
    oidc_email_claim: str = "email"
    oidc_name_claim: str = "name"
    oidc_role_claim: str = "tollgate_role"
    oidc_admin_roles: str = "admin"  # comma-separated values of the role claim that mean ADMIN
    oidc_locale_claim: str = "locale"
    oidc_jwks_cache_seconds: float = Field(default=300, ge=0, le=86_400)
    oidc_leeway_seconds: float = Field(default=30, ge=0, le=300)

    @model_validator(mode="after")
    def _oidc_is_complete_and_asymmetric(self) -> Settings:
        from app.auth.oidc import check_oidc_settings  # the rules live with the verifier

        check_oidc_settings(self)
        return self

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _origins_are_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [entry for entry in value.split(",") if entry.strip()]
        if not isinstance(value, list | tuple):
            return value
        try:
            return cors_origins(value)
        except ValueError as error:
            raise ValueError(f"TOLLGATE_CORS_ALLOWED_ORIGINS: {error}") from None

    @model_validator(mode="after")
    def _any_origin_is_not_for_production(self) -> Settings:
        if self.env == "production" and "*" in self.cors_allowed_origins:
            raise ValueError(
                "TOLLGATE_CORS_ALLOWED_ORIGINS: '*' (any origin) is refused when TOLLGATE_ENV=production; "
                "list the back office's origins"
            )
        return self

    @model_validator(mode="after")
    def _allowlist_needs_a_manifest(self) -> Settings:
        if self.allowlist_only and self.persisted_queries_file is None:
            raise ValueError("TOLLGATE_ALLOWLIST_ONLY needs TOLLGATE_PERSISTED_QUERIES_FILE")
        return self

    @model_validator(mode="after")
    def _trusted_proxies_are_addresses(self) -> Settings:
        try:
            self.trusted_proxy_networks  # noqa: B018 (parsed once here, to refuse a typo at startup)
        except ValueError as error:
            raise ValueError(f"TOLLGATE_TRUSTED_PROXIES: {error}") from None
        return self

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Settings:
        if self.env == "production":
            insecure = [
                name
                for name, value, default in (
                    ("TOLLGATE_JWT_SECRET", self.jwt_secret, DEV_JWT_SECRET),
                    ("TOLLGATE_ENCRYPTION_KEY", self.encryption_key, DEV_ENCRYPTION_KEY),
                )
                if value == default or not value
            ]
            if insecure:
                raise ValueError(
                    f"{', '.join(insecure)} still hold the development default; "
                    "set real secrets when TOLLGATE_ENV=production"
                )
            if len(self.jwt_secret) < 32:
                raise ValueError("TOLLGATE_JWT_SECRET must be at least 32 characters in production")
        return self

    @model_validator(mode="after")
    def _encryption_keys_are_fernet_keys(self) -> Settings:
        # Key rotation: a list, newest first. Each must be a Fernet key, and in production the
        # development key may not appear anywhere in it (it would still decrypt).
        keys = self.encryption_keys
        if not keys:
            raise ValueError("TOLLGATE_ENCRYPTION_KEY needs at least one Fernet key")
        for position, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(
                    f"TOLLGATE_ENCRYPTION_KEY: key {position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; Fernet.generate_key() makes one)"
                ) from None
        if self.env == "production" and DEV_ENCRYPTION_KEY in keys:
            raise ValueError(
                "TOLLGATE_ENCRYPTION_KEY still holds the development default; "
                "set real secrets when TOLLGATE_ENV=production"
            )
        return self

    @property
    def encryption_keys(self) -> list[str]:
        """The Fernet keys of ``TOLLGATE_ENCRYPTION_KEY``, newest (the encrypting one) first."""
        return [key.strip() for key in self.encryption_key.split(",") if key.strip()]

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """``TOLLGATE_TRUSTED_PROXIES`` parsed: a bare address is a network of one."""
        return tuple(
            ip_network(entry.strip(), strict=False)
            for entry in self.trusted_proxies.split(",")
            if entry.strip()
        )

    @property
    def query_limits(self) -> QueryLimits:
        suggestions = self.env != "production" if self.field_suggestions is None else self.field_suggestions
        return QueryLimits(
            max_depth=self.max_query_depth,
            max_aliases=self.max_query_aliases,
            max_tokens=self.max_query_tokens,
            introspection=self.introspection,
            suggestions=suggestions,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def cors_origins(entries: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Origins as browsers send them in ``Origin``: lower-case scheme and host, no default port.

    Each entry must be ``http(s)://host[:port]``: no path (not even a trailing slash), query or user. ``*``
    (any origin) may only stand alone."""
    found: list[str] = []
    for raw in entries:
        entry = str(raw).strip()
        if entry == "*":
            if len(entries) > 1:
                raise ValueError("'*' (any origin) cannot be listed beside other origins")
            return ("*",)
        try:
            parts = urlsplit(entry)
            port = parts.port
        except ValueError:
            raise ValueError(f"{entry!r} is not an origin") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"{entry!r} is not an origin: expected http(s)://host[:port]")
        if parts.path or parts.query or parts.fragment or parts.username or entry.endswith(("?", "#")):
            raise ValueError(f"{entry!r} is not an origin: no path, trailing slash, query or user")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        origin = f"{scheme}://{host}" + (
            f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else ""
        )
        if origin not in found:
            found.append(origin)
    return tuple(found)


@lru_cache
def get_settings() -> Settings:
    return Settings()
