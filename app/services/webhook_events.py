"""Emitting webhook events: called by the services inside the transaction of the change they report, so
that an event exists exactly when its change committed (the outbox pattern). Delivery is
``app.notifications.webhooks``'s."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from app.models.metering import AlertKind, AlertState
from app.models.tenancy import Tenant
from app.models.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.services import public_ids
from app.services.credits import BYTES_PER_MB
from app.services.limits import Limits
from app.services.subscriptions import active_plan

if TYPE_CHECKING:
    from app.models.billing import AddOnSubscription
    from app.models.metering import LimitAlert

NO_ENVIRONMENT_LANE = "-"  # the ordering lane of events that concern no environment
CREDIT_LIMIT_THRESHOLD = 100  # the credits alert at 100%: above it no sync process starts
RETRY_FOR = dt.timedelta(hours=24)  # a delivery still failing this long after its event (or replay) is DEAD
# Wake-ups of the delivery tasks of this process (``app.notifications.webhooks``), a little after an emit:
# the emitting transaction has then usually committed; if not, the task's poll finds the rows anyway.
_listeners: set[Callable[[], None]] = set()
WAKE_DELAYS = (0.05, 0.5)


class EventType(StrEnum):
    """Every kind of event; docs/webhooks.md shows each one's ``data``."""

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


@dataclass(frozen=True, slots=True)
class Event:
    """An event to record (``emit``, or ``emit_all`` for several at once)."""

    event_type: EventType
    tenant_id: uuid.UUID | str | None
    data: dict[str, Any]


async def emit(
    event_type: EventType,
    *,
    tenant_id: uuid.UUID | str | None,
    data: dict[str, Any],
    now: dt.datetime,
) -> WebhookEvent:
    """Record one event and its deliveries, one per active endpoint that wants its type, in the caller's
    transaction: both exist exactly when the change committed, and a crash after the commit loses nothing
    (the outbox pattern). ``data`` must be JSON (strings for money)."""
    event = Event(event_type, tenant_id, data)
    row = _row(event, now)
    await row.save()
    endpoints = await WebhookEndpoint.filter(is_active=True).only("id", "event_types")
    wanted = [endpoint for endpoint in endpoints if wants(endpoint.event_types, event_type)]
    if wanted:
        await WebhookDelivery.bulk_create([_delivery(row.id, event, endpoint, now) for endpoint in wanted])
        _wake_soon()
    return row


async def emit_all(events: Sequence[Event], *, now: dt.datetime) -> None:
    """Record several events in this order, as ``emit`` records one, in a number of statements that does
    not grow with them (docs/design.md): the endpoints, the events and, when an endpoint wants some, their
    ids and the deliveries."""
    if not events:
        return
    endpoints = await WebhookEndpoint.filter(is_active=True).only("id", "event_types")
    rows = [_row(event, now) for event in events]
    await WebhookEvent.bulk_create(rows)  # in list order: increasing ids, the order of delivery
    wanted = [
        (row, event, endpoint)
        for row, event in zip(rows, events, strict=True)
        for endpoint in endpoints
        if wants(endpoint.event_types, event.event_type)
    ]
    if not wanted:
        return
    messages = [row.message_id for row in rows]
    ids = dict(await WebhookEvent.filter(message_id__in=messages).values_list("message_id", "id"))
    await WebhookDelivery.bulk_create(
        [_delivery(ids[row.message_id], event, endpoint, now) for row, event, endpoint in wanted]
    )
    _wake_soon()


def _row(event: Event, now: dt.datetime) -> WebhookEvent:
    return WebhookEvent(
        message_id=f"msg_{secrets.token_hex(12)}",
        tenant_id=event.tenant_id,
        event_type=event.event_type.value,
        payload={"type": event.event_type.value, "timestamp": now.isoformat(), "data": event.data},
        created_at=now,
    )


def _delivery(event_id: int, event: Event, endpoint: WebhookEndpoint, now: dt.datetime) -> WebhookDelivery:
    return WebhookDelivery(
        event_id=event_id,
        endpoint_id=endpoint.id,
        lane=lane_of(event.tenant_id),
        next_attempt_at=now,
        give_up_at=now + RETRY_FOR,
        created_at=now,
    )


def lane_of(tenant_id: uuid.UUID | str | None) -> str:
    """Deliveries go out in order within a lane: one per environment (and one for no environment)."""
    return str(tenant_id) if tenant_id is not None else NO_ENVIRONMENT_LANE


