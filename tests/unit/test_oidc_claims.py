"""Reading an identity provider's claims, and the OIDC settings refused at startup (docs/identity.md)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.auth.oidc import claim, identity_of
from app.models.enums import Role
from app.services.errors import Unauthenticated
from app.settings import Settings

OIDC = {"oidc_issuer": "https://login.example.com/", "oidc_audience": "https://api.tollgate.example"}


def settings(**changes: Any) -> Settings:
    return Settings(env="test", **{**OIDC, **changes})


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "auth0|5f7c",
        "email": "Ana@Example.com",
        "name": "Ana",
        "tollgate_environment": "acme",
        "tollgate_role": "admin",
        "locale": "pt-BR",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def test_an_identity_is_read_through_the_configured_claim_names() -> None:
    identity = identity_of(claims(), settings())

    assert identity.environment == "acme"
    assert identity.external_id == "auth0|5f7c"
    assert identity.email == "ana@example.com"  # one spelling per address: e-mails are unique
    assert (identity.name, identity.role, identity.locale) == ("Ana", Role.ADMIN, "pt-BR")


def test_auth0_namespaced_claims_are_read_by_their_literal_name() -> None:
    auth0 = settings(
        oidc_environment_claim="https://tollgate.example/environment",
        oidc_role_claim="https://tollgate.example/roles",
    )
    token = claims(
        **{"https://tollgate.example/environment": "nova", "https://tollgate.example/roles": ["admin"]}
    )

    identity = identity_of(token, auth0)

    assert (identity.environment, identity.role) == ("nova", Role.ADMIN)


def test_keycloak_realm_roles_are_read_by_a_dotted_path() -> None:
    keycloak = settings(oidc_role_claim="realm_access.roles", oidc_admin_roles="tollgate-admin, owner")

    admin = identity_of(claims(realm_access={"roles": ["offline_access", "owner"]}), keycloak)
    member = identity_of(claims(realm_access={"roles": ["offline_access"]}), keycloak)
    no_roles = identity_of(claims(realm_access="nonsense"), keycloak)

    assert (admin.role, member.role, no_roles.role) == (Role.ADMIN, Role.MEMBER, Role.MEMBER)
    assert claim({"a": {"b": {"c": 1}}}, "a.b.c") == 1
    assert claim({"a.b": 2, "a": {"b": 3}}, "a.b") == 2


@pytest.mark.parametrize("role", [None, "Admin", "member", ["viewer"], 1, {"admin": True}, [["admin"]]])
def test_anything_but_an_admin_role_value_is_a_member(role: Any) -> None:
    assert identity_of(claims(tollgate_role=role), settings()).role == Role.MEMBER


def test_a_missing_name_is_the_email_and_a_long_one_is_shortened() -> None:
    assert identity_of(claims(name=None), settings()).name == "ana@example.com"
    assert identity_of(claims(name="N" * 500), settings()).name == "N" * 200


@pytest.mark.parametrize("locale", ["", "pt_BR", "x" * 17, "pt-BR\n", 42, "<script>"])
def test_an_unusable_locale_is_ignored_rather_than_refusing_the_user(locale: Any) -> None:
    assert identity_of(claims(locale=locale), settings()).locale is None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"sub": None}, "sub"),
        ({"sub": ""}, "sub"),
        ({"sub": 12345}, "sub"),
        ({"sub": "s" * 256}, "sub"),
        ({"email": None}, "email"),
        ({"email": "no-at-sign"}, "email"),
        ({"email": "a b@example.com"}, "email"),
        ({"email": "e" * 250 + "@x.io"}, "email"),
        ({"email": "a\x00@example.com"}, "email"),
        ({"tollgate_environment": None}, "tollgate_environment"),
        ({"tollgate_environment": "e" * 65}, "tollgate_environment"),
        ({"name": ["Ana"]}, "name"),
        ({"name": "Ana\x1b[31m"}, "name"),
    ],
)
def test_a_missing_or_unusable_claim_is_refused_by_name(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        identity_of(claims(**changes), settings())

    assert refused.value.details == {"reason": "TOKEN_INVALID"}
    assert repr(named) in refused.value.message


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"oidc_audience": None}, "TOLLGATE_OIDC_AUDIENCE is required"),
        ({"oidc_algorithms": "RS256,HS256"}, "HS256"),
        ({"oidc_algorithms": "none"}, "none"),
        ({"oidc_algorithms": " , "}, "none given"),
        ({"oidc_issuer": "tollgate"}, "TOLLGATE_OIDC_ISSUER"),
        ({"oidc_issuer": "urn:example"}, "must be an http(s) URL"),
        ({"oidc_jwks_url": "file:///etc/keys.json"}, "must be an http(s) URL"),
        ({"oidc_email_claim": " "}, "TOLLGATE_OIDC_EMAIL_CLAIM"),
        ({"oidc_jwks_cache_seconds": -1}, "oidc_jwks_cache_seconds"),
    ],
)
def test_oidc_settings_that_would_accept_forgeries_or_nothing_are_refused(
    changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(**changes)

    assert complaint in str(refused.value)


def test_oidc_is_off_without_an_issuer_and_on_with_one() -> None:
    assert Settings(env="test").oidc_issuer is None
    assert settings(oidc_issuer="urn:example", oidc_jwks_url="https://login.example/keys").oidc_issuer
    assert settings(oidc_algorithms="ES256").oidc_algorithms == "ES256"
