"""The e-mail outbox: written in the same transaction as the change it reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from app.models.enums import OutboxStatus

if TYPE_CHECKING:
    from app.models.tenancy import Tenant


class OutboxEmail(Model):
    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="outbox_emails", null=True, on_delete=fields.SET_NULL
    )
    # A stable key makes "send this once" idempotent across retries and periodic tasks.
    dedupe_key = fields.CharField(max_length=255, unique=True, null=True)
    to_address = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=300)
    body = fields.TextField()  # the plain-text part
    html_body = fields.TextField(null=True)  # the HTML part (rows queued before issue 16 have none)
    kind = fields.CharField(max_length=32, null=True)  # the template it was rendered from ("purchase")
    locale = fields.CharField(max_length=16, null=True)  # the recipient's language it was rendered in
    # Files rendered when the e-mail is sent, by reference: [{"kind": "invoice_pdf", "invoice_id": ...}].
    attachments: fields.Field[list[dict[str, str]]] = fields.JSONField(default=list, db_default=[])
    status = fields.CharEnumField(OutboxStatus, max_length=16, default=OutboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    claimed_until = fields.DatetimeField(null=True)  # lease of the dispatcher sending it
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    tenant_id: str | None

    class Meta:
        table = "outbox_email"
        indexes = (("status", "next_attempt_at"),)
