"""The vendor's own staff and systems: operator keys, and the audit of what each one did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.tenancy import Tenant


class OperatorKey(Model):
    """A credential of the operator API (``/operator/graphql``). Only a SHA-256 hash of it is stored."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=200)
    prefix = fields.CharField(max_length=16, unique=True)  # shown in listings and in the audit
    key_hash = fields.CharField(max_length=64, unique=True)
    scopes: fields.Field[list[str]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "operator_key"


class OperatorAuditEntry(Model):
    """One operator action: which key, what, on which environment (if any), and the details."""

    id = fields.UUIDField(primary_key=True)
    operator_key: fields.ForeignKeyRelation[OperatorKey] = fields.ForeignKeyField(
        "models.OperatorKey", related_name="audit_entries", on_delete=fields.RESTRICT
    )
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="operator_audit_entries", null=True, on_delete=fields.SET_NULL
    )
    action = fields.CharField(max_length=64)  # e.g. "tenant.create", "coupon.deactivate"
    subject_id = fields.CharField(max_length=255, null=True)
    details: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()

    operator_key_id: str
    tenant_id: str | None

    class Meta:
        table = "operator_audit_entry"
        indexes = (("created_at",),)
