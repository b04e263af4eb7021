"""Applying the migrations, safely from several instances starting at once.

PostgreSQL: a session-level advisory lock serialises the runs; the second finds everything applied.
SQLite: an exclusive lock on a file beside the database does the same for processes on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate as run_migrations

from app.db import tortoise_config
from app.settings import Settings

# Any constant shared by every instance: "tollgate" in ASCII.
ADVISORY_LOCK_KEY = 0x746F6C6C67617465


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.asynccontextmanager
async def migration_lock(database_url: str) -> AsyncIterator[None]:
    if database_url.startswith("sqlite"):
        location = database_url.removeprefix("sqlite://").split("?", 1)[0]
        if location in ("", ":memory:"):
            yield
            return
        lock_path = Path(location + ".migrate.lock")
        # flock blocks: take it in a thread, release it there too.
        lock = _file_lock(lock_path)
        await asyncio.to_thread(lock.__enter__)
        try:
            yield
        finally:
            await asyncio.to_thread(lock.__exit__, None, None, None)
        return
    dsn = database_url.replace("postgres://", "postgresql://", 1).replace("asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            yield
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await connection.close()


async def migrate_database(settings: Settings) -> None:
    async with migration_lock(settings.database_url):
        try:
            await run_migrations(config=tortoise_config(settings))
        finally:
            await Tortoise.close_connections()
