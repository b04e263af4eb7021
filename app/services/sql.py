"""Hand-written statements for the hot paths, where building SQL through the ORM costs more than running it.

A template names its parameters ``{0}``, ``{1}``...; each may appear more than once. They become ``$1``
(PostgreSQL) or ``?1`` (SQLite), so a value is passed once whatever the number of its uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

from tortoise import connections


@cache
def _render(template: str, dialect: str, parameters: int) -> str:
    mark = "$" if dialect == "postgres" else "?"
    return template.format(*(f"{mark}{n}" for n in range(1, parameters + 1)))


async def fetch_one(template: str, *values: Any) -> Sequence[Any]:
    """The first row of a statement that returns exactly one (aggregates, scalar subqueries)."""
    connection = connections.get("default")
    dialect = connection.capabilities.dialect
    if dialect != "postgres":  # SQLite stores UUIDs as text
        values = tuple(str(value) if isinstance(value, uuid.UUID) else value for value in values)
    _, rows = await connection.execute_query(_render(template, dialect, len(values)), list(values))
    return tuple(rows[0])
