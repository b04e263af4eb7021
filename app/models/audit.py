"""Who changed a subscription, and how."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.tenancy import Tenant


class AuditEntry(Model):
    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="audit_entries", on_delete=fields.CASCADE
    )
    actor = fields.CharField(max_length=254)  # a user's e-mail or "api-key:<prefix>" or "system"
    action = fields.CharField(max_length=64)  # e.g. "checkout", "add_on.cancel"
    subject_id = fields.CharField(max_length=64, null=True)
    details: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()

    tenant_id: str

    class Meta:
        table = "audit_entry"
        indexes = (("tenant_id", "created_at"),)
