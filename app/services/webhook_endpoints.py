"""Webhook endpoints and their deliveries, for operators (issue 13): register, update, rotate the secret,
deactivate, list; the deliveries by status (DEAD ones are the dead letters) and their replay.

Endpoint URLs may name private or loopback hosts: only operators (the vendor's staff, with the
``webhooks:write`` scope, every action audited) register them, and the receiver is the SaaS's own service,
often on the same private network as the gateway. What keeps an endpoint from becoming a way to read
internal services is on the delivery side: redirects are not followed and a receiver's answer is never
stored or shown, only its status code (``app.notifications.webhooks``).

A secret (``whsec_`` + base64 of 32 random bytes) is shown once, at registration or rotation, and stored
encrypted (``app.services.secrets``). A rotation keeps the previous secret signing too (a second signature)
for 24 hours, or not at all with ``expire_previous_now``, so a receiver switches without losing a message.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.auth.operator import Operator
from app.i18n import _
from app.models.webhooks import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, WebhookEvent
from app.services import cursors, operator_audit
from app.services.cursors import Page
from app.services.errors import InvalidInput, NotFound, shown
from app.services.secrets import SecretBox
from app.services.webhook_events import RETRY_FOR, EventType, lane_of

MAX_URL = 2048
MAX_DESCRIPTION = 500
ROTATION_OVERLAP = dt.timedelta(hours=24)
MAX_REPLAY = 10_000  # events replayed by one call


@dataclass(frozen=True, slots=True)
class EndpointWithSecret:
    """An endpoint and its new secret, shown this once."""

    endpoint: WebhookEndpoint
    secret: str


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def valid_url(url: str) -> str:
    """An absolute http(s) URL of at most 2,048 characters, without credentials in it."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InvalidInput(_("The URL must have 1 to {max_url} characters.", max_url=MAX_URL), field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number in range)
    except ValueError:
        raise InvalidInput(_("{url} is not a URL.", url=shown(url)), field="url") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(_("The URL must be an absolute http:// or https:// URL."), field="url")
    if parts.username or parts.password:
        raise InvalidInput(_("The URL must not carry credentials: the signature authenticates."), field="url")
    if any(ord(character) < 33 or ord(character) == 127 for character in url):
        raise InvalidInput(_("The URL must not contain spaces or control characters."), field="url")
    return url


def valid_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(
            _("The description has at most {max_description} characters.", max_description=MAX_DESCRIPTION),
            field="description",
        )
    return description


def valid_event_types(event_types: list[str]) -> list[str]:
    """Known event types, each once, in EventType's order; none means every type."""
    known = {kind.value for kind in EventType}
    unknown = [kind for kind in event_types if kind not in known]
    if unknown:
        raise InvalidInput(_("Unknown event type {unknown}.", unknown=shown(unknown[0])), field="eventTypes")
    return [kind.value for kind in EventType if kind.value in event_types]


async def _endpoint(endpoint_id: str) -> WebhookEndpoint:
    try:
        key = uuid.UUID(endpoint_id)
    except ValueError:
        key = None
    endpoint = await WebhookEndpoint.get_or_none(id=key) if key is not None else None
    if endpoint is None:
        raise NotFound(_("No webhook endpoint has this id."), field="id")
    return endpoint


async def register(
    operator: Operator,
    box: SecretBox,
    *,
    url: str,
    description: str,
    event_types: list[str],
    now: dt.datetime,
) -> EndpointWithSecret:
    url, description, kinds = valid_url(url), valid_description(description), valid_event_types(event_types)
    secret = new_secret()
    async with in_transaction():
        endpoint = await WebhookEndpoint.create(
            url=url,
            description=description,
            event_types=kinds,
            secret_encrypted=box.encrypt(secret),
            created_at=now,
            updated_at=now,
        )
        await operator_audit.record(
            operator, "webhook_endpoint.register", now=now, subject_id=endpoint.id, url=url, eventTypes=kinds
        )
    return EndpointWithSecret(endpoint, secret)


