"""Webhooks end to end, against a real receiver (Starlette on uvicorn on a free port) that checks every
message with the ``standardwebhooks`` library's own verifier: every event kind, produced by real changes
over GraphQL; retries after 5xx, none after 4xx, 429 with Retry-After, timeouts; order per environment
under failures; dead letters after a day and their replay; secret rotation; a crash between the commit and
the delivery; two delivery tasks at once sending each message once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from app.clock import FrozenClock
from app.main import create_app
from app.models.metering import ProcessCounter
from app.models.tenancy import Tenant
from app.models.webhooks import WebhookDelivery, WebhookDeliveryStatus
from app.notifications.webhooks import WebhookDeliverer
from app.seed import SeedResult
from app.services.lifecycle import notify_ended_add_ons
from app.services.secrets import box_from_settings
from app.services.webhook_events import EventType, emit
from app.settings import Settings
from tests.api.test_cancellation import CANCEL, UNDO, add_on_id
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient
from tests.live import serving
from tests.operator.conftest import OperatorClient

REGISTER = """
mutation($input: RegisterWebhookEndpointInput!) {
  registerWebhookEndpoint(input: $input) {
    __typename ... on RegisterWebhookEndpointSuccess { secret endpoint { id } } ... on Error { code field }
  }
}
"""
ROTATE = """
mutation($id: ID!, $now: Boolean!) {
  rotateWebhookSecret(id: $id, expirePreviousNow: $now) {
    __typename ... on RotateWebhookSecretSuccess { secret endpoint { previousSecretExpiresAt } }
  }
}
"""
DEAD = """
{ webhookDeliveries(status: DEAD) { totalCount nodes { id messageId status attempts lastStatusCode lastError
  eventType environmentSlug } } }
