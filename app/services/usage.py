"""Reading a tenant's current usage (DESIGN.md 1, "Credits and processes")."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from app.models.usage import TenantUsage
from app.services import sql


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


# The credits screen's live figures in one round trip: the usage row (when there is one) and the counter.
_USAGE_AND_PROCESSES = (
    "SELECT u.variants, u.customers, u.contacts, u.sales_reps, u.admin_users, u.users, u.integrations,"
    " u.storage_bytes, u.measured_at,"
    " (SELECT used FROM process_counter WHERE tenant_id = {0} AND period = {1})"
    " FROM (SELECT 1) AS one LEFT JOIN tenant_usage AS u ON u.tenant_id = {0}"
)


async def usage_and_processes(tenant_id: uuid.UUID | str, period: str) -> tuple[CurrentUsage, int]:
    """The current usage and the processes counted in billing period ``period``, in one statement."""
    *counts, measured_at, used = await sql.fetch_one(_USAGE_AND_PROCESSES, uuid.UUID(str(tenant_id)), period)
    if counts[0] is None:  # no row yet: nothing reported
        return CurrentUsage(), int(used or 0)
    variants, customers, contacts, sales_reps, admin_users, users, integrations, storage = map(int, counts)
    usage = CurrentUsage(
        variants=variants,
        customers=customers,
        contacts=contacts,
        sales_reps=sales_reps,
        admin_users=admin_users,
        users=users,
        integrations=integrations,
        storage_bytes=storage,
        measured_at=None if measured_at is None else _MEASURED_AT.to_python_value(measured_at),
    )
    return usage, int(used or 0)


_MEASURED_AT = TenantUsage._meta.fields_map["measured_at"]