async def update(
    operator: Operator,
    endpoint_id: str,
    *,
    url: str | None,
    description: str | None,
    event_types: list[str] | None,
    is_active: bool | None,
    now: dt.datetime,
) -> WebhookEndpoint:
    """Changes what is given; deliveries already queued keep their endpoint's new URL and secret."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = valid_url(url)
    if description is not None:
        changes["description"] = valid_description(description)
    if event_types is not None:
        changes["event_types"] = valid_event_types(event_types)
    if is_active is not None:
        changes["is_active"] = is_active
    async with in_transaction():
        endpoint = await _endpoint(endpoint_id)
        await WebhookEndpoint.filter(id=endpoint.id).update(**changes, updated_at=now)
        audited = {
            ("eventTypes" if name == "event_types" else name): value for name, value in changes.items()
        }
        await operator_audit.record(
            operator, "webhook_endpoint.update", now=now, subject_id=endpoint.id, **audited
        )
        await endpoint.refresh_from_db()
    return endpoint


async def deactivate(operator: Operator, endpoint_id: str, *, now: dt.datetime) -> WebhookEndpoint:
    """No new deliveries; those queued still go out (their events happened while it was active)."""
    return await update(
        operator, endpoint_id, url=None, description=None, event_types=None, is_active=False, now=now
    )


async def rotate_secret(
    operator: Operator, box: SecretBox, endpoint_id: str, *, expire_previous_now: bool, now: dt.datetime
) -> EndpointWithSecret:
    secret = new_secret()
    async with in_transaction():
        endpoint = await _endpoint(endpoint_id)
        expires = now if expire_previous_now else now + ROTATION_OVERLAP
        await WebhookEndpoint.filter(id=endpoint.id).update(
            secret_encrypted=box.encrypt(secret),
            previous_secret_encrypted=endpoint.secret_encrypted,
            previous_secret_expires_at=expires,
            updated_at=now,
        )
        await operator_audit.record(
            operator,
            "webhook_endpoint.rotate_secret",
            now=now,
            subject_id=endpoint.id,
            previousSecretExpiresAt=expires.isoformat(),
        )
        await endpoint.refresh_from_db()
    return EndpointWithSecret(endpoint, secret)


async def endpoints() -> list[WebhookEndpoint]:
    return await WebhookEndpoint.all().order_by("created_at", "id")


async def deliveries(
    *, status: WebhookDeliveryStatus | None, first: int, after: str | None
) -> Page[WebhookDelivery]:
    """Deliveries, newest first: ``status=DEAD`` lists the dead letters of the operations view."""
    rows = WebhookDelivery.all()
    if status is not None:
        rows = rows.filter(status=status)
    query = rows.filter(id__lt=cursors.decode_id(after, "delivery")) if after is not None else rows
    page = await query.order_by("-id").limit(first + 1).select_related("event", "endpoint", "event__tenant")
    return Page(
        items=[(cursors.encode("delivery", row.id), row) for row in page[:first]],
        has_next_page=len(page) > first,
        total_count=await rows.count(),
    )


async def replay_delivery(operator: Operator, delivery_id: int, *, now: dt.datetime) -> WebhookDelivery:
    """A DEAD delivery back to PENDING, due now, its attempts reset and a new day of retries from now. It
    goes out ahead of later deliveries of its environment that are still PENDING (its event is older)."""
    async with in_transaction():
        replayed = await WebhookDelivery.filter(id=delivery_id, status=WebhookDeliveryStatus.DEAD).update(
            status=WebhookDeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            give_up_at=now + RETRY_FOR,
            claimed_until=None,
        )
        if not replayed:
            if await WebhookDelivery.exists(id=delivery_id):
                raise InvalidInput(_("Only a DEAD delivery can be replayed."), field="id")
            raise NotFound(_("No webhook delivery has this id."), field="id")
        delivery = await WebhookDelivery.get(id=delivery_id).select_related(
            "event", "endpoint", "event__tenant"
        )
        await operator_audit.record(
            operator,
            "webhook_delivery.replay",
            now=now,
            tenant_id=delivery.event.tenant_id,
            subject_id=str(delivery_id),
        )
    return delivery


async def replay_events(operator: Operator, endpoint_id: str, *, since: dt.datetime, now: dt.datetime) -> int:
    """Queue again to ``endpoint_id`` every event since ``since`` that it wants (at most 10,000): those it
    never had (registered later) and those it had (sent again, same ``webhook-id``). The number queued."""
    async with in_transaction():
        endpoint = await _endpoint(endpoint_id)
        events = (
            await WebhookEvent.filter(created_at__gte=since)
            .filter(Q(event_type__in=endpoint.event_types) if endpoint.event_types else Q())
            .order_by("id")
            .limit(MAX_REPLAY)
            .values_list("id", "tenant_id")
        )
        ids = [event_id for event_id, _ in events]
        # A delivery already PENDING goes out anyway; the others are sent again.
        await (
            WebhookDelivery.filter(endpoint_id=endpoint.id, event_id__in=ids)
            .exclude(status=WebhookDeliveryStatus.PENDING)
            .update(
                status=WebhookDeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                give_up_at=now + RETRY_FOR,
                claimed_until=None,
            )
        )
        await WebhookDelivery.bulk_create(
            [
                WebhookDelivery(
                    event_id=event_id,
                    endpoint_id=endpoint.id,
                    lane=lane_of(tenant_id),
                    next_attempt_at=now,
                    give_up_at=now + RETRY_FOR,
                    created_at=now,
                )
                for event_id, tenant_id in events
            ],
            ignore_conflicts=True,
        )
        await operator_audit.record(
            operator,
            "webhook_endpoint.replay_events",
            now=now,
            subject_id=endpoint.id,
            since=since.isoformat(),
            events=len(ids),
        )
    return len(ids)
