"""Demo data of API.md: tenants acme, nova and legacy, the full catalog and the four coupons."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import INCLUDED_STORAGE_MB, AddOn, Plan
from app.models.coupons import Coupon
from app.models.enums import (
    AddOnCategory,
    Cadence,
    ConfigurationStatus,
    CouponDuration,
    CouponKind,
    Role,
    StoragePolicy,
)
from app.models.tenancy import ApiKey, Tenant, User


def utc(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


OVERAGE_PER_GB = {"EUR": "2.30", "BRL": "12.90"}  # seed 002: 2,3 EUR per extra GB

PLANS: list[dict[str, Any]] = [
    {
        "code": "storefront-s",
        "name": "Storefront S",
        "description": "A store synchronised with its ERP, sized for small catalogs.",
        "prices": {"EUR": "39.00", "BRL": "199.00"},
        "features": ["storefront", "erp-sync", "backoffice"],
        "users": 3,
        "integrations": 1,
        "credits": 1500,
        "storage_policy": StoragePolicy.OVERAGE,
        "overage_prices_per_gb": OVERAGE_PER_GB,
    },
    {
        "code": "storefront-m",
        "name": "Storefront M",
        "description": "For growing stores: 3,000 credits of variants, customers, contacts and staff.",
        "prices": {"EUR": "79.00", "BRL": "399.00"},
        "features": ["storefront", "erp-sync", "backoffice", "b2b-prices"],
        "users": 5,
        "integrations": 2,
        "credits": 3000,
        "storage_policy": StoragePolicy.OVERAGE,
        "overage_prices_per_gb": OVERAGE_PER_GB,
    },
    {
        "code": "storefront-l",
        "name": "Storefront L",
        "description": "Large catalogs and several sales channels.",
        "prices": {"EUR": "199.00", "BRL": "999.00"},
        "features": ["storefront", "erp-sync", "backoffice", "b2b-prices", "multi-warehouse"],
        "users": 15,
        "integrations": 5,
        "credits": 10000,
        "storage_policy": StoragePolicy.OVERAGE,
        "overage_prices_per_gb": OVERAGE_PER_GB,
    },
    {
        "code": "erp-start",
        "name": "ERP Start",
        "description": "The ERP for a first team: invoices, stock and orders.",
        "prices": {"EUR": "29.90", "BRL": "149.90"},
        "features": ["invoicing", "stock", "orders"],
        "users": 3,
        "integrations": 1,
        "credits": 1000,
        "storage_policy": StoragePolicy.HARD_CAP,
    },
    {
        "code": "erp-pro",
        "name": "ERP Pro",
        "description": "The full ERP with fiscal modules, more users and integrations.",
        "prices": {"EUR": "69.90", "BRL": "349.90"},
        "features": ["invoicing", "stock", "orders", "purchasing", "financials"],
        "users": 10,
        "integrations": 3,
        "credits": 5000,
        "storage_policy": StoragePolicy.HARD_CAP,
    },
]

INTEGRATION_SETTINGS = [
    {"name": "api_token", "label": "API token", "kind": "SECRET", "secret": True, "required": True},
    {"name": "shop_url", "label": "Store URL", "kind": "URL", "secret": False, "required": True},
]

ADD_ONS: list[dict[str, Any]] = [
    # Storage: MB or GB packs.
    {
        "code": "storage-500mb",
        "name": "Storage 500 MB",
        "category": AddOnCategory.STORAGE,
        "prices": {"EUR": "1.50", "BRL": "7.90"},
        "increment_storage_mb": 500,
        "description": "500 MB more for images, invoice XMLs, orders and contacts.",
    },
    {
        "code": "storage-10gb",
        "name": "Storage 10 GB",
        "category": AddOnCategory.STORAGE,
        "prices": {"EUR": "19.00", "BRL": "95.00"},
        "increment_storage_mb": 10 * 1024,
        "max_quantity": 10,
        "description": "10 GB more storage for the environment.",
    },
    # Users.
    {
        "code": "users-1",
        "name": "1 extra user",
        "category": AddOnCategory.USERS,
        "prices": {"EUR": "4.90", "BRL": "24.90"},
        "increment_users": 1,
        "max_quantity": 20,
        "description": "One more user account.",
    },
    {
        "code": "users-5",
        "name": "5 extra users",
        "category": AddOnCategory.USERS,
        "prices": {"EUR": "19.90", "BRL": "99.90"},
        "increment_users": 5,
        "max_quantity": 10,
        "description": "Five more user accounts.",
    },
    # Integrations: parameters to configure after purchase.
    {
        "code": "integration-mercado-livre",
        "name": "Mercado Livre integration",
        "category": AddOnCategory.INTEGRATIONS,
        "prices": {"EUR": "14.90", "BRL": "59.90"},
        "increment_integrations": 1,
        "requires_configuration": True,
        "configuration_fields": INTEGRATION_SETTINGS,
        "description": "Sync listings, stock and orders with Mercado Livre.",
    },
    {
        "code": "integration-shopify",
        "name": "Shopify integration",
        "category": AddOnCategory.INTEGRATIONS,
        "prices": {"EUR": "14.90", "BRL": "59.90"},
        "increment_integrations": 1,
        "requires_configuration": True,
        "configuration_fields": INTEGRATION_SETTINGS,
        "description": "Connect a Shopify store.",
    },
    {
        "code": "integration-webhooks",
        "name": "Webhooks",
        "category": AddOnCategory.INTEGRATIONS,
        "prices": {"EUR": "0.00", "BRL": "0.00"},
        "is_free": True,
        "increment_integrations": 1,
        "max_quantity": 1,
        "requires_configuration": True,
        "configuration_fields": [
            {
                "name": "endpoint_url",
                "label": "Endpoint URL",
                "kind": "URL",
                "secret": False,
                "required": True,
            },
            {
                "name": "signing_secret",
                "label": "Signing secret",
                "kind": "SECRET",
                "secret": True,
                "required": True,
            },
        ],
        "description": "Push order and stock events to your own endpoint.",
    },
    # Reports.
    {
        "code": "report-sales-dashboard",
        "name": "Sales dashboard",
        "category": AddOnCategory.REPORTS,
        "prices": {"EUR": "0.00", "BRL": "0.00"},
        "is_free": True,
        "max_quantity": 1,
        "features": ["report:sales-dashboard"],
        "description": "Daily sales by channel, free.",
    },
    {
        "code": "report-abc-curve",
        "name": "ABC curve report",
        "category": AddOnCategory.REPORTS,
        "prices": {"EUR": "9.90", "BRL": "39.90"},
        "max_quantity": 1,
        "features": ["report:abc-curve"],
        "description": "Products ranked by their share of revenue.",
    },
    # Advanced features.
    {
        "code": "extra-tax-id",
        "name": "Extra company tax ID (CNPJ)",
        "category": AddOnCategory.ADVANCED_FEATURES,
        "prices": {"EUR": "9.90", "BRL": "49.90"},
        "max_quantity": 10,
        "features": ["multi-company"],
        "eligible_plan_codes": ["erp-start", "erp-pro"],
        "description": "Manage one more company tax ID.",
    },
    {
        "code": "fiscal-bookkeeping",
        "name": "Fiscal bookkeeping (SPED Fiscal)",
        "category": AddOnCategory.ADVANCED_FEATURES,
        "prices": {"EUR": "24.90", "BRL": "119.90"},
        "max_quantity": 1,
        "features": ["sped-fiscal"],
        "eligible_plan_codes": ["erp-pro"],
        "description": "Generate the SPED Fiscal bookkeeping files.",
    },
    {
        "code": "make-to-order",
        "name": "Make-to-order production",
        "category": AddOnCategory.ADVANCED_FEATURES,
        "prices": {"EUR": "29.90", "BRL": "149.90"},
        "max_quantity": 1,
        "features": ["make-to-order"],
        "eligible_plan_codes": ["erp-pro"],
        "requires_add_on_codes": ["fiscal-bookkeeping"],
        "description": "Control items produced on demand as they sell.",
    },
    # Credit packs.
    {
        "code": "credits-1000",
        "name": "1,000 credits",
        "category": AddOnCategory.CREDITS,
        "prices": {"EUR": "25.00", "BRL": "125.00"},
        "increment_credits": 1000,
        "max_quantity": 20,
        "description": "1,000 more credits: more variants, customers and contacts before sync stops.",
    },
    {
        "code": "credits-5000",
        "name": "5,000 credits",
        "category": AddOnCategory.CREDITS,
        "prices": {"EUR": "99.00", "BRL": "495.00"},
        "increment_credits": 5000,
        "max_quantity": 10,
        "description": "5,000 more credits.",
    },
    # One-off services.
    {
        "code": "start-pack",
        "name": "Start Pack",
        "category": AddOnCategory.SERVICES,
        "cadence": Cadence.ONE_OFF,
        "prices": {"EUR": "490.00", "BRL": "2490.00"},
        "max_quantity": 1,
        "description": "Onboarding sessions with a certified partner: store set-up, connector installation, "
        "basic theme customisation and training. Billed once.",
    },
]


def demo_coupons(now: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "code": "WELCOME10",
            "description": "10% off monthly add-ons for 3 months",
            "kind": CouponKind.PERCENT,
            "percent_off": Decimal("10"),
            "duration": CouponDuration.REPEATING,
            "duration_months": 3,
        },
        {
            "code": "FIXED5",
            "description": "5.00 off, once",
            "kind": CouponKind.FIXED,
            "amounts_off": {"EUR": "5.00", "BRL": "5.00"},
            "duration": CouponDuration.ONCE,
        },
        {
            "code": "EXPIRED",
            "description": "An old campaign",
            "kind": CouponKind.PERCENT,
            "percent_off": Decimal("20"),
            "valid_until": utc(2024, 1, 1),
        },
        {
            "code": "ONEUSE",
            "description": "15% off, one redemption in all",
            "kind": CouponKind.PERCENT,
            "percent_off": Decimal("15"),
            "max_redemptions": 1,
        },
    ]


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    currency: str
    created_at: dt.datetime
    anchor_day: int
    plan_code: str
    add_ons: tuple[tuple[str, int, int], ...]  # (add-on code, quantity, days ago contracted)


DEMO_TENANTS = (
    DemoTenant(
        "acme",
        "Acme Storefront",
        "EUR",
        utc(2023, 3, 14),
        1,
        "storefront-m",
        (("storage-10gb", 1, 75), ("report-sales-dashboard", 1, 40), ("credits-1000", 1, 12)),
    ),
    DemoTenant(
        "nova",
        "Nova Distribuidora",
        "BRL",
        utc(2024, 6, 10),
        10,
        "erp-pro",
        (("users-5", 1, 120), ("integration-mercado-livre", 1, 30), ("extra-tax-id", 2, 8)),
    ),
    DemoTenant("legacy", "Legacy Comércio", "BRL", utc(2021, 5, 20), 1, "erp-start", ()),
)


@dataclass(frozen=True)
class SeedResult:
    created: bool
    connector_keys: dict[str, str]  # tenant slug -> plaintext key, shown once


async def seed_catalog() -> None:
    for order, spec in enumerate(PLANS):
        await Plan.update_or_create(
            code=spec["code"], defaults={**spec, "storage_mb": INCLUDED_STORAGE_MB, "sort_order": order}
        )
    for order, spec in enumerate(ADD_ONS):
        await AddOn.update_or_create(code=spec["code"], defaults={**spec, "sort_order": order})


async def seed_demo(*, now: dt.datetime) -> SeedResult:
    """Seed the demo data into an empty database; a database with tenants is left untouched."""
    if await Tenant.exists():
        return SeedResult(created=False, connector_keys={})
    keys: dict[str, str] = {}
    async with in_transaction():
        await seed_catalog()
        for spec in demo_coupons(now):
            await Coupon.create(**spec)
        plans = {plan.code: plan for plan in await Plan.all()}
        add_ons = {add_on.code: add_on for add_on in await AddOn.all()}
        for demo in DEMO_TENANTS:
            tenant = await Tenant.create(
                slug=demo.slug,
                name=demo.name,
                currency=demo.currency,
                created_at=demo.created_at,
                billing_anchor_day=demo.anchor_day,
            )
            for role in (Role.ADMIN, Role.MEMBER):
                local = role.value.lower()
                await User.create(
                    tenant=tenant, email=f"{local}@{demo.slug}.test", name=f"{demo.name} {local}", role=role
                )
            await PlanSubscription.create(
                tenant=tenant, plan=plans[demo.plan_code], started_at=demo.created_at
            )
            for code, quantity, days_ago in demo.add_ons:
                add_on = add_ons[code]
                await AddOnSubscription.create(
                    tenant=tenant,
                    add_on=add_on,
                    quantity=quantity,
                    unit_price=Decimal(add_on.prices[demo.currency]),
                    currency=demo.currency,
                    contracted_at=now - dt.timedelta(days=days_ago),
                    configuration_status=ConfigurationStatus.PENDING
                    if add_on.requires_configuration
                    else ConfigurationStatus.NOT_REQUIRED,
                )
            key = generate_api_key()
            await ApiKey.create(
                tenant=tenant,
                name="ERP connector",
                prefix=key.prefix,
                key_hash=key.key_hash,
                scopes=list(scopes.CONNECTOR_SCOPES),
            )
            keys[demo.slug] = key.plaintext
    return SeedResult(created=True, connector_keys=keys)
