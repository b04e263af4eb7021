"""Applying a catalog file to the database (issue 13, "catalog as data"), and exporting it back.

The rules (docs/catalog.md):
- The file says what is on sale. An item of the file that the database lacks is created; one whose fields
  differ is updated; one the database sells that the file no longer lists stops being sold
  (``is_active=False``), never deleted: its subscriptions continue. An item back in the file is sold again.
- A price change never alters what customers already contracted: add-on subscriptions and plan
  subscriptions carry the price they were contracted at (``unit_price``), and every reader of a
  subscription's price reads that snapshot; new purchases pay the new catalog price. A plan subscription
  that has no snapshot yet (a row older than it) gets its current price written before the price changes.
- Everything is applied in one transaction, or nothing (``dry_run``); the diff shown is the one applied.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from io import StringIO
from typing import Any

from ruamel.yaml import YAML
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app import money
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.models.enums import PlanSubscriptionStatus, StoragePolicy
from app.services.catalog_file import DEFAULT_LOCALE, AddOnSpec, Catalog, PlanSpec

CHANNEL = "catalog-changed"  # running gateways drop their catalog answers and plan caches on it
MB_PER_GB = 1024
_SHOWN_LENGTH = 80


class Action(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    REMOVED = "removed"  # stops being sold
    REACTIVATED = "reactivated"


@dataclass(frozen=True, slots=True)
class FieldChange:
    name: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class ItemChange:
    """One plan or add-on that differs; ``continuing`` counts its active subscriptions, which keep their
    price (a price change) or go on (a removal)."""

    kind: str  # "plan" or "add-on"
    code: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    continuing: int = 0

    def lines(self) -> list[str]:
        head = f"{self.kind} {self.code}"
        if self.action == Action.NEW:
            return [f"+ {head}: new"]
        if self.action == Action.REMOVED:
            return [
                f"- {head}: stops being sold; {self.continuing} active subscription"
                f"{'s' if self.continuing != 1 else ''} continue{'s' if self.continuing == 1 else ''}"
            ]
        lines = [f"~ {head}: sold again"] if self.action == Action.REACTIVATED else []
        for change in self.fields:
            lines.append(f"~ {head}: {change.name}: {_shown(change.old)} -> {_shown(change.new)}")
            if change.name in {"prices", "unit price"}:
                lines.append(
                    f"  {self.continuing} contracted subscription{'s' if self.continuing != 1 else ''} "
                    "keep their price; new purchases pay the new one"
                )
        return lines


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    changes: tuple[ItemChange, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.changes

    def lines(self) -> list[str]:
        if self.empty:
            return ["no changes"]
        lines = [line for change in self.changes for line in change.lines()]
        counts = {action: sum(1 for c in self.changes if c.action == action) for action in Action}
        lines.append(
            f"{counts[Action.NEW]} new, {counts[Action.CHANGED]} changed, {counts[Action.REMOVED]} no longer "
            f"sold, {counts[Action.REACTIVATED]} sold again"
        )
        return lines


class CatalogConflict(Exception):
    """Another apply committed the same new codes meanwhile: nothing was applied; run it again."""


def plan_row(spec: PlanSpec, order: int) -> dict[str, Any]:
    """The ``Plan`` columns a file's plan stands for."""
    return {
        "name": spec.name[DEFAULT_LOCALE],
        "description": spec.description.get(DEFAULT_LOCALE, ""),
        "names": dict(spec.name),
        "descriptions": dict(spec.description),
        "prices": _prices(spec.prices),
        "features": list(spec.features),
        "storage_mb": spec.limits.storage_gb * MB_PER_GB,
        "users": spec.limits.users,
        "integrations": spec.limits.integrations,
        "credits": spec.limits.credits,
        "storage_policy": spec.storage_policy,
        "overage_prices_per_gb": _prices(spec.overage_per_gb),
        "process_buffer_percent": spec.process_buffer_percent,
        "change_fees": _prices(spec.change_fee),
        "sort_order": order,
    }


def add_on_row(spec: AddOnSpec, order: int) -> dict[str, Any]:
    """The ``AddOn`` columns a file's add-on stands for; it needs configuration when it declares fields."""
    return {
        "name": spec.name[DEFAULT_LOCALE],
        "description": spec.description.get(DEFAULT_LOCALE, ""),
        "names": dict(spec.name),
        "descriptions": dict(spec.description),
        "conditions": dict(spec.conditions),
        "category": spec.category,
        "prices": _prices(spec.prices),
        "cadence": spec.cadence,
        "is_free": spec.free,
        "increment_storage_mb": spec.increments.storage_mb,
        "increment_users": spec.increments.users,
        "increment_integrations": spec.increments.integrations,
        "increment_credits": spec.increments.credits,
        "features": list(spec.features),
        "eligible_plan_codes": list(spec.eligible_plans),
        "max_quantity": spec.max_quantity,
        "requires_add_on_codes": list(spec.requires),
        "requires_configuration": bool(spec.configuration),
        "configuration_fields": [
            {
                "name": setting.name,
                "label": setting.label,
                "kind": str(setting.kind),
                "secret": setting.is_secret,
                "required": setting.required,
            }
            for setting in spec.configuration
        ],
        "erp_prices": {erp: _prices(prices) for erp, prices in spec.erp_prices.items()},
        "sort_order": order,
    }