def wants(event_types: list[str], event_type: EventType) -> bool:
    """An endpoint listing no event types wants them all."""
    return not event_types or event_type.value in event_types


def add_listener(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` shortly after each emit that queued deliveries; returns the remover."""
    _listeners.add(callback)
    return lambda: _listeners.discard(callback)


def _wake_soon() -> None:
    if not _listeners:
        return
    loop = asyncio.get_running_loop()
    for delay in WAKE_DELAYS:
        for callback in tuple(_listeners):
            loop.call_later(delay, callback)


# --- The data of each kind (docs/webhooks.md): built here, so that every emitter says it the same way. ---


def money(amount: Decimal) -> str:
    return str(amount)


def add_on_purchased(
    tenant: Tenant,
    *,
    order_id: uuid.UUID,
    add_on_code: str,
    subscription_id: uuid.UUID | None,
    quantity: int,
    unit_price: Decimal,
    currency: str,
) -> Event:
    return Event(
        EventType.ADD_ON_PURCHASED,
        tenant.id,
        {
            "environment": tenant.slug,
            "order_id": public_ids.encode("Order", order_id),
            "active_add_on_id": public_ids.encode("ActiveAddOn", subscription_id)
            if subscription_id is not None
            else None,
            "add_on": add_on_code,
            "quantity": quantity,
            "unit_price": money(unit_price),
            "currency": currency,
        },
    )


async def emit_add_on_change(
    event_type: EventType,
    subscription: AddOnSubscription,
    tenant: Tenant,
    *,
    ends_at: dt.datetime | None,
    now: dt.datetime,
) -> None:
    """add_on.cancelled, add_on.cancellation_undone, add_on.ended (``subscription.add_on`` loaded);
    ``ends_at`` as it is after the change (null: the add-on continues)."""
    await emit(
        event_type,
        tenant_id=tenant.id,
        data={
            "environment": tenant.slug,
            "active_add_on_id": public_ids.encode("ActiveAddOn", subscription.id),
            "add_on": subscription.add_on.code,
            "quantity": subscription.quantity,
            "ends_at": ends_at.isoformat() if ends_at is not None else None,
        },
        now=now,
    )


async def emit_limits_changed(tenant: Tenant, *, cause: EventType, now: dt.datetime) -> None:
    """The effective limits in force at ``now`` (read in the caller's transaction, after the change)."""
    plan = await active_plan(tenant, now=now)
    if plan is None:
        return
    event = limits_changed(tenant, plan.effective_limits, cause=cause)
    await emit(event.event_type, tenant_id=event.tenant_id, data=event.data, now=now)


def limits_changed(tenant: Tenant, limits: Limits, *, cause: EventType) -> Event:
    """limits.changed with ``limits``, the effective limits after the change."""
    return Event(
        EventType.LIMITS_CHANGED,
        tenant.id,
        {
            "environment": tenant.slug,
            "cause": cause.value,
            "limits": {
                "storage_bytes": limits.storage_mb * BYTES_PER_MB,
                "users": limits.users,
                "integrations": limits.integrations,
                "credits": limits.credits,
            },
        },
    )


async def emit_alerts(tenant_id: uuid.UUID | str, alerts: Sequence[LimitAlert], *, now: dt.datetime) -> None:
    """alert.triggered / alert.resolved for each alert; the credits alert at 100% is also the credit limit
    exceeded (no sync process starts above it) or recovered."""
    if not alerts:
        return
    slug = await Tenant.filter(id=tenant_id).first().values_list("slug", flat=True)
    for alert in alerts:
        triggered = alert.state == AlertState.TRIGGERED
        figures = {"used": alert.used, "limit": alert.limit}
        await emit(
            EventType.ALERT_TRIGGERED if triggered else EventType.ALERT_RESOLVED,
            tenant_id=tenant_id,
            data={
                "environment": slug,
                "alert_id": alert.id,
                "kind": alert.kind.value,
                "threshold": alert.threshold,
                **figures,
                "period": alert.period,
            },
            now=now,
        )
        if alert.kind == AlertKind.CREDITS and alert.threshold == CREDIT_LIMIT_THRESHOLD:
            await emit(
                EventType.CREDIT_LIMIT_EXCEEDED if triggered else EventType.CREDIT_LIMIT_RECOVERED,
                tenant_id=tenant_id,
                data={"environment": slug, **figures},
                now=now,
            )
