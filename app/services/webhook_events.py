"""Emitting webhook events: called by the services inside the transaction of the change they report, so
that an event exists exactly when its change committed (the outbox pattern). Delivery is
``app.notifications.webhooks``'s."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from enum import StrEnum
from typing import Any

from app.models.webhooks import WebhookEvent


class EventType(StrEnum):
    ADD_ON_PURCHASED = "add_on.purchased"
    ADD_ON_CANCELLED = "add_on.cancelled"
    ADD_ON_CANCELLATION_UNDONE = "add_on.cancellation_undone"
    ADD_ON_ENDED = "add_on.ended"
    PLAN_CHANGED = "plan.changed"
    LIMITS_CHANGED = "limits.changed"
    CREDIT_LIMIT_EXCEEDED = "credit_limit.exceeded"
    CREDIT_LIMIT_RECOVERED = "credit_limit.recovered"
    ALERT_TRIGGERED = "alert.triggered"
    ALERT_RESOLVED = "alert.resolved"
    PROCESS_ALLOWANCE_PASSED = "process_allowance.passed"


async def emit(
    event_type: EventType,
    *,
    tenant_id: uuid.UUID | str | None,
    data: dict[str, Any],
    now: dt.datetime,
) -> WebhookEvent:
    """Record one event (in the caller's transaction); ``data`` must be JSON (strings for money)."""
    message_id = f"msg_{secrets.token_hex(12)}"
    return await WebhookEvent.create(
        message_id=message_id,
        tenant_id=tenant_id,
        event_type=event_type.value,
        payload={"type": event_type.value, "timestamp": now.isoformat(), "data": data},
        created_at=now,
    )