async def diff(catalog: Catalog, *, now: dt.datetime) -> CatalogDiff:
    """What applying ``catalog`` would change, item by item, in file order then removals."""
    plans = {plan.code: plan for plan in await Plan.all()}
    add_ons = {add_on.code: add_on for add_on in await AddOn.all()}
    changes: list[ItemChange] = []
    for order, plan_spec in enumerate(catalog.plans):
        changes += await _item_change(
            "plan", plans.get(plan_spec.code), plan_spec.code, plan_row(plan_spec, order), now
        )
    for order, add_on_spec in enumerate(catalog.add_ons):
        changes += await _item_change(
            "add-on", add_ons.get(add_on_spec.code), add_on_spec.code, add_on_row(add_on_spec, order), now
        )
    listed_plans = {spec.code for spec in catalog.plans}
    listed_add_ons = {spec.code for spec in catalog.add_ons}
    for plan in plans.values():
        if plan.is_active and plan.code not in listed_plans:
            changes.append(
                ItemChange("plan", plan.code, Action.REMOVED, continuing=await _continuing(plan, now))
            )
    for add_on in add_ons.values():
        if add_on.is_active and add_on.code not in listed_add_ons:
            changes.append(
                ItemChange("add-on", add_on.code, Action.REMOVED, continuing=await _continuing(add_on, now))
            )
    return CatalogDiff(tuple(changes))


async def apply(catalog: Catalog, *, now: dt.datetime, dry_run: bool = False) -> CatalogDiff:
    """Make the database's catalog what ``catalog`` says, in one transaction (nothing with ``dry_run``).
    The caller tells running gateways afterwards (``CHANNEL``) when the diff is not empty."""
    if dry_run:
        return await diff(catalog, now=now)
    try:
        async with in_transaction():
            changes = await diff(catalog, now=now)
            await _write(catalog, changes)
    except IntegrityError:
        raise CatalogConflict("the catalog changed while it was being applied; nothing was applied") from None
    return changes


async def _write(catalog: Catalog, changes: CatalogDiff) -> None:
    changed = {(change.kind, change.code): change for change in changes.changes}
    for order, plan_spec in enumerate(catalog.plans):
        change = changed.get(("plan", plan_spec.code))
        if change is None:
            continue
        row = plan_row(plan_spec, order)
        if change.action == Action.NEW:
            await Plan.create(code=plan_spec.code, is_active=True, **row)
            continue
        if any(item.name == "prices" for item in change.fields):
            await _snapshot_plan_prices(plan_spec.code)
        await Plan.filter(code=plan_spec.code).update(is_active=True, **row)
    for order, add_on_spec in enumerate(catalog.add_ons):
        change = changed.get(("add-on", add_on_spec.code))
        if change is None:
            continue
        row = add_on_row(add_on_spec, order)
        if change.action == Action.NEW:
            await AddOn.create(code=add_on_spec.code, is_active=True, **row)
        else:
            await AddOn.filter(code=add_on_spec.code).update(is_active=True, **row)
    removed = [change for change in changes.changes if change.action == Action.REMOVED]
    if plan_codes := [change.code for change in removed if change.kind == "plan"]:
        await Plan.filter(code__in=plan_codes).update(is_active=False)
    if add_on_codes := [change.code for change in removed if change.kind == "add-on"]:
        await AddOn.filter(code__in=add_on_codes).update(is_active=False)


async def _snapshot_plan_prices(code: str) -> None:
    """Before a plan's price changes: its subscriptions without a price of their own keep the current one."""
    plan = await Plan.get(code=code)
    rows = await PlanSubscription.filter(plan_id=plan.id, unit_price__isnull=True).select_related("tenant")
    for subscription in rows:
        currency = subscription.tenant.currency
        if currency in plan.prices:
            await PlanSubscription.filter(id=subscription.id, unit_price__isnull=True).update(
                unit_price=money.price_in(plan.prices, currency).amount, currency=currency
            )


