"""The provisioning rules' pure parts: what a slug, an e-mail, a name may be; the credential cache forgetting
one tenant's credentials and no other's."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.auth.principal import Principal, PrincipalCache
from app.models.tenancy import Tenant
from app.services.errors import InvalidInput
from app.services.provisioning import valid_email, valid_external_id, valid_name, valid_slug

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize("slug", ["ab", "a-b", "loja-nova-2", "a" * 64, "0x"])
def test_slugs_accepted(slug: str) -> None:
    assert valid_slug(slug) == slug


@pytest.mark.parametrize(
    "slug", ["a", "", "-ab", "ab-", "Ab", "a_b", "a b", "ab\n", "a" * 65, "ação", "ab\x00", "\uff41b"]
)
def test_slugs_refused(slug: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        valid_slug(slug)
    assert refused.value.field == "slug"
    assert len(refused.value.message) < 200


@pytest.mark.parametrize(
    ("given", "stored"),
    [("Ana@Example.COM", "ana@example.com"), (" a.b+c@x-y.example.org ", "a.b+c@x-y.example.org")],
)
def test_emails_are_stored_lower_cased(given: str, stored: str) -> None:
    assert valid_email(given) == stored


@pytest.mark.parametrize(
    "email",
    [
        "",
        "a",
        "a@b",
        "a@@b.com",
        "a b@c.com",
        "a@b.c",
        ".a@b.com",
        "a..b@c.com",
        "a@-b.com",
        f"{'a' * 65}@b.com",
    ],
)
def test_emails_refused(email: str) -> None:
    with pytest.raises(InvalidInput):
        valid_email(email)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "a\x00b", "a\nb", "a\u2028b", "a\u202eb"])
def test_names_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        valid_name(name, field="input.name")


def test_names_are_trimmed_and_may_be_200_characters_of_anything_printable() -> None:
    assert valid_name("  Ç" * 1 + "ã" * 199 + " ", field="n") == "Ç" + "ã" * 199
    assert valid_external_id("é" * 255) == "é" * 255


async def test_the_credential_cache_drops_one_tenants_credentials_only() -> None:
    cache = PrincipalCache(60)
    mine, other = (Tenant(id=uuid.uuid4(), slug=slug) for slug in ("mine", "other"))
    loads: list[str] = []

    async def remember(credential: str, tenant: Tenant) -> None:
        async def verify() -> tuple[Principal, dt.datetime | None]:
            loads.append(credential)
            return Principal(tenant=tenant), None

        await cache.principal(credential, NOW, verify)

    for credential, tenant in (("tg_a_1", mine), ("tg_b_2", other), ("tg_c_3", mine)):
        await remember(credential, tenant)
    cache.drop_tenant(str(mine.id))
    for credential, tenant in (("tg_a_1", mine), ("tg_b_2", other), ("tg_c_3", mine)):
        await remember(credential, tenant)

    assert loads == ["tg_a_1", "tg_b_2", "tg_c_3", "tg_a_1", "tg_c_3"]
