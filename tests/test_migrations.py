"""The migrations build the schema the models describe, on SQLite and (in CI) on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from tortoise import Tortoise, connections

from app.migrate import migrate_database
from app.models import MODEL_MODULES
from app.settings import Settings
from tests.conftest import database_url


@pytest.fixture
async def fresh_database_url(tmp_path: Path) -> AsyncIterator[str]:
    url = database_url()
    if url.startswith("sqlite"):
        yield f"sqlite://{tmp_path / 'migrated.sqlite3'}"
        return
    base, _, name = url.rpartition("/")
    admin_dsn = base.replace("postgres://", "postgresql://", 1) + "/postgres"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def columns_by_table(url: str) -> dict[str, set[str]]:
    await Tortoise.init(db_url=url, modules={"models": MODEL_MODULES})
    try:
        connection = connections.get("default")
        if url.startswith("sqlite"):
            _, tables = await connection.execute_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            result = {}
            for table in tables:
                _, columns = await connection.execute_query(f'PRAGMA table_info("{table["name"]}")')
                result[table["name"]] = {column["name"] for column in columns}
            return result
        _, rows = await connection.execute_query(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        )
        result = {}
        for row in rows:
            result.setdefault(row["table_name"], set()).add(row["column_name"])
        return result
    finally:
        await Tortoise.close_connections()


def model_columns() -> dict[str, set[str]]:
    expected = {}
    for model in Tortoise.apps["models"].values():
        expected[model._meta.db_table] = set(model._meta.fields_db_projection.values())
    return expected


async def test_migrations_create_every_table_and_column_of_the_models(fresh_database_url: str) -> None:
    settings = Settings(database_url=fresh_database_url)

    await migrate_database(settings)
    await migrate_database(settings)  # a second run is a no-op

    actual = await columns_by_table(fresh_database_url)
    await Tortoise.init(db_url="sqlite://:memory:", modules={"models": MODEL_MODULES})
    try:
        expected = model_columns()
    finally:
        await Tortoise.close_connections()
    for table, columns in expected.items():
        assert actual.get(table) == columns, f"table {table} differs from its model: run makemigrations"


def test_concurrent_migrations_from_several_instances(fresh_database_url: str) -> None:
    """Three processes migrating one database at once: the lock serialises them and all succeed."""
    env = {**os.environ, "TOLLGATE_DATABASE_URL": fresh_database_url}
    processes = [
        subprocess.Popen([sys.executable, "-m", "app", "migrate"], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(*process.communicate(timeout=120), process.returncode) for process in processes]

    assert [code for _, _, code in results] == [0, 0, 0], results
    assert "tenant" in asyncio.run(columns_by_table(fresh_database_url))