async def _item_change(
    kind: str, current: Plan | AddOn | None, code: str, row: dict[str, Any], now: dt.datetime
) -> list[ItemChange]:
    if current is None:
        return [ItemChange(kind, code, Action.NEW)]
    fields = tuple(
        FieldChange(name, _comparable(getattr(current, name)), _comparable(value))
        for name, value in row.items()
        if _comparable(getattr(current, name)) != _comparable(value)
    )
    if current.is_active and not fields:
        return []
    action = Action.CHANGED if current.is_active else Action.REACTIVATED
    priced = any(change.name == "prices" for change in fields)
    return [ItemChange(kind, code, action, fields, await _continuing(current, now) if priced else 0)]


async def _continuing(item: Plan | AddOn, now: dt.datetime) -> int:
    """The item's subscriptions in force: they continue, at the price they were contracted at."""
    if isinstance(item, Plan):
        return await PlanSubscription.filter(plan_id=item.id, status=PlanSubscriptionStatus.ACTIVE).count()
    return await AddOnSubscription.filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now), add_on_id=item.id
    ).count()


def _prices(prices: dict[str, str]) -> dict[str, str]:
    """Amounts as the database keeps them: rounded to the currency's minor unit ("39.00")."""
    return {
        currency: str(money.round_amount(Decimal(amount), currency)) for currency, amount in prices.items()
    }


def _comparable(value: Any) -> Any:
    return str(value) if isinstance(value, StrEnum) else value


def _shown(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    )
    text = repr(text) if isinstance(value, str) else text
    return text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 3] + "..."


# Export ---------------------------------------------------------------------------------------------------


async def export_document() -> dict[str, Any]:
    """The catalog on sale now, as a catalog file's document (applying it back changes nothing)."""
    plans = await Plan.filter(is_active=True).order_by("sort_order", "code")
    add_ons = await AddOn.filter(is_active=True).order_by("sort_order", "code")
    items: list[Plan | AddOn] = [*plans, *add_ons]
    currencies = sorted({currency for item in items for currency in item.prices})
    locales = {locale for item in items for locale in (*_names(item), *item.descriptions)}
    locales |= {locale for add_on in add_ons for locale in add_on.conditions}
    return {
        "currencies": currencies,
        "locales": [DEFAULT_LOCALE, *sorted(locales - {DEFAULT_LOCALE})],
        "plans": [_plan_document(plan) for plan in plans],
        "add_ons": [_add_on_document(add_on) for add_on in add_ons],
    }


async def export_text() -> str:
    stream = StringIO()
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.allow_unicode = True
    yaml.dump(await export_document(), stream)
    return stream.getvalue()


def _names(item: Plan | AddOn) -> dict[str, str]:
    return dict(item.names) or {DEFAULT_LOCALE: item.name}


def _descriptions(item: Plan | AddOn) -> dict[str, str]:
    return dict(item.descriptions) or ({DEFAULT_LOCALE: item.description} if item.description else {})


def _plan_document(plan: Plan) -> dict[str, Any]:
    document: dict[str, Any] = {
        "code": plan.code,
        "name": _names(plan),
        "description": _descriptions(plan),
        "prices": dict(plan.prices),
        "features": list(plan.features),
        "limits": {
            "users": plan.users,
            "integrations": plan.integrations,
            "credits": plan.credits,
            "storage_gb": plan.storage_mb // MB_PER_GB,
        },
        "storage_policy": str(plan.storage_policy),
        "process_buffer_percent": plan.process_buffer_percent,
    }
    if plan.storage_policy == StoragePolicy.OVERAGE:
        document["overage_per_gb"] = dict(plan.overage_prices_per_gb)
    if plan.change_fees:
        document["change_fee"] = dict(plan.change_fees)
    return document


def _add_on_document(add_on: AddOn) -> dict[str, Any]:
    document: dict[str, Any] = {
        "code": add_on.code,
        "name": _names(add_on),
        "description": _descriptions(add_on),
        **({"conditions": dict(add_on.conditions)} if add_on.conditions else {}),
        "category": str(add_on.category),
        "cadence": str(add_on.cadence),
        "prices": dict(add_on.prices),
        "free": add_on.is_free,
        "increments": {
            "storage_mb": add_on.increment_storage_mb,
            "users": add_on.increment_users,
            "integrations": add_on.increment_integrations,
            "credits": add_on.increment_credits,
        },
        "features": list(add_on.features),
        "eligible_plans": list(add_on.eligible_plan_codes),
        "requires": list(add_on.requires_add_on_codes),
        "configuration": [
            {key: setting[key] for key in ("name", "label", "kind", "secret", "required") if key in setting}
            for setting in add_on.configuration_fields
        ],
    }
    if add_on.max_quantity is not None:
        document["max_quantity"] = add_on.max_quantity
    if add_on.erp_prices:
        document["erp_prices"] = {erp: dict(prices) for erp, prices in sorted(add_on.erp_prices.items())}
    return document