"""
REPLAY = """
mutation($id: ID!) {
  replayWebhookDelivery(id: $id) {
    __typename ... on ReplayWebhookDeliverySuccess { delivery { status attempts } } ... on Error { code }
  }
}
"""
ADD = 'mutation { addToCart(addOnCode: "storage-500mb") { __typename } }'
CHECKOUT = """
mutation($key: String!) {
  checkout(idempotencyKey: $key) { __typename ... on CheckoutSuccess { order { id } } ... on Error { code } }
}
"""
START = """
mutation($key: String!) {
  startProcess(process: PRODUCT_SYNC, idempotencyKey: $key) { __typename ... on Error { code } }
}
"""
ALLOWANCE = 159_600  # acme: (3,000 + 1,000 credits) x 30 days + 33%
SETTLE = 10.0  # seconds a background delivery may take on a loaded machine


@dataclass
class Received:
    message_id: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified_by: list[str]  # the receiver's secrets that verify it (the library's verifier)
    status: int


@dataclass
class Receiver:
    """The SaaS's side: verifies each message, and answers as told per ``webhook-id`` (204 otherwise)."""

    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    answers: dict[str, deque[tuple[int, dict[str, str], float]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    fail_everything: int | None = None
    url: str = ""

    def fail(self, message_id: str, *answers: int | tuple[int, dict[str, str], float]) -> None:
        for answer in answers:
            self.answers[message_id].append(answer if isinstance(answer, tuple) else (answer, {}, 0.0))

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        message_id = headers.get("webhook-id", "")
        queued = self.answers.get(message_id)
        status, extra, delay = queued.popleft() if queued else (self.fail_everything or 204, {}, 0.0)
        self.received.append(Received(message_id, headers, json.loads(body), verified, status))
        if delay:
            await asyncio.sleep(delay)
        return Response(status_code=status, headers=extra)

    @property
    def types(self) -> list[str]:
        return [message.body["type"] for message in self.received]

    def accepted(self) -> list[Received]:
        return [message for message in self.received if 200 <= message.status < 300]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiving = Receiver()
    app = Starlette(routes=[Route("/hook", receiving.handle, methods=["POST"])])
    async with serving(app) as address:
        receiving.url = f"http://{address}/hook"
        yield receiving


async def register(operator: OperatorClient, receiver: Receiver, event_types: list[str] | None = None) -> str:
    """Registers the receiver through the operator API; it learns the secret. Returns the endpoint id."""
    variables = {"input": {"url": receiver.url, "description": "the SaaS", "eventTypes": event_types or []}}
    body = await operator.post(REGISTER, variables)
    result = body["data"]["registerWebhookEndpoint"]
    assert result["__typename"] == "RegisterWebhookEndpointSuccess", body
    receiver.secrets.append(result["secret"])
    return str(result["endpoint"]["id"])


@pytest.fixture
def operator(client: httpx.AsyncClient, clock: FrozenClock) -> OperatorClient:
    return OperatorClient(client, clock)


@pytest.fixture
def deliverer(settings: Settings, clock: FrozenClock) -> WebhookDeliverer:
    return WebhookDeliverer(box_from_settings(settings), clock=clock, timeout=0.5)


async def emitted(kind: EventType, slug: str, now: dt.datetime, **data: Any) -> str:
    tenant = await Tenant.get(slug=slug)
    async with in_transaction():
        event = await emit(kind, tenant_id=tenant.id, data={"environment": slug, **data}, now=now)
    return event.message_id


async def delivery_of(message_id: str) -> WebhookDelivery:
    return await WebhookDelivery.get(event__message_id=message_id)


# --- Every kind, from real changes ------------------------------------------------------------------------


async def test_every_event_kind_reaches_the_receiver_signed_and_in_order(
    gql: GraphQLClient,
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    await register(operator, receiver)
    admin, key = "admin@acme.test", demo.connector_keys["acme"]
    # A purchase: one event per line, and the new limits.
    assert (await gql.post(ADD, as_=admin))["data"]["addToCart"]["__typename"] == "AddToCartSuccess"
    bought = await gql.post(CHECKOUT, {"key": "order-1"}, as_=admin)
    assert bought["data"]["checkout"]["__typename"] == "CheckoutSuccess", bought
    replayed = await gql.post(CHECKOUT, {"key": "order-1"}, as_=admin)  # a retry: nothing new
    assert replayed["data"]["checkout"]["__typename"] == "CheckoutSuccess"
    # A cancellation and its undoing.
    credits = await add_on_id("credits-1000")
    assert (await gql.post(CANCEL, {"id": credits}, as_=admin))["data"]["cancelAddOn"]["__typename"] == (
        "CancelAddOnSuccess"
    )
    undone = await gql.post(UNDO, {"id": credits}, as_=admin)
    assert undone["data"]["undoCancellation"]["__typename"] == "UndoCancellationSuccess"
    # Credits above the limit (4,000: 80%, 90%, 100% fire), then back below.
    await report(gql, key, clock.now(), customers=3_000)
    await report(gql, key, clock.now() + dt.timedelta(seconds=1), customers=100)
    # Processes beyond the allowance.
    acme = await Tenant.get(slug="acme")
    await ProcessCounter.create(tenant=acme, period="2026-11", used=ALLOWANCE)
    started = await gql.post(START, {"key": "p-1"}, key=key)
    assert started["data"]["startProcess"]["__typename"] == "StartProcessSuccess"
    # A plan change: the provisioning helper's operator mutation emits it; its data shape, emitted here.
    await emitted(EventType.PLAN_CHANGED, "acme", clock.now(), from_plan_code="pro", to_plan_code="pro")
    # The bought storage cancelled, and ended by the lifecycle task when its day comes.
    storage = await add_on_id("storage-500mb")
    assert (await gql.post(CANCEL, {"id": storage}, as_=admin))["data"]["cancelAddOn"]["__typename"] == (
        "CancelAddOnSuccess"
    )
    clock.advance(dt.timedelta(days=40))
    assert await notify_ended_add_ons(clock.now()) == 1

    await deliverer.run_once()

    assert receiver.types == [
        "add_on.purchased",
        "limits.changed",
        "add_on.cancelled",
        "add_on.cancellation_undone",
        *["alert.triggered"] * 3,
        "credit_limit.exceeded",
        "alert.resolved",  # 100% first, going down
        "credit_limit.recovered",
        *["alert.resolved"] * 2,
        "process_allowance.passed",
        "plan.changed",
        "add_on.cancelled",
        "add_on.ended",
        "limits.changed",
    ]
    assert set(receiver.types) == {kind.value for kind in EventType}
    assert all(message.verified_by == receiver.secrets for message in receiver.received)
    assert all(message.body["data"]["environment"] == "acme" for message in receiver.received)
    assert len({message.message_id for message in receiver.received}) == len(receiver.received)
    by_type = {message.body["type"]: message.body for message in receiver.received}
    purchased = by_type["add_on.purchased"]["data"]
    assert (purchased["add_on"], purchased["quantity"], purchased["unit_price"], purchased["currency"]) == (
        "storage-500mb",
        1,
        "1.50",
        "EUR",
    )
    first_limits = receiver.received[1].body["data"]
    assert first_limits["cause"] == "add_on.purchased"
    assert first_limits["limits"]["credits"] == 4_000
    ended_limits = receiver.received[-1].body["data"]["limits"]
    assert first_limits["limits"]["storage_bytes"] - ended_limits["storage_bytes"] == 500 * 1024**2
    assert by_type["credit_limit.exceeded"]["data"] == {"environment": "acme", "used": 4548, "limit": 4000}
    assert by_type["process_allowance.passed"]["data"] == {
        "environment": "acme",
        "period": "2026-11",
        "started": ALLOWANCE + 1,
        "allowance": ALLOWANCE,
    }
    assert receiver.received[-3].body["data"]["ends_at"] is not None
    assert await WebhookDelivery.filter(status=WebhookDeliveryStatus.SUCCEEDED).count() == 17


async def test_an_endpoint_gets_only_the_event_types_it_asked_for(
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    await register(operator, receiver, ["ADD_ON_ENDED", "PLAN_CHANGED"])
    await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())
    await emitted(EventType.PLAN_CHANGED, "acme", clock.now())

    await deliverer.run_once()

    assert receiver.types == ["plan.changed"]


# --- Retries ---------------------------------------------------------------------------------------------


async def test_a_receiver_answering_5xx_is_retried_with_backoff_until_it_accepts(
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    await register(operator, receiver)
    message = await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())
    receiver.fail(message, 500, 503)

    await deliverer.run_once()
    await deliverer.run_once()  # not due yet: no second attempt at once
    failed = await delivery_of(message)
    assert (failed.status, failed.attempts, failed.last_status_code) == ("PENDING", 1, 500)
    assert clock.now() < failed.next_attempt_at <= clock.now() + dt.timedelta(seconds=5)
    clock.advance(dt.timedelta(seconds=5))
    await deliverer.run_once()
    clock.advance(dt.timedelta(seconds=10))
    await deliverer.run_once()

    assert [m.status for m in receiver.received] == [500, 503, 204]
    assert {m.message_id for m in receiver.received} == {message}  # the same webhook-id every time
    done = await delivery_of(message)
    assert (done.status, done.attempts, done.last_status_code, done.delivered_at) == (
        "SUCCEEDED",
        3,
        204,
        clock.now(),
    )


async def test_a_4xx_refusal_is_not_retried(
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    await register(operator, receiver)
    message = await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())
    receiver.fail(message, 400)

    await deliverer.run_once()
    clock.advance(dt.timedelta(hours=2))
    await deliverer.run_once()

    assert len(receiver.received) == 1
    dead = await delivery_of(message)
    assert (dead.status, dead.attempts, dead.last_status_code, dead.last_error) == (
        "DEAD",
        1,
        400,
        "HTTP 400",
    )


async def test_429_is_retried_after_the_receivers_retry_after(
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    await register(operator, receiver)
    message = await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())
    receiver.fail(message, (429, {"Retry-After": "120"}, 0.0))

    await deliverer.run_once()
    assert (await delivery_of(message)).next_attempt_at == clock.now() + dt.timedelta(seconds=120)
    clock.advance(dt.timedelta(seconds=119))
    await deliverer.run_once()
    assert len(receiver.received) == 1
    clock.advance(dt.timedelta(seconds=1))
    await deliverer.run_once()

    assert [m.status for m in receiver.received] == [429, 204]
    assert (await delivery_of(message)).status == "SUCCEEDED"


async def test_a_receiver_slower_than_the_timeout_is_retried(
    operator: OperatorClient, receiver: Receiver, settings: Settings, demo: SeedResult, clock: FrozenClock
) -> None:
    deliverer = WebhookDeliverer(box_from_settings(settings), clock=clock, timeout=0.2)
    await register(operator, receiver)
    message = await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())
    receiver.fail(message, (204, {}, 2.0))

    await deliverer.run_once()
    slow = await delivery_of(message)
    assert (slow.status, slow.attempts, slow.last_status_code, slow.last_error) == (
        "PENDING",
        1,
        None,
        "timed out",
    )
    clock.advance(dt.timedelta(seconds=5))
    await deliverer.run_once()

    assert len(receiver.received) == 2
    assert (await delivery_of(message)).status == "SUCCEEDED"


async def test_an_unreachable_receiver_is_retried(
    operator: OperatorClient, deliverer: WebhookDeliverer, demo: SeedResult, clock: FrozenClock
) -> None:
    closed = Receiver(url="http://127.0.0.1:9/hook")  # the discard port: nothing listens
    await register(operator, closed)
    message = await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())

    await deliverer.run_once()

    failed = await delivery_of(message)
    assert (failed.status, failed.attempts, failed.last_error) == ("PENDING", 1, "ConnectError")


# --- Order --------------------------------------------------------------------------------------------------


async def test_a_failing_event_holds_back_the_later_ones_of_its_environment_only(
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    await register(operator, receiver)
    first = await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now(), n=1)
    second = await emitted(EventType.ADD_ON_CANCELLATION_UNDONE, "acme", clock.now(), n=2)
    other = await emitted(EventType.ADD_ON_CANCELLED, "nova", clock.now(), n=1)
    third = await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now(), n=3)
    receiver.fail(first, 500, 500)

    await deliverer.run_once()
    assert [m.message_id for m in receiver.received] == [first, other]  # nova's does not wait for acme's
    clock.advance(dt.timedelta(seconds=5))
    await deliverer.run_once()
    assert [m.message_id for m in receiver.received] == [first, other, first]
    clock.advance(dt.timedelta(seconds=10))
    await deliverer.run_once()

    acme = [m.message_id for m in receiver.accepted() if m.body["data"]["environment"] == "acme"]
    assert acme == [first, second, third]
    assert [m.message_id for m in receiver.received] == [first, other, first, first, second, third]


