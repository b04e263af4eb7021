"""The public catalog of plans and add-ons."""

from __future__ import annotations

from app.models.catalog import AddOn, Plan
from app.models.enums import AddOnCategory
from app.services.errors import NotFound, shown

MAX_CODE_LENGTH = 64  # AddOn.code


async def list_plans() -> list[Plan]:
    return await Plan.filter(is_active=True)


async def list_add_ons(category: AddOnCategory | None = None) -> list[AddOn]:
    query = AddOn.filter(is_active=True)
    if category is not None:
        query = query.filter(category=category)
    return await query


async def get_add_on(code: str) -> AddOn:
    add_on = None
    # A code longer than the column, or with characters no code has (PostgreSQL refuses NUL in text),
    # names no add-on: it is not sent to the database.
    if len(code) <= MAX_CODE_LENGTH and code.isprintable():
        add_on = await AddOn.get_or_none(code=code, is_active=True)
    if add_on is None:
        raise NotFound(f"No add-on with code {shown(code)}.", field="code")
    return add_on
