"""Webhooks: the events the SaaS hears about (Standard Webhooks), written in the transaction of the change."""

from __future__ import annotations

import uuid
from enum import StrEnum
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


class WebhookDeliveryStatus(StrEnum):
    PENDING = "PENDING"  # to be sent, or to be retried at next_attempt_at
    SUCCEEDED = "SUCCEEDED"  # the receiver answered 2xx
    DEAD = "DEAD"  # refused (4xx other than 429), or still failing a day after the event: replayable


class WebhookEndpoint(Model):
    """Where the SaaS hears of events: a URL, the event types it wants (none listed: all), and its signing
    secrets, encrypted (``app.services.secrets``). During a rotation the previous secret signs too, until
    ``previous_secret_expires_at``, so a receiver can switch secrets without losing a message."""

    id = fields.UUIDField(primary_key=True)
    url = fields.CharField(max_length=2048)
    description = fields.CharField(max_length=500, default="")
    event_types: fields.Field[list[str]] = fields.JSONField(default=list)  # empty: every event type
    is_active = fields.BooleanField(default=True)
    secret_encrypted = fields.TextField()
    previous_secret_encrypted = fields.TextField(null=True)
    previous_secret_expires_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "webhook_endpoint"


class WebhookDelivery(Model):
    """One event to one endpoint: its attempts and outcome. Deliveries of the same environment (``lane``) to
    the same endpoint go out in the order of their events: one still PENDING holds back the
    later ones (``app.notifications.webhooks``)."""

    id = fields.BigIntField(primary_key=True)
    event: fields.ForeignKeyRelation[WebhookEvent] = fields.ForeignKeyField(
        "models.WebhookEvent", related_name="deliveries", on_delete=fields.CASCADE
    )
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name="deliveries", on_delete=fields.CASCADE
    )
    lane = fields.CharField(max_length=64)  # the event's tenant id, or "-" for events of no environment
    status = fields.CharEnumField(WebhookDeliveryStatus, max_length=16, default=WebhookDeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    give_up_at = fields.DatetimeField()  # a day after the event (or its replay): a failure then is DEAD
    claimed_until = fields.DatetimeField(null=True)  # lease of the deliverer sending it
    last_attempt_at = fields.DatetimeField(null=True)
    last_status_code = fields.IntField(null=True)
    last_error = fields.CharField(max_length=500, null=True)
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    event_id: int
    endpoint_id: uuid.UUID

    class Meta:
        table = "webhook_delivery"
        unique_together = (("event", "endpoint"),)
        # Due rows by time, and the "older PENDING of the same lane" probe of the ordering rule.
        indexes = (("status", "next_attempt_at"), ("endpoint_id", "lane", "status", "event_id"))
