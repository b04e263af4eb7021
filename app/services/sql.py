"""Hand-written statements for the hot paths, where building SQL through the ORM costs more than running it.

A template names its parameters ``{0}``, ``{1}``...; each may appear more than once. They become ``$1``
(PostgreSQL) or ``?1`` (SQLite), so a value is passed once whatever the number of its uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from tortoise import connections
from tortoise.models import Model

from app.models.tenancy import Tenant

ModelT = TypeVar("ModelT", bound=Model)


@cache
def _render(template: str, dialect: str, parameters: int) -> str:
    mark = "$" if dialect == "postgres" else "?"
    return template.format(*(f"{mark}{n}" for n in range(1, parameters + 1)))


def _prepared(template: str, values: tuple[Any, ...]) -> tuple[Any, str, list[Any]]:
    connection = connections.get("default")
    dialect = connection.capabilities.dialect
    if dialect != "postgres":  # SQLite stores UUIDs as text
        values = tuple(str(value) if isinstance(value, uuid.UUID) else value for value in values)
    return connection, _render(template, dialect, len(values)), list(values)


async def fetch_one(template: str, *values: Any) -> Sequence[Any]:
    """The first row of a statement that returns exactly one (aggregates, scalar subqueries)."""
    connection, statement, parameters = _prepared(template, values)
    _, rows = await connection.execute_query(statement, parameters)
    return tuple(rows[0])


async def fetch_rows(template: str, *values: Any) -> list[tuple[Any, ...]]:
    """Every row by position (for statements whose columns repeat a name)."""
    connection, statement, parameters = _prepared(template, values)
    _, rows = await connection.execute_query(statement, parameters)
    return [tuple(row) for row in rows]


async def fetch_first(template: str, *values: Any) -> dict[str, Any] | None:
    """The first row by column name, or ``None`` when there is none."""
    connection, statement, parameters = _prepared(template, values)
    rows = await connection.execute_query_dict(statement, parameters)
    return rows[0] if rows else None


async def fetch_all(template: str, *values: Any) -> list[dict[str, Any]]:
    """Every row by column name."""
    connection, statement, parameters = _prepared(template, values)
    rows: list[dict[str, Any]] = await connection.execute_query_dict(statement, parameters)
    return rows


@cache
def with_tenant(model: type[Model], where: str) -> str:
    """A statement reading rows of ``model`` with their tenant: columns ``m_<column>`` and ``t_<column>``
    (see ``split_with_tenant``); ``where`` names the model's table ``m``."""
    own = ", ".join(f'm."{column}" AS "m_{column}"' for column in sorted(model._meta.db_fields))
    tenant = ", ".join(f't."{column}" AS "t_{column}"' for column in sorted(Tenant._meta.db_fields))
    return (
        f'SELECT {own}, {tenant} FROM "{model._meta.db_table}" AS m'
        f' JOIN "{Tenant._meta.db_table}" AS t ON t."id" = m."tenant_id" WHERE {where}'
    )


def split_with_tenant(model: type[ModelT], row: dict[str, Any]) -> tuple[ModelT, Tenant]:
    """The model instance and its tenant from a ``with_tenant`` row, converted as the ORM converts."""
    instance = model._init_from_db(**{column: row[f"m_{column}"] for column in model._meta.db_fields})
    tenant = Tenant._init_from_db(**{column: row[f"t_{column}"] for column in Tenant._meta.db_fields})
    return instance, tenant
