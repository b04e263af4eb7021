"""The public catalog: plans and add-ons. Prices are maps of currency code to decimal string.

The catalog file (docs/catalog.md) is their source: ``tollgate catalog apply`` writes these rows; an item
left out of the file is deactivated (``is_active``), never deleted, so its subscriptions keep it."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from app.models.enums import AddOnCategory, Cadence, StoragePolicy

INCLUDED_STORAGE_MB = 10 * 1024  # every plan includes 10 GB (seed 002)


class Plan(Model):
    id = fields.UUIDField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    # Per locale ({"en": ..., "pt-BR": ..., "es": ...}); ``name``/``description`` keep the default (en) text.
    names: fields.Field[dict[str, str]] = fields.JSONField(default=dict, db_default={})
    descriptions: fields.Field[dict[str, str]] = fields.JSONField(default=dict, db_default={})
    prices: fields.Field[dict[str, str]] = fields.JSONField()
    features: fields.Field[list[str]] = fields.JSONField(default=list)
    storage_mb = fields.BigIntField(default=INCLUDED_STORAGE_MB)
    users = fields.IntField()
    integrations = fields.IntField()
    credits = fields.IntField()
    storage_policy = fields.CharEnumField(StoragePolicy, max_length=16, default=StoragePolicy.HARD_CAP)
    overage_prices_per_gb: fields.Field[dict[str, str]] = fields.JSONField(default=dict)
    process_buffer_percent = fields.SmallIntField(default=33)  # allowance = credits x 30 x (1 + buffer)
    # A one-off fee for changing to this plan, per currency (seed 002: a plan change "puede suponer
    # costes"); none: free. Charged once, on the invoice of the period the change takes effect in.
    change_fees: fields.Field[dict[str, str]] = fields.JSONField(default=dict, db_default={})
    is_active = fields.BooleanField(default=True)
    sort_order = fields.SmallIntField(default=0)

    class Meta:
        table = "plan"
        ordering = ["sort_order", "code"]


class AddOn(Model):
    id = fields.UUIDField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    names: fields.Field[dict[str, str]] = fields.JSONField(default=dict, db_default={})  # as Plan.names
    descriptions: fields.Field[dict[str, str]] = fields.JSONField(default=dict, db_default={})
    category = fields.CharEnumField(AddOnCategory, max_length=32)
    prices: fields.Field[dict[str, str]] = fields.JSONField()
    cadence = fields.CharEnumField(Cadence, max_length=16, default=Cadence.MONTHLY)
    is_free = fields.BooleanField(default=False)
    # What one unit adds to the effective limits.
    increment_storage_mb = fields.BigIntField(default=0)
    increment_users = fields.IntField(default=0)
    increment_integrations = fields.IntField(default=0)
    increment_credits = fields.IntField(default=0)
    features: fields.Field[list[str]] = fields.JSONField(default=list)
    # Conditions: an empty list of plans means every plan may buy it.
    eligible_plan_codes: fields.Field[list[str]] = fields.JSONField(default=list)
    max_quantity = fields.IntField(null=True)
    # Sold only for these ERPs, each at its own prices ({"bling": {"BRL": "2490.00"}}); empty: sold for
    # every ERP at ``prices``. Elsewhere it is quote-only (seed 002: "precios y disponibilidad por ERP").
    erp_prices: fields.Field[dict[str, dict[str, str]]] = fields.JSONField(default=dict, db_default={})
    requires_add_on_codes: fields.Field[list[str]] = fields.JSONField(default=list)
    requires_configuration = fields.BooleanField(default=False)
    # The conditions in the catalog's own words, per locale ({"pt-BR": "Requer conta Bling"}); none: the
    # API composes them from the rules below (``AddOnConditions.summary``).
    conditions: fields.Field[dict[str, str]] = fields.JSONField(default=dict, db_default={})
    # [{"name": "api_token", "label": "API token", "secret": true, "required": true, "kind": "STRING|URL"}]
    configuration_fields: fields.Field[list[dict[str, Any]]] = fields.JSONField(default=list)
    is_active = fields.BooleanField(default=True)
    sort_order = fields.SmallIntField(default=0)

    class Meta:
        table = "add_on"
        ordering = ["category", "sort_order", "code"]
