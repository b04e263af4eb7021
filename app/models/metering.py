"""Metering: the connector's usage reports, process counters and starts, their control, and limit alerts.

Per-tenant alert settings live on the tenant: ``Tenant.alert_thresholds`` (80, 90, 100 by default) and
``Tenant.alert_recipients`` (addresses alerted beside the admins).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.tenancy import Tenant


class ProcessKind(StrEnum):
    """The sync processes the connector launches (seed 002: imports, updates, synchronisation)."""

    PRODUCT_SYNC = "PRODUCT_SYNC"
    STOCK_UPDATE = "STOCK_UPDATE"
    PRICE_UPDATE = "PRICE_UPDATE"
    CUSTOMER_SYNC = "CUSTOMER_SYNC"
    ORDER_EXPORT = "ORDER_EXPORT"
    INVOICE_IMPORT = "INVOICE_IMPORT"
    DELIVERY_NOTES = "DELIVERY_NOTES"
    PENDING_ORDERS = "PENDING_ORDERS"
    DATABASE_UPDATE = "DATABASE_UPDATE"


class AlertKind(StrEnum):
    CREDITS = "CREDITS"
    PROCESSES = "PROCESSES"
    STORAGE = "STORAGE"
    USERS = "USERS"
    INTEGRATIONS = "INTEGRATIONS"


class AlertState(StrEnum):
    TRIGGERED = "TRIGGERED"
    RESOLVED = "RESOLVED"


class UsageReport(Model):
    """Every report received, applied or not: the idempotency record, the audit trail and the usage history
    (the applied ones, by ``measured_at``)."""

    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="usage_reports", on_delete=fields.CASCADE
    )
    idempotency_key = fields.CharField(max_length=128, null=True)
    fingerprint = fields.CharField(max_length=64)
    variants = fields.BigIntField()
    customers = fields.BigIntField()
    contacts = fields.BigIntField()
    sales_reps = fields.BigIntField()
    admin_users = fields.BigIntField()
    users = fields.BigIntField(null=True)  # as reported; NULL: not reported
    integrations = fields.BigIntField(null=True)
    storage_bytes = fields.BigIntField()
    measured_at = fields.DatetimeField()
    applied = fields.BooleanField()  # False: older than the report already applied
    received_at = fields.DatetimeField()

    tenant_id: str

    class Meta:
        table = "usage_report"
        unique_together = (("tenant", "idempotency_key"),)
        indexes = (("tenant_id", "measured_at"),)


class StartsPerKind(Model):
    """One column per ``ProcessKind``, named in lower case (``column_of``): starts counted per kind."""

    product_sync = fields.BigIntField(default=0, db_default=0)
    stock_update = fields.BigIntField(default=0, db_default=0)
    price_update = fields.BigIntField(default=0, db_default=0)
    customer_sync = fields.BigIntField(default=0, db_default=0)
    order_export = fields.BigIntField(default=0, db_default=0)
    invoice_import = fields.BigIntField(default=0, db_default=0)
    delivery_notes = fields.BigIntField(default=0, db_default=0)
    pending_orders = fields.BigIntField(default=0, db_default=0)
    database_update = fields.BigIntField(default=0, db_default=0)

    class Meta:
        abstract = True

    @staticmethod
    def column_of(process: ProcessKind) -> str:
        """The column counting ``process``'s starts: its name in lower case."""
        return process.value.lower()

    def started(self, process: ProcessKind) -> int:
        value: int = getattr(self, self.column_of(process))
        return value


class ProcessCounter(StartsPerKind):
    """Processes started by a tenant in one billing period, in all and per kind. Changed only by conditional
    UPDATEs: one statement adds 1 to ``used`` and to the kind's column (``column_of``), so a kind's monthly
    cap is decided in the same atomic step as the credit limit."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="process_counters", on_delete=fields.CASCADE
    )
    period = fields.CharField(max_length=7)  # "2026-11"
    used = fields.BigIntField(default=0)

    tenant_id: str

    class Meta:
        table = "process_counter"
        unique_together = (("tenant", "period"),)


class ProcessDay(StartsPerKind):
    """The starts of one tenant's UTC day per kind, once the day is over: the usage history's rollup.

    Written once, by the first history that shows the day after it closed (``app.services.usage_history``),
    from ``process_start``: a closed day's starts never change again. No row: not rolled up yet.
    """

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="process_days", on_delete=fields.CASCADE
    )
    day = fields.DateField()

    tenant_id: str

    class Meta:
        table = "process_day"
        unique_together = (("tenant", "day"),)


class ProcessControl(Model):
    """What a tenant's admins decided for one kind of process: paused, or capped per billing period.

    No row: neither paused nor capped. ``monthly_cap`` NULL: no cap. The start's conditional UPDATE reads
    this row, so a pause or a cap applies to the next start on every instance.
    """

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="process_controls", on_delete=fields.CASCADE
    )
    process = fields.CharEnumField(ProcessKind, max_length=32)
    paused = fields.BooleanField(default=False)
    monthly_cap = fields.BigIntField(null=True)
    updated_at = fields.DatetimeField()
    updated_by = fields.CharField(max_length=254)

    tenant_id: str

    class Meta:
        table = "process_control"
        unique_together = (("tenant", "process"),)


class ProcessStart(Model):
    """A counted process start, whose id is the ticket. The idempotency key makes retries count once."""

    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="process_starts", on_delete=fields.CASCADE
    )
    idempotency_key = fields.CharField(max_length=128)
    process = fields.CharEnumField(ProcessKind, max_length=32)
    period = fields.CharField(max_length=7)
    started_at = fields.DatetimeField()

    tenant_id: str

    class Meta:
        table = "process_start"
        unique_together = (("tenant", "idempotency_key"),)
        # A kind's last start (one index lookup) and a range of days per kind (the usage history).
        indexes = (("tenant_id", "process", "started_at"),)


class LimitAlert(Model):
    """One crossing of a threshold (TRIGGERED) or its re-arming (RESOLVED), as stored and e-mailed."""

    id = fields.BigIntField(primary_key=True)  # insertion order: the order alerts happened in
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="limit_alerts", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(AlertKind, max_length=16)
    threshold = fields.SmallIntField()
    state = fields.CharEnumField(AlertState, max_length=16)
    used = fields.BigIntField()
    limit = fields.BigIntField()
    period = fields.CharField(max_length=7, null=True)  # processes only
    created_at = fields.DatetimeField()
    # NULL until pushed to live subscribers: an alert committed by a process that died before publishing
    # it is published after the restart (as the outbox does for e-mail).
    published_at = fields.DatetimeField(null=True)

    tenant_id: str

    class Meta:
        table = "limit_alert"
        indexes = (("tenant_id", "id"), ("published_at", "id"))


class AlertArming(Model):
    """Whether a (kind, threshold) of a tenant has fired: a crossing fires only while it is armed.

    Process alerts need no row: their counter only grows within a period, so the crossing itself
    (``used - 1 < value <= used``) is seen by exactly one start.
    """

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="alert_armings", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(AlertKind, max_length=16)
    threshold = fields.SmallIntField()
    triggered = fields.BooleanField(default=False)

    tenant_id: str

    class Meta:
        table = "alert_arming"
        unique_together = (("tenant", "kind", "threshold"),)
