"""The public catalog of plans and add-ons."""

from __future__ import annotations

import re

from app.models.catalog import AddOn, Plan
from app.models.enums import AddOnCategory
from app.services.errors import NotFound, shown

MAX_CODE_LENGTH = 64  # AddOn.code
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


async def list_plans() -> list[Plan]:
    return await Plan.filter(is_active=True)


async def list_add_ons(category: AddOnCategory | None = None) -> list[AddOn]:
    query = AddOn.filter(is_active=True)
    if category is not None:
        query = query.filter(category=category)
    return await query


async def get_add_on(code: str) -> AddOn:
    # A code longer than the column, or with characters no code has (PostgreSQL refuses NUL in text),
    # names no add-on: it is not sent to the database.
    add_on = await AddOn.get_or_none(code=code, is_active=True) if plausible_code(code) == code else None
    if add_on is None:
        raise NotFound(f"No add-on with code {shown(code)}.", field="code")
    return add_on


def plausible_code(code: str) -> str | None:
    """The code without surrounding spaces, or None when it cannot be a catalog code (too long,
    control characters...): such input is answered without reaching the database."""
    normalised = code.strip()
    return normalised if _CODE.match(normalised) else None
