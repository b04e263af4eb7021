"""Loaded plans share one instance of each add-on (the plan cache holds thousands of tenants' plans)."""

from __future__ import annotations

import datetime as dt
import decimal

from app.models.billing import AddOnSubscription
from app.models.catalog import AddOn
from app.models.tenancy import Tenant
from app.seed import SeedResult
from app.services.subscriptions import load_tenant_plan
from tests.conftest import NOW


async def subscribe(slug: str, add_on: AddOn, count: int) -> Tenant:
    tenant = await Tenant.get(slug=slug)
    for _ in range(count):
        await AddOnSubscription.create(
            tenant_id=tenant.id,
            add_on_id=add_on.id,
            unit_price=decimal.Decimal("9.90"),
            currency=tenant.currency,
            contracted_at=NOW - dt.timedelta(days=1),
        )
    return tenant


async def test_plans_of_several_tenants_share_one_instance_of_an_add_on(demo: SeedResult) -> None:
    add_on = await AddOn.get(code="storage-10gb")
    acme, nova = await subscribe("acme", add_on, 3), await subscribe("nova", add_on, 2)

    plans = [await load_tenant_plan(tenant, now=NOW) for tenant in (acme, nova)]

    loaded = [s.add_on for plan in plans for s in plan.add_ons if s.add_on.code == "storage-10gb"]
    assert len(loaded) >= 5  # the demo data may hold some already
    assert len({id(instance) for instance in loaded}) == 1


async def test_an_add_on_whose_row_changed_is_not_shared_with_its_old_reading(demo: SeedResult) -> None:
    add_on = await AddOn.get(code="storage-10gb")
    acme = await subscribe("acme", add_on, 1)
    before = next(
        s.add_on for s in (await load_tenant_plan(acme, now=NOW)).add_ons if s.add_on_id == add_on.id
    )

    await AddOn.filter(id=add_on.id).update(increment_storage_mb=add_on.increment_storage_mb + 1)
    after = next(
        s.add_on for s in (await load_tenant_plan(acme, now=NOW)).add_ons if s.add_on_id == add_on.id
    )

    assert after is not before
    assert after.increment_storage_mb == before.increment_storage_mb + 1
