"""Per-tenant serialisation of the writes that check a limit and then act on it.

A purchase checks ``max_quantity`` against what the tenant already has, then records the order; a usage
report evaluates its alerts against the limits in force, which a purchase may be raising. Each check is
only true while nobody else of the tenant writes in between, so such writes take the tenant's row first.

The lock is a no-op ``UPDATE`` of the tenant row, the first statement of the transaction: PostgreSQL holds
the row lock until commit (on every instance: the lock is in the database), and SQLite takes its write
lock, which serialises writers anyway. ``select_for_update`` would be silently ignored on SQLite. The
update touches no key column, so foreign-key checks of rows inserted meanwhile (orders, alerts) are not
blocked by it (PostgreSQL's ``FOR NO KEY UPDATE`` does not conflict with ``FOR KEY SHARE``).
"""

from __future__ import annotations

import uuid

from tortoise.expressions import F

from app.models.tenancy import Tenant


async def lock_tenant(tenant_id: uuid.UUID | str) -> None:
    """Hold the tenant's row until the current transaction ends (call it inside ``in_transaction``)."""
    await Tenant.filter(id=tenant_id).update(billing_anchor_day=F("billing_anchor_day"))
