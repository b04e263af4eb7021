"""Webhooks: the events the SaaS hears about (Standard Webhooks), written in the transaction of the change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.tenancy import Tenant


class WebhookEvent(Model):
    """One event, once: its ``message_id`` is the Standard Webhooks ``webhook-id`` every delivery of it
    carries, so a receiver de-duplicates retries by it."""

    id = fields.BigIntField(primary_key=True)  # increasing: the order of events
    message_id = fields.CharField(max_length=64, unique=True)  # "msg_..."
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="webhook_events", null=True, on_delete=fields.CASCADE
    )
    event_type = fields.CharField(max_length=64)  # "add_on.purchased"
    payload: fields.Field[dict[str, Any]] = fields.JSONField()  # the whole body sent
    created_at = fields.DatetimeField()

    tenant_id: str | None

    class Meta:
        table = "webhook_event"
