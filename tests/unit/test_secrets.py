"""Secrets at rest: Fernet with key rotation (the first key encrypts, every key decrypts), the settings
that hold the keys, and re-encrypting stored integration secrets with a new key."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from app.clock import FrozenClock
from app.models.billing import AddOnSubscription
from app.models.catalog import AddOn
from app.models.enums import ConfigurationStatus
from app.models.tenancy import Tenant
from app.seed import SeedResult
from app.services.integrations import reencrypt_secrets, reveal_secret
from app.services.secrets import SecretBox, SecretUndecryptable, box_from_settings
from app.settings import DEV_ENCRYPTION_KEY, Settings

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
REAL_JWT = "j" * 40


def test_a_secret_round_trips_and_is_not_stored_in_clear() -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt("tok_live_123456")
    assert "tok_live_123456" not in token
    assert box.decrypt(token) == "tok_live_123456"
    # Fernet tokens carry a random IV: the same secret never encrypts to the same token twice.
    assert box.encrypt("tok_live_123456") != token


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    token_of_old_key = SecretBox([OLD_KEY]).encrypt("old secret")
    rotated_box = SecretBox([NEW_KEY, OLD_KEY])

    assert rotated_box.decrypt(token_of_old_key) == "old secret"
    new_token = rotated_box.encrypt("new secret")
    assert SecretBox([NEW_KEY]).decrypt(new_token) == "new secret"
    with pytest.raises(SecretUndecryptable):
        SecretBox([OLD_KEY]).decrypt(new_token)


def test_rotate_re_encrypts_with_the_newest_key() -> None:
    token = SecretBox([OLD_KEY]).encrypt("s3cret")
    box = SecretBox([NEW_KEY, OLD_KEY])
    assert not box.is_current(token)

    rotated = box.rotate(token)

    assert box.is_current(rotated)
    assert SecretBox([NEW_KEY]).decrypt(rotated) == "s3cret"  # the old key can now be dropped


def test_a_token_no_key_opens_is_a_clear_error() -> None:
    token = SecretBox([OLD_KEY]).encrypt("s3cret")
    with pytest.raises(SecretUndecryptable):
        SecretBox([NEW_KEY]).decrypt(token)
    with pytest.raises(SecretUndecryptable):
        SecretBox([NEW_KEY]).decrypt("not a token")


def test_settings_take_a_comma_separated_list_of_keys_newest_first() -> None:
    settings = Settings(encryption_key=f" {NEW_KEY} , {OLD_KEY} ")
    assert settings.encryption_keys == [NEW_KEY, OLD_KEY]
    box = box_from_settings(settings)
    assert SecretBox([NEW_KEY]).decrypt(box.encrypt("x")) == "x"


def test_a_single_key_setting_still_works_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOLLGATE_ENCRYPTION_KEY", raising=False)
    assert Settings(encryption_key=OLD_KEY).encryption_keys == [OLD_KEY]
    assert Settings().encryption_keys == [DEV_ENCRYPTION_KEY]


def test_a_key_that_is_not_a_fernet_key_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="key 2 is not a Fernet key"):
        Settings(encryption_key=f"{NEW_KEY},not-a-key")
    with pytest.raises(ValidationError, match="at least one Fernet key"):
        Settings(encryption_key=" , ")


def test_production_refuses_the_development_key_even_as_an_old_key() -> None:
    with pytest.raises(ValidationError, match="TOLLGATE_ENCRYPTION_KEY"):
        Settings(env="production", jwt_secret=REAL_JWT, encryption_key=f"{NEW_KEY},{DEV_ENCRYPTION_KEY}")
    assert Settings(env="production", jwt_secret=REAL_JWT, encryption_key=f"{NEW_KEY},{OLD_KEY}")


async def test_reencrypting_stored_secrets_lets_the_old_key_be_dropped(
    demo: SeedResult, clock: FrozenClock
) -> None:
    old_box = SecretBox([OLD_KEY])
    nova = await Tenant.get(slug="nova")
    shopify = await AddOn.get(code="integration-shopify")
    subscription = await AddOnSubscription.create(
        tenant=nova,
        add_on=shopify,
        unit_price=Decimal("59.90"),
        currency="BRL",
        contracted_at=clock.now() - dt.timedelta(days=3),
        configuration_status=ConfigurationStatus.CONFIGURED,
        configuration={"api_token": {"fernet": old_box.encrypt("shp_abc")}, "shop_url": "https://n.example"},
    )
    new_box = SecretBox([NEW_KEY, OLD_KEY])

    assert await reencrypt_secrets(new_box) == 1
    assert await reencrypt_secrets(new_box) == 0  # nothing left to rotate

    stored = await AddOnSubscription.get(id=subscription.id)
    assert reveal_secret(stored, "api_token", SecretBox([NEW_KEY])) == "shp_abc"
    assert stored.configuration["shop_url"] == "https://n.example"
    with pytest.raises(SecretUndecryptable):
        reveal_secret(stored, "api_token", old_box)
