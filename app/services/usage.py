"""Reading a tenant's current usage (docs/design.md, "Credits and processes")."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.models.metering import ProcessCounter, ProcessKind
from app.models.usage import TenantUsage
from app.services import sql

# The counts credits add up to (seed 002), as named in the usage tables.
COUNT_FIELDS = ("variants", "customers", "contacts", "sales_reps", "admin_users")


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


@dataclass(frozen=True, slots=True)
class Control:
    """What a kind's admins set (``app.services.process_control``); no row: neither paused nor capped."""

    paused: bool = False
    monthly_cap: int | None = None  # None: no cap


NO_CONTROL = Control()
Controls = Mapping[ProcessKind, Control]  # the kinds with a control row only


def control_of(controls: Controls, process: ProcessKind) -> Control:
    return controls.get(process, NO_CONTROL)


@dataclass(frozen=True, slots=True)
class ProcessCounts:
    """The processes counted in one billing period, in all and per kind (the counter row's columns; a kind
    not started is left out of ``by_kind``), and the admins' controls per kind (read with them, so that the
    quota check's figures hold them at no extra statement)."""

    used: int = 0
    by_kind: Mapping[ProcessKind, int] = field(default_factory=dict)
    controls: Controls = field(default_factory=dict)

    def of(self, process: ProcessKind) -> int:
        return self.by_kind.get(process, 0)


# The credits screen's live figures in one round trip: the usage row (when there is one), the counter
# (when there is one), its total and its column per kind, and the kinds' controls: one row per control
# row (a few at most; one row when there is none).
_KIND_COLUMNS = tuple(ProcessCounter.column_of(kind) for kind in ProcessKind)
_USAGE_AND_PROCESSES = (
    "SELECT u.variants, u.customers, u.contacts, u.sales_reps, u.admin_users, u.users, u.integrations,"
    " u.storage_bytes, u.measured_at, c.used, "
    + ", ".join(f'c."{column}"' for column in _KIND_COLUMNS)
    + ", pc.process, pc.paused, pc.monthly_cap"
    " FROM (SELECT 1) AS one LEFT JOIN tenant_usage AS u ON u.tenant_id = {0}"
    " LEFT JOIN process_counter AS c ON c.tenant_id = {0} AND c.period = {1}"
    " LEFT JOIN process_control AS pc ON pc.tenant_id = {0}"
)


async def usage_and_counts(tenant_id: uuid.UUID | str, period: str) -> tuple[CurrentUsage, ProcessCounts]:
    """The current usage, the processes counted in ``period`` in all and per kind, and the kinds' controls,
    in one statement."""
    rows = await sql.fetch_rows(_USAGE_AND_PROCESSES, uuid.UUID(str(tenant_id)), period)
    row = rows[0]
    *counts, measured_at, used = row[: -len(_KIND_COLUMNS) - 3]
    per_kind = row[-len(_KIND_COLUMNS) - 3 : -3]
    controls = {
        ProcessKind(process): Control(bool(paused), None if cap is None else int(cap))
        for *_, process, paused, cap in rows
        if process is not None
    }
    processes = ProcessCounts(
        int(used or 0),
        {kind: int(n) for kind, n in zip(ProcessKind, per_kind, strict=True) if n},  # kinds started only
        controls,
    )
    if counts[0] is None:  # no row yet: nothing reported
        return CurrentUsage(), processes
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
    return usage, processes


_MEASURED_AT = TenantUsage._meta.fields_map["measured_at"]
