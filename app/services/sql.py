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


_WRITES = ("INSERT", "UPDATE", "DELETE")


def _read(template: str, values: tuple[Any, ...]) -> tuple[Any, str, list[Any]]:
    """``_prepared`` for ``fetch_one`` / ``fetch_rows``, which run through Tortoise's ``execute_query``: on
    PostgreSQL it sends INSERT, UPDATE and DELETE through asyncpg's ``execute()``, which returns no rows, so
    a write's ``RETURNING`` would silently come back empty there (and not on SQLite). Writes that return rows
    go through ``fetch_first`` / ``fetch_all``; writes that return none through ``execute``."""
    if template.lstrip()[:6].upper() in _WRITES:
        raise ValueError("a write: use fetch_first or fetch_all (RETURNING) or execute")
    return _prepared(template, values)


async def fetch_one(template: str, *values: Any) -> Sequence[Any]:
    """The first row of a read that returns exactly one (aggregates, scalar subqueries)."""
    connection, statement, parameters = _read(template, values)
    _, rows = await connection.execute_query(statement, parameters)
    return tuple(rows[0])


async def fetch_rows(template: str, *values: Any) -> list[tuple[Any, ...]]:
    """Every row of a read by position (for statements whose columns repeat a name)."""
    connection, statement, parameters = _read(template, values)
    _, rows = await connection.execute_query(statement, parameters)
    return [tuple(row) for row in rows]


async def execute(template: str, *values: Any) -> int:
    """A write that returns no rows; the number of rows it changed."""
    connection, statement, parameters = _prepared(template, values)
    changed, _ = await connection.execute_query(statement, parameters)
    return int(changed)


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


def columns_of(model: type[Model], alias: str) -> str:
    """The columns of ``model``'s table named ``alias`` in a statement, each as ``<alias>_<column>``."""
    return ", ".join(f'{alias}."{column}" AS "{alias}_{column}"' for column in sorted(model._meta.db_fields))


def instance_of(model: type[ModelT], alias: str, row: dict[str, Any]) -> ModelT:
    """The ``model`` instance from a row's ``columns_of(model, alias)``, converted as the ORM converts."""
    return model._init_from_db(**{column: row[f"{alias}_{column}"] for column in model._meta.db_fields})


@cache
def with_tenant(model: type[Model], where: str) -> str:
    """A statement reading rows of ``model`` with their tenant: columns ``m_<column>`` and ``t_<column>``
    (see ``split_with_tenant``); ``where`` names the model's table ``m``."""
    return (
        f'SELECT {columns_of(model, "m")}, {columns_of(Tenant, "t")} FROM "{model._meta.db_table}" AS m'
        f' JOIN "{Tenant._meta.db_table}" AS t ON t."id" = m."tenant_id" WHERE {where}'
    )


def split_with_tenant(model: type[ModelT], row: dict[str, Any]) -> tuple[ModelT, Tenant]:
    """The model instance and its tenant from a ``with_tenant`` row, converted as the ORM converts."""
    return instance_of(model, "m", row), instance_of(Tenant, "t", row)