async def test_a_delivery_failing_for_a_day_is_dead_releases_the_next_and_can_be_replayed(
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    await register(operator, receiver)
    doomed = await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())
    later = await emitted(EventType.ADD_ON_ENDED, "acme", clock.now())
    receiver.fail(doomed, *[500] * 60)

    for _ in range(40):  # a day and more, an hour at a time (the longest wait between attempts)
        await deliverer.run_once()
        clock.advance(dt.timedelta(hours=1))
    dead = await delivery_of(doomed)
    assert dead.status == "DEAD"
    assert dead.last_attempt_at is not None
    assert dead.last_attempt_at - dead.created_at == dt.timedelta(hours=24)  # the last try at the deadline
    assert receiver.accepted()[0].message_id == later  # no longer held back

    listed = (await operator.post(DEAD))["data"]["webhookDeliveries"]
    assert listed["totalCount"] == 1
    node = listed["nodes"][0]
    assert (node["messageId"], node["status"], node["lastStatusCode"], node["lastError"]) == (
        doomed,
        "DEAD",
        500,
        "HTTP 500",
    )
    assert (node["eventType"], node["environmentSlug"]) == ("ADD_ON_CANCELLED", "acme")
    receiver.answers.clear()  # the receiver is fixed
    replay = (await operator.post(REPLAY, {"id": node["id"]}))["data"]["replayWebhookDelivery"]
    assert replay == {
        "__typename": "ReplayWebhookDeliverySuccess",
        "delivery": {"status": "PENDING", "attempts": 0},
    }

    await deliverer.run_once()

    assert receiver.accepted()[-1].message_id == doomed
    assert (await delivery_of(doomed)).status == "SUCCEEDED"
    assert (await operator.post(DEAD))["data"]["webhookDeliveries"]["totalCount"] == 0


