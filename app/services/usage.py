"""Reading a tenant's current usage (DESIGN.md 1, "Credits and processes")."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from app.models.usage import TenantUsage


@dataclass(frozen=True, slots=True)
class CurrentUsage:
    """The latest applied usage report; all zeros while the connector has reported nothing."""

    variants: int = 0
    customers: int = 0
    contacts: int = 0
    sales_reps: int = 0
    admin_users: int = 0
    users: int = 0
    integrations: int = 0
    storage_bytes: int = 0
    measured_at: dt.datetime | None = None

    @property
    def credits(self) -> int:
        """Credits used = variants + customers + contacts + sales reps + admin users (seed 002)."""
        return self.variants + self.customers + self.contacts + self.sales_reps + self.admin_users


def usage_of(row: TenantUsage | None) -> CurrentUsage:
    if row is None:
        return CurrentUsage()
    return CurrentUsage(
        variants=row.variants,
        customers=row.customers,
        contacts=row.contacts,
        sales_reps=row.sales_reps,
        admin_users=row.admin_users,
        users=row.users,
        integrations=row.integrations,
        storage_bytes=row.storage_bytes,
        measured_at=row.measured_at,
    )


async def current_usage(tenant_id: uuid.UUID | str) -> CurrentUsage:
    """The tenant's usage as last reported, in one query."""
    return usage_of(await TenantUsage.get_or_none(tenant_id=tenant_id))
