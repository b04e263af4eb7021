"""The demo data (README, "Demo data"): tenants acme, nova and legacy, the full catalog and the four coupons.

The catalog is a file, ``app/data/demo-catalog.yaml``, applied through the same service as an operator's
(``tollgate catalog apply``); the tenants and coupons are written here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.models.coupons import Coupon
from app.models.enums import ConfigurationStatus, CouponDuration, CouponKind, Role
from app.models.tenancy import ApiKey, Tenant, User
from app.services import catalog_apply, catalog_file


def utc(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


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
    erp: str | None = None  # the ERP the environment runs (the Start Pack is sold per ERP)
    locale: str = "en"  # the environment's default language (users without a saved choice read it)
    # Users' saved language by role; a role left out reads the environment's default.
    user_locales: tuple[tuple[Role, str], ...] = ()


DEMO_TENANTS = (
    DemoTenant(
        "acme",
        "Acme Storefront",
        "EUR",
        utc(2023, 3, 14),
        1,
        "storefront-m",
        (("storage-10gb", 1, 75), ("report-sales-dashboard", 1, 40), ("credits-1000", 1, 12)),
        "holded",  # a Spanish ERP: the Start Pack is quote-only there
        "es",
        ((Role.MEMBER, "en"),),  # member@acme reads English; admin@acme the environment's Spanish
    ),
    DemoTenant(
        "nova",
        "Nova Distribuidora",
        "BRL",
        utc(2024, 6, 10),
        10,
        "erp-pro",
        (("users-5", 1, 120), ("integration-mercado-livre", 1, 30), ("extra-tax-id", 2, 8)),
        "bling",
        "pt-BR",
    ),
    DemoTenant("legacy", "Legacy Comércio", "BRL", utc(2021, 5, 20), 1, "erp-start", (), "tiny", "pt-BR"),
)


@dataclass(frozen=True)
class SeedResult:
    created: bool
    connector_keys: dict[str, str]  # tenant slug -> plaintext key, shown once


DEMO_CATALOG = Path(__file__).parent / "data" / "demo-catalog.yaml"


async def seed_catalog(*, now: dt.datetime) -> None:
    await catalog_apply.apply(catalog_file.load_path(DEMO_CATALOG), now=now)


async def seed_demo(*, now: dt.datetime) -> SeedResult:
    """Seed the demo data into an empty database; a database with tenants is left untouched."""
    if await Tenant.exists():
        return SeedResult(created=False, connector_keys={})
    keys: dict[str, str] = {}
    async with in_transaction():
        await seed_catalog(now=now)
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
                erp=demo.erp,
                locale=demo.locale,
            )
            saved = dict(demo.user_locales)
            for role in (Role.ADMIN, Role.MEMBER):
                local = role.value.lower()
                await User.create(
                    tenant=tenant,
                    email=f"{local}@{demo.slug}.test",
                    name=f"{demo.name} {local}",
                    role=role,
                    locale=saved.get(role),
                )
            plan = plans[demo.plan_code]
            await PlanSubscription.create(
                tenant=tenant,
                plan=plan,
                started_at=demo.created_at,
                unit_price=Decimal(plan.prices[demo.currency]),
                currency=demo.currency,
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
