"""Webhook endpoints and deliveries in the operator API: register, update, rotate, deactivate; the deliveries
(the dead letters are ``status: DEAD``) and their replay. Rules in ``app.services.webhook_endpoints``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from app.auth.operator import OPS_READ, WEBHOOKS_WRITE
from app.i18n import _
from app.models.webhooks import WebhookDelivery as DeliveryRow
from app.models.webhooks import WebhookDeliveryStatus
from app.models.webhooks import WebhookEndpoint as EndpointRow
from app.resolvers.common import (
    AFTER_HELP,
    DEFAULT_PAGE_SIZE,
    PAGE_SIZE_HELP,
    Connection,
    described_enum,
    page_size,
)
from app.resolvers.errors import InvalidInputError, NotFoundError
from app.resolvers.ids import global_id, key_of
from app.resolvers.operator.context import OperatorInfo
from app.resolvers.operator.permissions import needs
from app.services import webhook_endpoints
from app.services.errors import NotFound
from app.services.secrets import box_from_settings
from app.services.webhook_events import EventType

WebhookEventType = described_enum(
    EventType,
    "WebhookEventType",
    "A kind of webhook event (its `type` in the payload); docs/webhooks.md shows each one's `data`.",
    {
        EventType.ADD_ON_PURCHASED: "`add_on.purchased`: an add-on line was bought (one event per line).",
        EventType.ADD_ON_CANCELLED: "`add_on.cancelled`: an add-on was cancelled; it counts until `endsAt`.",
        EventType.ADD_ON_CANCELLATION_UNDONE: "`add_on.cancellation_undone`: a cancellation was withdrawn.",
        EventType.ADD_ON_ENDED: "`add_on.ended`: a cancelled add-on reached its end and no longer counts.",
        EventType.PLAN_CHANGED: "`plan.changed`: the environment moved to another plan.",
        EventType.LIMITS_CHANGED: "`limits.changed`: the effective limits changed; `data` has the new ones.",
        EventType.CREDIT_LIMIT_EXCEEDED: "`credit_limit.exceeded`: credits used passed the plan's maximum.",
        EventType.CREDIT_LIMIT_RECOVERED: "`credit_limit.recovered`: credits used are back within the limit.",
        EventType.ALERT_TRIGGERED: "`alert.triggered`: a limit alert (80%, 90%, 100%...) fired.",
        EventType.ALERT_RESOLVED: "`alert.resolved`: usage fell back below an alert's threshold.",
        EventType.PROCESS_ALLOWANCE_PASSED: "`process_allowance.passed`: processes started this period "
        "passed the allowance (estimate + 33%).",
    },
)

WebhookDeliveryStatusEnum = described_enum(
    WebhookDeliveryStatus,
    "WebhookDeliveryStatus",
    "Where a delivery of an event to an endpoint stands.",
    {
        WebhookDeliveryStatus.PENDING: "To be sent, or to be retried at `nextAttemptAt`.",
        WebhookDeliveryStatus.SUCCEEDED: "The receiver answered 2xx.",
        WebhookDeliveryStatus.DEAD: "Given up: refused (4xx other than 429) or still failing a day after the "
        "event. `replayWebhookDelivery` sends it again.",
    },
)

EndpointId = Annotated[strawberry.ID, strawberry.argument(description="A `WebhookEndpoint.id`.")]
DeliveryId = Annotated[strawberry.ID, strawberry.argument(description="A `WebhookDelivery.id`.")]


def endpoint_key(value: str) -> str:
    return key_of(value, "WebhookEndpoint", field="id")


def delivery_key(value: str) -> int:
    key = key_of(value, "WebhookDelivery", field="id")
    if not key.isdigit():
        raise NotFound(_("No webhook delivery has this id."), field="id")
    return int(key)


@strawberry.type(name="WebhookEndpoint", description="Where the SaaS receives signed events.")
class WebhookEndpoint:
    id: strawberry.ID = strawberry.field(description="Opaque id of the endpoint.")
    url: str = strawberry.field(description="Where events are POSTed (http or https).")
    description: str = strawberry.field(description="What the endpoint is for, as given.")
    event_types: list[WebhookEventType] = strawberry.field(  # type: ignore[valid-type]
        description="The event types sent to it; empty: every type."
    )
    is_active: bool = strawberry.field(description="Whether new events are queued for it.")
    previous_secret_expires_at: dt.datetime | None = strawberry.field(
        description="Until when the previous secret also signs (after a rotation); null: no previous one."
    )
    created_at: dt.datetime = strawberry.field(description="When it was registered.")
    updated_at: dt.datetime = strawberry.field(description="When it last changed.")

    @classmethod
    def of(cls, row: EndpointRow) -> WebhookEndpoint:
        return cls(
            id=global_id("WebhookEndpoint", row.id),
            url=row.url,
            description=row.description,
            event_types=[EventType(kind) for kind in row.event_types],
            is_active=row.is_active,
            previous_secret_expires_at=row.previous_secret_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(name="WebhookDelivery", description="One event to one endpoint: its attempts and outcome.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Opaque id of the delivery.")
    message_id: str = strawberry.field(description="The event's `webhook-id` header (`msg_...`).")
    event_type: WebhookEventType = strawberry.field(description="The kind of event.")  # type: ignore[valid-type]
    environment_slug: str | None = strawberry.field(description="The environment concerned, if any.")
    endpoint: WebhookEndpoint = strawberry.field(description="Where it goes.")
    status: WebhookDeliveryStatusEnum = strawberry.field(  # type: ignore[valid-type]
        description="Where it stands."
    )
    attempts: int = strawberry.field(description="Attempts made so far (reset by a replay).")
    next_attempt_at: dt.datetime = strawberry.field(description="When it is (or was) next due.")
    last_attempt_at: dt.datetime | None = strawberry.field(description="The last attempt, if any.")
    last_status_code: int | None = strawberry.field(description="The receiver's last HTTP status, if any.")
    last_error: str | None = strawberry.field(
        description='The last failure: "HTTP 500", "timed out", "ConnectError"... (never the body).'
    )
    delivered_at: dt.datetime | None = strawberry.field(description="When the receiver accepted it.")
    payload: JSON = strawberry.field(description="The body sent: `{type, timestamp, data}`.")
    created_at: dt.datetime = strawberry.field(description="When its event happened.")

    @classmethod
    def of(cls, row: DeliveryRow) -> WebhookDelivery:
        tenant = row.event.tenant
        return cls(
            id=global_id("WebhookDelivery", row.id),
            message_id=row.event.message_id,
            event_type=EventType(row.event.event_type),
            environment_slug=tenant.slug if tenant is not None else None,
            endpoint=WebhookEndpoint.of(row.endpoint),
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_attempt_at=row.last_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            payload=cast(JSON, row.event.payload),
            created_at=row.created_at,
        )


@strawberry.type(description="Webhook deliveries, newest first, by page.")
class WebhookDeliveryConnection(Connection[WebhookDelivery]):
    pass


@strawberry.input(description="A new webhook endpoint.")
class RegisterWebhookEndpointInput:
    url: str = strawberry.field(description="Where to POST events: http(s), at most 2,048 characters.")
    description: str = strawberry.field(default="", description="What it is for (at most 500 characters).")
    event_types: list[WebhookEventType] = strawberry.field(  # type: ignore[valid-type]
        default_factory=list, description="The event types to send; empty: every type."
    )


@strawberry.input(description="Changes to a webhook endpoint; what is left out stays as it is.")
class UpdateWebhookEndpointInput:
    url: str | None = strawberry.field(default=None, description="A new URL.")
    description: str | None = strawberry.field(default=None, description="A new description.")
    event_types: list[WebhookEventType] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="A new list of event types; empty: every type."
    )
    is_active: bool | None = strawberry.field(default=None, description="Whether new events are queued.")


@strawberry.type(description="The endpoint registered, with its signing secret, shown this once.")
class RegisterWebhookEndpointSuccess:
    endpoint: WebhookEndpoint = strawberry.field(description="The new endpoint.")
    secret: str = strawberry.field(
        description="The signing secret (`whsec_...`): store it now, it is not shown again."
    )


@strawberry.type(description="The endpoint as changed.")
class UpdateWebhookEndpointSuccess:
    endpoint: WebhookEndpoint = strawberry.field(description="The endpoint after the change.")


@strawberry.type(description="The endpoint deactivated: no new events are queued for it.")
class DeactivateWebhookEndpointSuccess:
    endpoint: WebhookEndpoint = strawberry.field(description="The endpoint, inactive.")


@strawberry.type(
    description="The new signing secret, shown this once; the previous one signs too until "
    "`endpoint.previousSecretExpiresAt`."
)
class RotateWebhookSecretSuccess:
    endpoint: WebhookEndpoint = strawberry.field(description="The endpoint with its rotation's end.")
    secret: str = strawberry.field(description="The new secret (`whsec_...`): store it now.")


@strawberry.type(description="The delivery is PENDING again, due now.")
class ReplayWebhookDeliverySuccess:
    delivery: WebhookDelivery = strawberry.field(description="The delivery, PENDING.")


@strawberry.type(description="The events queued again for the endpoint.")
class ReplayWebhookEventsSuccess:
    queued: int = strawberry.field(description="How many events were queued (at most 10,000 per call).")


RegisterWebhookEndpointResult = Annotated[
    RegisterWebhookEndpointSuccess | InvalidInputError,
    strawberry.union(
        "RegisterWebhookEndpointResult", description="The endpoint, or why none was registered."
    ),
]
UpdateWebhookEndpointResult = Annotated[
    UpdateWebhookEndpointSuccess | NotFoundError | InvalidInputError,
    strawberry.union("UpdateWebhookEndpointResult", description="The endpoint, or why nothing changed."),
]
DeactivateWebhookEndpointResult = Annotated[
    DeactivateWebhookEndpointSuccess | NotFoundError,
    strawberry.union("DeactivateWebhookEndpointResult", description="The endpoint, or why nothing changed."),
]
RotateWebhookSecretResult = Annotated[
    RotateWebhookSecretSuccess | NotFoundError,
    strawberry.union("RotateWebhookSecretResult", description="The new secret, or why there is none."),
]
ReplayWebhookDeliveryResult = Annotated[
    ReplayWebhookDeliverySuccess | NotFoundError | InvalidInputError,
    strawberry.union("ReplayWebhookDeliveryResult", description="The delivery, or why it was not replayed."),
]
ReplayWebhookEventsResult = Annotated[
    ReplayWebhookEventsSuccess | NotFoundError,
    strawberry.union("ReplayWebhookEventsResult", description="How many were queued, or why none was."),
]


@strawberry.type
class Query:
    @strawberry.field(description="Every webhook endpoint, oldest first.", extensions=needs(OPS_READ))
    async def webhook_endpoints(self, info: OperatorInfo) -> list[WebhookEndpoint] | None:
        return [WebhookEndpoint.of(row) for row in await webhook_endpoints.endpoints()]

    @strawberry.field(
        description="Webhook deliveries, newest first; `status: DEAD` lists the dead letters to replay.",
        extensions=needs(OPS_READ),
    )
    async def webhook_deliveries(
        self,
        info: OperatorInfo,
        status: Annotated[
            WebhookDeliveryStatusEnum | None,  # type: ignore[valid-type]
            strawberry.argument(description="Only the deliveries in this status."),
        ] = None,
        first: Annotated[int | None, strawberry.argument(description=PAGE_SIZE_HELP)] = DEFAULT_PAGE_SIZE,
        after: Annotated[str | None, strawberry.argument(description=AFTER_HELP)] = None,
    ) -> WebhookDeliveryConnection | None:
        page = await webhook_endpoints.deliveries(status=status, first=page_size(first), after=after)
        return WebhookDeliveryConnection.from_page(page, WebhookDelivery.of, after=after)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Register an endpoint; its signing secret is in the answer, once.",
        extensions=needs(WEBHOOKS_WRITE),
    )
    async def register_webhook_endpoint(
        self,
        info: OperatorInfo,
        input: Annotated[
            RegisterWebhookEndpointInput, strawberry.argument(description="Where, and which events.")
        ],
    ) -> RegisterWebhookEndpointResult | None:
        made = await webhook_endpoints.register(
            info.context.operator,
            box_from_settings(info.context.settings),
            url=input.url,
            description=input.description,
            event_types=[EventType(kind).value for kind in input.event_types],
            now=info.context.clock.now(),
        )
        return RegisterWebhookEndpointSuccess(endpoint=WebhookEndpoint.of(made.endpoint), secret=made.secret)

    @strawberry.mutation(
        description="Change an endpoint's URL, description, event types or activity.",
        extensions=needs(WEBHOOKS_WRITE),
    )
    async def update_webhook_endpoint(
        self,
        info: OperatorInfo,
        id: EndpointId,
        input: Annotated[
            UpdateWebhookEndpointInput, strawberry.argument(description="What changes; the rest stays.")
        ],
    ) -> UpdateWebhookEndpointResult | None:
        kinds = input.event_types
        row = await webhook_endpoints.update(
            info.context.operator,
            endpoint_key(id),
            url=input.url,
            description=input.description,
            event_types=None if kinds is None else [EventType(kind).value for kind in kinds],
            is_active=input.is_active,
            now=info.context.clock.now(),
        )
        return UpdateWebhookEndpointSuccess(endpoint=WebhookEndpoint.of(row))

    @strawberry.mutation(
        description="Stop queueing events for an endpoint; those already queued still go out.",
        extensions=needs(WEBHOOKS_WRITE),
    )
    async def deactivate_webhook_endpoint(
        self, info: OperatorInfo, id: EndpointId
    ) -> DeactivateWebhookEndpointResult | None:
        row = await webhook_endpoints.deactivate(
            info.context.operator, endpoint_key(id), now=info.context.clock.now()
        )
        return DeactivateWebhookEndpointSuccess(endpoint=WebhookEndpoint.of(row))

    @strawberry.mutation(
        description="A new signing secret, shown once, signing at once; the previous one also signs for 24 h "
        "(a second signature) unless `expirePreviousNow`.",
        extensions=needs(WEBHOOKS_WRITE),
    )
    async def rotate_webhook_secret(
        self,
        info: OperatorInfo,
        id: EndpointId,
        expire_previous_now: Annotated[
            bool, strawberry.argument(description="Stop signing with the previous secret at once.")
        ] = False,
    ) -> RotateWebhookSecretResult | None:
        made = await webhook_endpoints.rotate_secret(
            info.context.operator,
            box_from_settings(info.context.settings),
            endpoint_key(id),
            expire_previous_now=expire_previous_now,
            now=info.context.clock.now(),
        )
        return RotateWebhookSecretSuccess(endpoint=WebhookEndpoint.of(made.endpoint), secret=made.secret)

    @strawberry.mutation(
        description="Send a DEAD delivery again: PENDING, due now, attempts reset, a new day of retries.",
        extensions=needs(WEBHOOKS_WRITE),
    )
    async def replay_webhook_delivery(
        self, info: OperatorInfo, id: DeliveryId
    ) -> ReplayWebhookDeliveryResult | None:
        row = await webhook_endpoints.replay_delivery(
            info.context.operator, delivery_key(id), now=info.context.clock.now()
        )
        return ReplayWebhookDeliverySuccess(delivery=WebhookDelivery.of(row))

    @strawberry.mutation(
        description="Queue again for an endpoint every event since a time that it wants, in order (those it "
        "never had included); receivers de-duplicate by `webhook-id`.",
        extensions=needs(WEBHOOKS_WRITE),
    )
    async def replay_webhook_events(
        self,
        info: OperatorInfo,
        endpoint_id: EndpointId,
        since: Annotated[dt.datetime, strawberry.argument(description="Events at or after this instant.")],
    ) -> ReplayWebhookEventsResult | None:
        queued = await webhook_endpoints.replay_events(
            info.context.operator, endpoint_key(endpoint_id), since=since, now=info.context.clock.now()
        )
        return ReplayWebhookEventsSuccess(queued=queued)