# --- Rotation -----------------------------------------------------------------------------------------------


async def test_during_a_rotation_both_secrets_sign_then_only_the_new_one(
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    endpoint = await register(operator, receiver)
    old = receiver.secrets[0]
    rotated = (await operator.post(ROTATE, {"id": endpoint, "now": False}))["data"]["rotateWebhookSecret"]
    new = rotated["secret"]
    assert new != old
    receiver.secrets.append(new)

    await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())
    await deliverer.run_once()
    clock.advance(dt.timedelta(hours=24))
    await emitted(EventType.ADD_ON_ENDED, "acme", clock.now())
    await deliverer.run_once()

    during, after = receiver.received
    assert during.verified_by == [old, new]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert after.verified_by == [new]
    assert len(after.headers["webhook-signature"].split(" ")) == 1


async def test_a_rotation_may_end_the_previous_secret_at_once(
    operator: OperatorClient,
    receiver: Receiver,
    deliverer: WebhookDeliverer,
    demo: SeedResult,
    clock: FrozenClock,
) -> None:
    endpoint = await register(operator, receiver)
    rotated = (await operator.post(ROTATE, {"id": endpoint, "now": True}))["data"]["rotateWebhookSecret"]
    receiver.secrets.append(rotated["secret"])

    await emitted(EventType.ADD_ON_CANCELLED, "acme", clock.now())
    await deliverer.run_once()

    assert receiver.received[0].verified_by == [rotated["secret"]]


