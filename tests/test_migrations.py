"""The migrations build the schema the models describe, on SQLite and (in CI) on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise import Tortoise, connections
from tortoise.migrations.api.migrate import migrate as run_migrations

from app.db import tortoise_config
from app.migrate import migrate_database
from app.models import MODEL_MODULES
from app.models.billing import AddOnSubscription, PlanChange, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.models.enums import AddOnStatus, OutboxStatus
from app.models.invoices import IssuedInvoice
from app.models.metering import LimitAlert, ProcessControl, ProcessCounter, ProcessKind
from app.models.notifications import OutboxEmail
from app.models.store import Cart
from app.models.tenancy import Tenant, User
from app.services.invoices import tenant_invoice
from app.services.periods import period_containing
from app.settings import Settings
from tests.conftest import database_url


@pytest.fixture
async def fresh_database_url(tmp_path: Path) -> AsyncIterator[str]:
    url = database_url()
    if url.startswith("sqlite"):
        yield f"sqlite://{tmp_path / 'migrated.sqlite3'}"
        return
    base, _, name = url.rpartition("/")
    admin_dsn = base.replace("postgres://", "postgresql://", 1) + "/postgres"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def columns_by_table(url: str) -> dict[str, set[str]]:
    await Tortoise.init(db_url=url, modules={"models": MODEL_MODULES})
    try:
        connection = connections.get("default")
        if url.startswith("sqlite"):
            _, tables = await connection.execute_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            result = {}
            for table in tables:
                _, columns = await connection.execute_query(f'PRAGMA table_info("{table["name"]}")')
                result[table["name"]] = {column["name"] for column in columns}
            return result
        _, rows = await connection.execute_query(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        )
        result = {}
        for row in rows:
            result.setdefault(row["table_name"], set()).add(row["column_name"])
        return result
    finally:
        await Tortoise.close_connections()


def model_columns() -> dict[str, set[str]]:
    expected = {}
    for model in Tortoise.apps["models"].values():
        expected[model._meta.db_table] = set(model._meta.fields_db_projection.values())
    return expected


async def test_migrations_create_every_table_and_column_of_the_models(fresh_database_url: str) -> None:
    settings = Settings(database_url=fresh_database_url)

    await migrate_database(settings)
    await migrate_database(settings)  # a second run is a no-op

    actual = await columns_by_table(fresh_database_url)
    await Tortoise.init(db_url="sqlite://:memory:", modules={"models": MODEL_MODULES})
    try:
        expected = model_columns()
    finally:
        await Tortoise.close_connections()
    for table, columns in expected.items():
        assert actual.get(table) == columns, f"table {table} differs from its model: run makemigrations"


def test_concurrent_migrations_from_several_instances(fresh_database_url: str) -> None:
    """Three processes migrating one database at once: the lock serialises them and all succeed."""
    env = {**os.environ, "TOLLGATE_DATABASE_URL": fresh_database_url}
    processes = [
        subprocess.Popen([sys.executable, "-m", "app", "migrate"], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(*process.communicate(timeout=120), process.returncode) for process in processes]

    assert [code for _, _, code in results] == [0, 0, 0], results
    assert "tenant" in asyncio.run(columns_by_table(fresh_database_url))


async def test_a_database_made_by_the_first_migration_upgrades_with_its_data_intact(
    fresh_database_url: str,
) -> None:
    """A database of the previous release (0001 applied, data in it) migrates forward: rows kept, the
    alerts it already published live marked published (never pushed again), carts without a quote, a
    cancelled add-on spelled CANCELLING (0003), plan subscriptions keeping their plan's price and catalog
    texts as their English entries (0004), no change fee, ERP prices, pending plan change or attachment,
    and an empty plan history that bills the plan as before (0005), the starts already counted counted
    per kind too, no process paused or capped and no extra alert recipient (0006), queued e-mails kept as
    plain text only (no HTML part, kind or locale) and add-ons without conditions texts (0007)."""
    settings = Settings(database_url=fresh_database_url)
    await run_migrations(config=tortoise_config(settings), target="models.0001_initial")
    sqlite = fresh_database_url.startswith("sqlite")
    at = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    when: Any = at.isoformat() if sqlite else at
    tenant, user, cart, add_on, subscription, plan, plan_subscription, email = (
        str(uuid.uuid4()) for _ in range(8)
    )
    rows = [
        ("tenant", ("id", "slug", "name", "currency", "billing_anchor_day", "created_at",
                    "alert_thresholds", "is_active"),
         (tenant, "old", "Old Ltd", "EUR", 5, when, "[80, 90, 100]", True)),
        ("user", ("id", "tenant_id", "email", "name", "role", "is_active", "created_at"),
         (user, tenant, "admin@old.test", "Admin", "ADMIN", True, when)),
        ("cart", ("id", "tenant_id", "user_id", "status", "open_owner", "created_at", "updated_at"),
         (cart, tenant, user, "OPEN", user, when, when)),
        ("limit_alert", ("tenant_id", "kind", "threshold", "state", "used", "limit", "created_at"),
         (tenant, "CREDITS", 80, "TRIGGERED", 3300, 4000, when)),
        ("add_on", ("id", "code", "name", "description", "category", "prices", "cadence", "is_free",
                    "increment_storage_mb", "increment_users", "increment_integrations", "increment_credits",
                    "features", "eligible_plan_codes", "requires_add_on_codes", "requires_configuration",
                    "configuration_fields", "is_active", "sort_order"),
         (add_on, "users-1", "1 user", "", "USERS", '{"EUR": "9.90"}', "MONTHLY", False, 0, 1, 0, 0,
          "[]", "[]", "[]", False, "[]", True, 1)),
        ("add_on_subscription", ("id", "tenant_id", "add_on_id", "quantity", "unit_price", "currency",
                                 "contracted_at", "status", "cancelled_at", "ends_at",
                                 "configuration_status", "configuration"),
         (subscription, tenant, add_on, 2, "9.90" if sqlite else Decimal("9.90"), "EUR", when, "CANCELING",
          when, when, "NOT_REQUIRED", "{}")),
        ("plan", ("id", "code", "name", "description", "prices", "features", "storage_mb", "users",
                   "integrations", "credits", "storage_policy", "overage_prices_per_gb",
                   "process_buffer_percent", "is_active", "sort_order"),
         (plan, "pro", "Pro", "The full ERP", '{"EUR": "69.90", "BRL": "349.90"}', "[]", 10240, 10, 3, 5000,
          "HARD_CAP", "{}", 33, True, 0)),
        ("plan_subscription", ("id", "tenant_id", "plan_id", "status", "started_at"),
         (plan_subscription, tenant, plan, "ACTIVE", when)),
        ("outbox_email", ("id", "tenant_id", "dedupe_key", "to_address", "subject", "body", "status",
                          "attempts", "next_attempt_at", "created_at"),
         (email, tenant, "old-email", "admin@old.test", "Old subject", "Old body", "PENDING", 0, when, when)),
        ("process_counter", ("tenant_id", "period", "used"), (tenant, "2026-10", 1)),
        ("process_counter", ("tenant_id", "period", "used"), (tenant, "2026-11", 3)),
        *(
            ("process_start", ("id", "tenant_id", "idempotency_key", "process", "period", "started_at"),
             (str(uuid.uuid4()), tenant, f"start-{n}", process, period, when))
            for n, (process, period) in enumerate(
                [("PRODUCT_SYNC", "2026-10"), ("PRODUCT_SYNC", "2026-11"), ("STOCK_UPDATE", "2026-11"),
                 ("PRODUCT_SYNC", "2026-11")]
            )
        ),
    ]  # fmt: skip
    connection = connections.get("default")
    try:
        for table, columns, values in rows:
            marks = ", ".join("?" if sqlite else f"${i}" for i in range(1, len(columns) + 1))
            names = ", ".join(f'"{column}"' for column in columns)
            if not sqlite:
                values = tuple(
                    uuid.UUID(v) if c == "id" or c.endswith("_id") else v
                    for c, v in zip(columns, values, strict=True)
                )
            await connection.execute_query(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(values))
    finally:
        await Tortoise.close_connections()

    await migrate_database(settings)

    await Tortoise.init(db_url=fresh_database_url, modules={"models": MODEL_MODULES})
    try:
        alert = await LimitAlert.get(tenant_id=tenant)
        assert (alert.used, alert.limit, alert.created_at, alert.published_at) == (3300, 4000, at, at)
        old_cart = await Cart.get(id=cart)
        assert (old_cart.open_owner, old_cart.quote) == (user, None)
        old_tenant = await Tenant.get(id=tenant)
        assert (old_tenant.slug, old_tenant.billing_anchor_day) == ("old", 5)
        assert (await User.get(id=user)).email == "admin@old.test"
        cancelled = await AddOnSubscription.get(id=subscription)
        assert (cancelled.status, cancelled.quantity, cancelled.ends_at) == (AddOnStatus.CANCELLING, 2, at)
        # 0004: the plan keeps the price it had, whatever the catalog says later; texts become English.
        contracted = await PlanSubscription.get(id=plan_subscription)
        assert (contracted.unit_price, contracted.currency) == (Decimal("69.90"), "EUR")
        old_plan = await Plan.get(id=plan)
        assert (old_plan.names, old_plan.descriptions) == ({"en": "Pro"}, {"en": "The full ERP"})
        assert (await AddOn.get(id=add_on)).names == {"en": "1 user"}
        assert (old_tenant.locale, old_tenant.erp) == ("en", None)
        assert (await User.get(id=user)).external_id is None
        # 0005: nothing billed differently, nothing pending.
        assert (old_plan.change_fees, (await AddOn.get(id=add_on)).erp_prices) == ({}, {})
        assert contracted.pending_change_id is None
        assert not await PlanChange.filter(tenant_id=tenant).exists()
        assert not await IssuedInvoice.filter(tenant_id=tenant).exists()
        period = period_containing(at + dt.timedelta(days=10), 5)  # the first whole period
        invoice = await tenant_invoice(old_tenant, period, now=at)
        assert [(line.code, line.amount.amount) for line in invoice.lines] == [("pro", Decimal("69.90"))]
        # 0006: each counter's kind columns add up to its starts; nothing controlled, nobody else alerted.
        october, november = await ProcessCounter.filter(tenant_id=tenant).order_by("period")
        assert (october.used, october.started(ProcessKind.PRODUCT_SYNC)) == (1, 1)
        assert (november.used, november.started(ProcessKind.PRODUCT_SYNC)) == (3, 2)
        assert november.started(ProcessKind.STOCK_UPDATE) == 1
        assert november.started(ProcessKind.ORDER_EXPORT) == 0
        assert not await ProcessControl.filter(tenant_id=tenant).exists()
        assert old_tenant.alert_recipients == []
        # 0007: a queued e-mail stays as it was, plain text; the add-on has no conditions of its own.
        queued = await OutboxEmail.get(id=email)
        assert (queued.subject, queued.body) == ("Old subject", "Old body")
        assert queued.status == OutboxStatus.PENDING
        assert (queued.html_body, queued.kind, queued.locale) == (None, None, None)
        assert (await AddOn.get(id=add_on)).conditions == {}
    finally:
        await Tortoise.close_connections()
