"""A realistic data set for the benchmark, written through the app's models and its catalog seed.

- the full catalog of ``app.seed`` (its plans and add-ons), plus generated add-ons up to 200;
- ``tenants`` environments created after 2022 (eligible for the store), on every plan, in EUR and
  BRL, with an admin, a member, an ERP-connector API key, two or three add-ons, the usage last
  reported by the connector (credits between 30% and 70% of the limit: quota checks say yes) and
  the current period's process counter.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tortoise import Tortoise
from tortoise.transactions import in_transaction

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.auth.tokens import issue_user_token
from app.db import tortoise_config
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.models.enums import AddOnCategory, ConfigurationStatus, Role
from app.models.metering import ProcessCounter
from app.models.tenancy import ApiKey, Tenant, User
from app.models.usage import TenantUsage
from app.seed import seed_catalog
from app.services.periods import period_containing
from app.settings import Settings, get_settings

CATALOG_SIZE = 200
# Add-ons every tenant may hold several of (no plan restriction, no maximum reached by the bench).
TENANT_ADD_ONS = ("storage-10gb", "users-1", "credits-1000", "report-sales-dashboard")
GENERATED_CATEGORIES = (
    AddOnCategory.STORAGE,
    AddOnCategory.USERS,
    AddOnCategory.REPORTS,
    AddOnCategory.ADVANCED_FEATURES,
    AddOnCategory.INTEGRATIONS,
)


@dataclass(frozen=True)
class BenchTenant:
    slug: str
    connector_key: str
    admin_token: str
    credits_limit: int


@dataclass(frozen=True)
class BenchData:
    tenants: list[BenchTenant]
    add_on_count: int


async def _seed_generated_add_ons() -> None:
    existing = await AddOn.all().count()
    generated = [
        AddOn(
            code=f"bench-{number:03d}",
            name=f"Bench add-on {number}",
            description="A generated add-on so that the catalog has the size of a real store.",
            category=GENERATED_CATEGORIES[number % len(GENERATED_CATEGORIES)],
            prices={"EUR": f"{1 + number % 40}.90", "BRL": f"{5 + number % 200}.90"},
            increment_storage_mb=100 if number % 5 == 0 else 0,
            increment_users=1 if number % 5 == 1 else 0,
            features=[f"bench-feature-{number}"] if number % 5 == 3 else [],
            max_quantity=5 if number % 2 else None,
            sort_order=100 + number,
        )
        for number in range(CATALOG_SIZE - existing)
    ]
    await AddOn.bulk_create(generated)


async def seed_bench_data(
    settings: Settings, *, tenants: int, now: dt.datetime, seed: int = 20261123
) -> BenchData:
    """Create the schema and the data set in an empty database (SQLite file or PostgreSQL)."""
    rng = random.Random(seed)
    await Tortoise.init(config=tortoise_config(settings))
    try:
        await Tortoise.generate_schemas(safe=True)
        async with in_transaction():
            await seed_catalog(now=now)
            await _seed_generated_add_ons()
        plans = list(await Plan.all())
        add_ons = {add_on.code: add_on for add_on in await AddOn.filter(code__in=TENANT_ADD_ONS)}
        result: list[BenchTenant] = []
        batch = 200
        for first in range(0, tenants, batch):
            async with in_transaction():
                result += await _seed_tenants(
                    range(first, min(tenants, first + batch)), plans, add_ons, settings, now, rng
                )
        return BenchData(tenants=result, add_on_count=await AddOn.all().count())
    finally:
        await Tortoise.close_connections()


async def _seed_tenants(
    numbers: range,
    plans: list[Plan],
    add_ons: dict[str, AddOn],
    settings: Settings,
    now: dt.datetime,
    rng: random.Random,
) -> list[BenchTenant]:
    tenant_rows, user_rows, plan_rows, key_rows = [], [], [], []
    add_on_rows, usage_rows, counter_rows = [], [], []
    out: list[BenchTenant] = []
    for number in numbers:
        currency = "EUR" if number % 3 else "BRL"
        anchor_day = 1 + number % 28
        tenant = Tenant(
            id=uuid.uuid4(),
            slug=f"bench-{number:04d}",
            name=f"Bench store {number}",
            currency=currency,
            billing_anchor_day=anchor_day,
            created_at=dt.datetime(2022, 2, 1, tzinfo=dt.UTC) + dt.timedelta(days=number % 1000),
        )
        tenant_rows.append(tenant)
        admin = User(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            email=f"admin@bench-{number:04d}.test",
            name=f"Admin {number}",
            role=Role.ADMIN,
        )
        member = User(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            email=f"member@bench-{number:04d}.test",
            name=f"Member {number}",
            role=Role.MEMBER,
        )
        user_rows += [admin, member]
        plan = plans[number % len(plans)]
        plan_rows.append(PlanSubscription(tenant_id=tenant.id, plan_id=plan.id, started_at=tenant.created_at))
        key = generate_api_key()
        key_rows.append(
            ApiKey(
                tenant_id=tenant.id,
                name="ERP connector",
                prefix=key.prefix,
                key_hash=key.key_hash,
                scopes=list(scopes.CONNECTOR_SCOPES),
            )
        )
        credits_limit = plan.credits
        for code in rng.sample(TENANT_ADD_ONS, k=2 + number % 2):
            add_on = add_ons[code]
            quantity = 1
            credits_limit += add_on.increment_credits * quantity
            add_on_rows.append(
                AddOnSubscription(
                    tenant_id=tenant.id,
                    add_on_id=add_on.id,
                    quantity=quantity,
                    unit_price=Decimal(add_on.prices[currency]),
                    currency=currency,
                    contracted_at=now - dt.timedelta(days=rng.randint(1, 300)),
                    configuration_status=ConfigurationStatus.NOT_REQUIRED,
                )
            )
        credits = int(credits_limit * rng.uniform(0.3, 0.7))
        variants = credits // 4
        customers = credits // 3
        sales_reps = 5
        admin_users = 2
        contacts = credits - variants - customers - sales_reps - admin_users
        usage_rows.append(
            TenantUsage(
                tenant_id=tenant.id,
                variants=variants,
                customers=customers,
                contacts=contacts,
                sales_reps=sales_reps,
                admin_users=admin_users,
                credits=credits,
                users=2,
                integrations=0,
                storage_bytes=rng.randint(1, 8) * 1024**3,
                measured_at=now - dt.timedelta(hours=1),
                updated_at=now - dt.timedelta(hours=1),
            )
        )
        period = period_containing(now, anchor_day).name
        counter_rows.append(ProcessCounter(tenant_id=tenant.id, period=period, used=rng.randint(0, 20_000)))
        token = issue_user_token(
            user_id=str(admin.id),
            tenant_id=str(tenant.id),
            email=admin.email,
            secret=settings.jwt_secret,
            now=now,
            ttl=dt.timedelta(days=2),
        )
        out.append(BenchTenant(tenant.slug, key.plaintext, token, credits_limit))
    await Tenant.bulk_create(tenant_rows)
    await User.bulk_create(user_rows)
    await PlanSubscription.bulk_create(plan_rows)
    await ApiKey.bulk_create(key_rows)
    await AddOnSubscription.bulk_create(add_on_rows)
    await TenantUsage.bulk_create(usage_rows)
    await ProcessCounter.bulk_create(counter_rows)
    return out


def main() -> None:
    """Seed in a process of its own (Tortoise keeps per-dialect state for the life of a process), with
    the settings of the ``TOLLGATE_*`` variables, and write the tenants' credentials as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.seeding")
    parser.add_argument("--tenants", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = asyncio.run(seed_bench_data(get_settings(), tenants=args.tenants, now=dt.datetime.now(dt.UTC)))
    args.out.write_text(json.dumps(dataclasses.asdict(data)))


def load(path: Path) -> BenchData:
    raw = json.loads(path.read_text())
    return BenchData(
        tenants=[BenchTenant(**tenant) for tenant in raw["tenants"]], add_on_count=raw["add_on_count"]
    )


if __name__ == "__main__":
    main()
