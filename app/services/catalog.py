"""The public catalog of plans and add-ons."""

from __future__ import annotations

import re

from app.i18n import _
from app.models.catalog import AddOn, Plan
from app.models.enums import AddOnCategory
from app.services.errors import DomainError, ErrorCode, NotFound, shown

MAX_CODE_LENGTH = 64  # AddOn.code
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class NotSoldForErp(DomainError):
    """The add-on is sold for some ERPs only, and not for the environment's (or it has none):
    the environment may ask for a quote instead (``requestQuote``)."""

    code = ErrorCode.NOT_SOLD_FOR_ERP
    default_message = _("This add-on is not sold for the environment's ERP: ask for a quote.")


def sold_for_erps(add_on: AddOn) -> list[str]:
    """The ERPs the add-on is sold for, sorted; empty: every ERP (at its ``prices``)."""
    return sorted(add_on.erp_prices)


def prices_for(add_on: AddOn, erp: str | None) -> dict[str, str] | None:
    """The add-on's prices for an environment running ``erp``: its ERP's own prices when the add-on is
    sold per ERP, else its ``prices``; None when it is not sold for that ERP (or the environment has
    none): quote-only."""
    if not add_on.erp_prices:
        return dict(add_on.prices)
    if erp is None or erp not in add_on.erp_prices:
        return None
    return dict(add_on.erp_prices[erp])


def require_sold_for(add_on: AddOn, erp: str | None, *, field: str = "addOnCode") -> dict[str, str]:
    """``prices_for``, or ``NotSoldForErp`` naming the add-on, the ERP and the ERPs it is sold for."""
    prices = prices_for(add_on, erp)
    if prices is None:
        erps = sold_for_erps(add_on)
        running = f"the ERP {erp}" if erp else "an environment without an ERP"
        raise NotSoldForErp(
            _(
                "{name} is sold in the store for {erps} only, not for {running}: ask for a quote "
                "(requestQuote).",
                name=add_on.name,
                erps=", ".join(erps),
                running=running,
            ),
            field=field,
            add_on_code=add_on.code,
            erp=erp,
            sold_for_erps=erps,
        )
    return prices


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
        raise NotFound(_("No add-on with code {code}.", code=shown(code)), field="code")
    return add_on


def plausible_code(code: str) -> str | None:
    """The code without surrounding spaces, or None when it cannot be a catalog code (too long,
    control characters...): such input is answered without reaching the database."""
    normalised = code.strip()
    return normalised if _CODE.match(normalised) else None
