"""What the ERP connector reports: the counts behind credits, users, integrations and storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.tenancy import Tenant


class TenantUsage(Model):
    """The latest usage applied for a tenant, one row each.

    A report replaces the row only when it was measured later than the one applied
    (a conditional UPDATE on ``measured_at``), so late or retried reports change nothing.
    ``credits`` is the seed's sum, stored so the quota check reads one row.
    """

    tenant: fields.OneToOneRelation[Tenant] = fields.OneToOneField(
        "models.Tenant", related_name="usage", on_delete=fields.CASCADE, primary_key=True
    )
    variants = fields.BigIntField(default=0)
    customers = fields.BigIntField(default=0)
    contacts = fields.BigIntField(default=0)
    sales_reps = fields.BigIntField(default=0)
    admin_users = fields.BigIntField(default=0)
    credits = fields.BigIntField(default=0)
    users = fields.BigIntField(default=0)
    integrations = fields.BigIntField(default=0)
    storage_bytes = fields.BigIntField(default=0)
    measured_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(null=True)

    tenant_id: str

    class Meta:
        table = "tenant_usage"