# --- Crashes and several instances ------------------------------------------------------------------------


async def test_an_event_committed_while_no_delivery_task_ran_is_delivered_once_a_gateway_starts(
    gql: GraphQLClient, operator: OperatorClient, receiver: Receiver, settings: Settings, demo: SeedResult,
    clock: FrozenClock,
) -> None:  # fmt: skip
    await register(operator, receiver)
    credits = await add_on_id("credits-1000")
    # The app serving this change runs no background task: as if it died right after the commit.
    assert (await gql.post(CANCEL, {"id": credits}, as_="admin@acme.test"))["data"]["cancelAddOn"]
    await asyncio.sleep(0.2)
    assert receiver.received == []
    assert await WebhookDelivery.filter(status=WebhookDeliveryStatus.PENDING).count() == 1

    # A long poll: what comes at once after the restart is the start's own pass; what comes next, the wake.
    restarted = create_app(
        settings.model_copy(update={"webhook_poll_seconds": 60}), clock=clock, manage_orm=False
    )
    async with restarted.router.lifespan_context(restarted):
        await wait_until(lambda: len(receiver.received) == 1)
        assert receiver.types == ["add_on.cancelled"]
        undone = await gql.post(UNDO, {"id": credits}, as_="admin@acme.test")
        assert undone["data"]["undoCancellation"]["__typename"] == "UndoCancellationSuccess"
        await wait_until(lambda: len(receiver.received) == 2)

    assert receiver.types == ["add_on.cancelled", "add_on.cancellation_undone"]
    assert all(message.verified_by == receiver.secrets for message in receiver.received)


async def test_two_delivery_tasks_at_once_send_each_message_once(
    operator: OperatorClient, receiver: Receiver, settings: Settings, demo: SeedResult, clock: FrozenClock
) -> None:
    await register(operator, receiver)
    messages = [
        await emitted(EventType.ADD_ON_CANCELLED, slug, clock.now(), n=n)
        for n in range(15)
        for slug in ("acme", "nova", "legacy")
    ]
    box = box_from_settings(settings)
    first, second = (WebhookDeliverer(box, clock=clock) for _ in range(2))

    await asyncio.gather(first.run_once(), second.run_once(), first.run_once(), second.run_once())

    assert sorted(m.message_id for m in receiver.received) == sorted(messages)
    for slug in ("acme", "nova", "legacy"):
        ns = [m.body["data"]["n"] for m in receiver.received if m.body["data"]["environment"] == slug]
        assert ns == list(range(15))
    assert await WebhookDelivery.filter(status=WebhookDeliveryStatus.SUCCEEDED).count() == 45


async def wait_until(condition: Any) -> None:
    """Poll ``condition`` (the background tasks run meanwhile) for up to SETTLE seconds."""
    for _ in range(int(SETTLE / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting for the delivery task")
