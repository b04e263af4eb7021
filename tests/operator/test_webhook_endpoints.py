"""Webhook endpoints in the operator API: registration (the secret shown once, stored encrypted), URL and
description rules, updates, deactivation, rotation, the scopes, the audit, and replays."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from app.clock import FrozenClock
from app.models.operators import OperatorAuditEntry
from app.models.tenancy import Tenant
from app.models.webhooks import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from app.resolvers.ids import global_id
from app.seed import SeedResult
from app.services.webhook_events import EventType, emit
from tests.operator.conftest import OperatorClient

ENDPOINT = "id url description eventTypes isActive previousSecretExpiresAt"
REGISTER = f"""
mutation($input: RegisterWebhookEndpointInput!) {{
  registerWebhookEndpoint(input: $input) {{
    __typename
    ... on RegisterWebhookEndpointSuccess {{ secret endpoint {{ {ENDPOINT} }} }}
    ... on Error {{ code message field }}
  }}
}}
"""
UPDATE = f"""
mutation($id: ID!, $input: UpdateWebhookEndpointInput!) {{
  updateWebhookEndpoint(id: $id, input: $input) {{
    __typename
    ... on UpdateWebhookEndpointSuccess {{ endpoint {{ {ENDPOINT} }} }}
    ... on Error {{ code field }}
  }}
}}
"""
DEACTIVATE = """
mutation($id: ID!) {
  deactivateWebhookEndpoint(id: $id) {
    __typename ... on DeactivateWebhookEndpointSuccess { endpoint { isActive } } ... on Error { code }
  }
}
"""
ROTATE = """
mutation($id: ID!) {
  rotateWebhookSecret(id: $id) {
    __typename ... on RotateWebhookSecretSuccess { secret endpoint { previousSecretExpiresAt } }
    ... on Error { code }
  }
}
"""
LIST = f"{{ webhookEndpoints {{ {ENDPOINT} }} }}"
REPLAY = """
mutation($id: ID!) { replayWebhookDelivery(id: $id) { __typename ... on Error { code field } } }
"""
REPLAY_EVENTS = """
mutation($id: ID!, $since: DateTime!) {
  replayWebhookEvents(endpointId: $id, since: $since) {
    __typename ... on ReplayWebhookEventsSuccess { queued } ... on Error { code }
  }
}
"""
DELIVERIES = """
query($first: Int, $after: String) {
  webhookDeliveries(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id messageId status }
  }
}
"""


async def register(operator: OperatorClient, url: str = "https://saas.example/hooks", **extra: Any) -> Any:
    body = await operator.post(REGISTER, {"input": {"url": url, **extra}})
    assert "errors" not in body, body
    return body["data"]["registerWebhookEndpoint"]


async def emitted(kind: EventType, slug: str, now: dt.datetime) -> None:
    tenant = await Tenant.get(slug=slug)
    async with in_transaction():
        await emit(kind, tenant_id=tenant.id, data={"environment": slug}, now=now)


async def test_a_registered_endpoint_gets_a_secret_shown_once_and_stored_encrypted(
    operator: OperatorClient, db: object
) -> None:
    result = await register(operator, description="the SaaS", eventTypes=["ADD_ON_ENDED"])

    assert result["__typename"] == "RegisterWebhookEndpointSuccess"
    assert result["secret"].startswith("whsec_")
    assert result["endpoint"]["eventTypes"] == ["ADD_ON_ENDED"]
    assert result["endpoint"]["isActive"] is True
    row = await WebhookEndpoint.get()
    assert result["secret"] not in row.secret_encrypted
    listed = (await operator.post(LIST))["data"]["webhookEndpoints"]
    assert listed == [result["endpoint"]]
    entry = await OperatorAuditEntry.get(action="webhook_endpoint.register")
    assert result["secret"] not in str(entry.details)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://saas.example/hooks",
        "saas.example/hooks",
        "https://user:pass@saas.example/hooks",
        "https://saas.example/" + "a" * 2_040,
        "https://saas.example/a b",
        "https://saas.example:99999/",
        "",
        "javascript:alert(1)",
    ],
)
async def test_a_url_that_is_not_an_absolute_http_url_is_refused(operator: OperatorClient, url: str) -> None:
    result = await register(operator, url)

    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidInputError",
        "INVALID_INPUT",
        "url",
    )
    assert len(result["message"]) < 200
    assert await WebhookEndpoint.all().count() == 0


async def test_private_hosts_and_the_longest_url_are_accepted(operator: OperatorClient) -> None:
    longest = "http://10.0.0.7:8080/" + "a" * (2_048 - 21)

    assert (await register(operator, longest))["endpoint"]["url"] == longest


async def test_a_description_over_500_characters_is_refused(operator: OperatorClient) -> None:
    result = await register(operator, description="d" * 501)

    assert (result["code"], result["field"]) == ("INVALID_INPUT", "description")


async def test_an_unknown_event_type_is_not_a_value_of_the_enum(operator: OperatorClient) -> None:
    body = await operator.post(REGISTER, {"input": {"url": "https://a.example", "eventTypes": ["NOPE"]}})

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_changes_need_the_webhooks_write_scope_and_reads_ops_read(operator: OperatorClient) -> None:
    refused = await operator.post(REGISTER, {"input": {"url": "https://a.example"}}, scopes=("ops:read",))
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused["data"] == {"registerWebhookEndpoint": None}
    unread = await operator.post(LIST, scopes=("webhooks:write",))
    assert unread["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    assert (await operator.post(LIST, scopes=("ops:read",)))["data"]["webhookEndpoints"] == []


async def test_an_update_changes_what_is_given_and_is_audited(operator: OperatorClient) -> None:
    endpoint = (await register(operator, description="before"))["endpoint"]

    body = await operator.post(
        UPDATE,
        {"id": endpoint["id"], "input": {"url": "https://b.example/h", "eventTypes": ["PLAN_CHANGED"]}},
    )

    updated = body["data"]["updateWebhookEndpoint"]["endpoint"]
    assert (updated["url"], updated["description"], updated["eventTypes"]) == (
        "https://b.example/h",
        "before",
        ["PLAN_CHANGED"],
    )
    entry = await OperatorAuditEntry.get(action="webhook_endpoint.update")
    assert entry.details == {"url": "https://b.example/h", "eventTypes": ["plan.changed"]}


async def test_an_unknown_or_foreign_id_is_not_found(operator: OperatorClient, demo: SeedResult) -> None:
    foreign = global_id("ActiveAddOn", "3f2a1b7e-0000-4000-8000-000000000000")
    for variables in ({"id": foreign}, {"id": global_id("WebhookEndpoint", "nope")}, {"id": "garbage"}):
        assert (await operator.post(DEACTIVATE, variables))["data"]["deactivateWebhookEndpoint"]["code"] == (
            "NOT_FOUND"
        )
        assert (await operator.post(ROTATE, variables))["data"]["rotateWebhookSecret"]["code"] == "NOT_FOUND"
        assert (await operator.post(REPLAY, variables))["data"]["replayWebhookDelivery"][
            "code"
        ] == "NOT_FOUND"


async def test_a_deactivated_endpoint_gets_no_new_deliveries(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    endpoint = (await register(operator))["endpoint"]
    await emitted(EventType.ADD_ON_ENDED, "acme", clock.now())

    deactivated = (await operator.post(DEACTIVATE, {"id": endpoint["id"]}))["data"][
        "deactivateWebhookEndpoint"
    ]
    await emitted(EventType.ADD_ON_ENDED, "acme", clock.now())

    assert deactivated == {"__typename": "DeactivateWebhookEndpointSuccess", "endpoint": {"isActive": False}}
    assert await WebhookDelivery.all().count() == 1  # the one queued before still goes out


async def test_a_rotation_returns_a_new_secret_and_keeps_the_previous_for_a_day(
    operator: OperatorClient, clock: FrozenClock
) -> None:
    registered = await register(operator)

    rotated = (await operator.post(ROTATE, {"id": registered["endpoint"]["id"]}))["data"][
        "rotateWebhookSecret"
    ]

    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != registered["secret"]
    expires = dt.datetime.fromisoformat(rotated["endpoint"]["previousSecretExpiresAt"])
    assert expires == clock.now() + dt.timedelta(hours=24)
    assert await OperatorAuditEntry.filter(action="webhook_endpoint.rotate_secret").count() == 1


async def test_only_a_dead_delivery_can_be_replayed(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await register(operator)
    await emitted(EventType.ADD_ON_ENDED, "acme", clock.now())
    delivery = await WebhookDelivery.get()

    answer = (await operator.post(REPLAY, {"id": global_id("WebhookDelivery", delivery.id)}))["data"]
    assert answer["replayWebhookDelivery"] == {
        "__typename": "InvalidInputError",
        "code": "INVALID_INPUT",
        "field": "id",
    }

    await WebhookDelivery.filter(id=delivery.id).update(status=WebhookDeliveryStatus.DEAD, attempts=7)
    answer = (await operator.post(REPLAY, {"id": global_id("WebhookDelivery", delivery.id)}))["data"]
    assert answer["replayWebhookDelivery"] == {"__typename": "ReplayWebhookDeliverySuccess"}
    replayed = await WebhookDelivery.get(id=delivery.id)
    assert (replayed.status, replayed.attempts, replayed.next_attempt_at) == ("PENDING", 0, clock.now())
    assert replayed.give_up_at == clock.now() + dt.timedelta(hours=24)
    assert await OperatorAuditEntry.filter(action="webhook_delivery.replay").count() == 1


async def test_events_from_before_an_endpoint_existed_can_be_replayed_to_it(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await emitted(EventType.ADD_ON_ENDED, "acme", clock.now() - dt.timedelta(hours=2))
    await emitted(EventType.PLAN_CHANGED, "nova", clock.now() - dt.timedelta(hours=1))
    endpoint = (await register(operator, eventTypes=["PLAN_CHANGED"]))["endpoint"]
    since = (clock.now() - dt.timedelta(days=1)).isoformat()

    body = await operator.post(REPLAY_EVENTS, {"id": endpoint["id"], "since": since})
    again = await operator.post(REPLAY_EVENTS, {"id": endpoint["id"], "since": since})

    assert body["data"]["replayWebhookEvents"] == {"__typename": "ReplayWebhookEventsSuccess", "queued": 1}
    assert again["data"]["replayWebhookEvents"]["queued"] == 1
    assert await WebhookDelivery.all().count() == 1  # queued once per event and endpoint


async def test_deliveries_page_newest_first(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await register(operator)
    for _ in range(3):
        await emitted(EventType.ADD_ON_ENDED, "acme", clock.now())

    first = (await operator.post(DELIVERIES, {"first": 2}))["data"]["webhookDeliveries"]
    rest = (await operator.post(DELIVERIES, {"first": 2, "after": first["pageInfo"]["endCursor"]}))["data"]

    assert first["totalCount"] == 3
    assert first["pageInfo"]["hasNextPage"] is True
    ids = [node["id"] for node in first["nodes"] + rest["webhookDeliveries"]["nodes"]]
    assert len(set(ids)) == 3
    foreign = await operator.post(DELIVERIES, {"after": "bm90LWEtY3Vyc29y"})
    assert foreign["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
