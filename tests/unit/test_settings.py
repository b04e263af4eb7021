import os

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from app.settings import DEV_JWT_SECRET, Settings

REAL_KEY = Fernet.generate_key().decode()


def test_defaults_are_local_and_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("TOLLGATE_")]:
        monkeypatch.delenv(name)
    settings = Settings()
    assert settings.database_url.startswith("sqlite://")
    assert settings.store_eligible_since.isoformat() == "2022-01-01"


def test_environment_variables_configure_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLGATE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tollgate")
    monkeypatch.setenv("TOLLGATE_STORE_ELIGIBLE_SINCE", "2023-01-01")
    settings = Settings()
    assert settings.database_url == "postgres://postgres@127.0.0.1:5432/tollgate"
    assert settings.store_eligible_since.year == 2023


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError, match="TOLLGATE_JWT_SECRET, TOLLGATE_ENCRYPTION_KEY"):
        Settings(env="production")
    with pytest.raises(ValidationError, match="TOLLGATE_ENCRYPTION_KEY"):
        Settings(env="production", jwt_secret="s" * 40)
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", jwt_secret="short", encryption_key=REAL_KEY)


def test_production_accepts_real_secrets() -> None:
    settings = Settings(env="production", jwt_secret="s" * 40, encryption_key=REAL_KEY)
    assert settings.jwt_secret != DEV_JWT_SECRET
