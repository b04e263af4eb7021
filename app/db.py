"""Tortoise configuration, shared by the app, the command line and Tortoise's own migration CLI."""

from __future__ import annotations

from typing import Any

from app.models import MODEL_MODULES
from app.settings import Settings, get_settings


def tortoise_config(settings: Settings) -> dict[str, Any]:
    return {
        "connections": {"default": settings.database_url},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "app.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Read by `tortoise makemigrations` through [tool.tortoise] in pyproject.toml.
TORTOISE_ORM = tortoise_config(get_settings())
