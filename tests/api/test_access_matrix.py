"""Who may use what: every root field x every kind of caller, the expected answer in each cell (issue 11).

Callers: anonymous, an admin and a member of nova, and API keys of nova carrying one scope each. Each cell is
one test, run on a fresh database; the answer is summed up as:

- ``data``: the field answered (a success member, or a plain value);
- a typed error's ``code`` (``NOT_ADMIN``...), from the field's union or its GraphQL error's ``extensions``;
- ``UNAUTHENTICATED`` (no credentials) or ``FORBIDDEN`` (credentials that may not use the field): a top-level
  error, with the field ``null`` (every root field that needs credentials is nullable) and nothing else lost.

``test_the_matrix_covers_every_root_field`` fails when a query, mutation or subscription is added without
its row. docs/security.md ("Who may read what: scopes") is this table in prose.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from graphql import is_non_null_type
from tortoise.context import TortoiseContext
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.clock import FrozenClock
from app.main import create_app
from app.models.billing import AddOnSubscription
from app.models.tenancy import ApiKey, Tenant
from app.resolvers.ids import global_id
from app.schema import schema
from app.seed import SeedResult
from app.services.alerts import channel_of
from app.settings import Settings
from tests.conftest import GraphQLClient
from tests.test_live_alerts import WAIT, serving

CALLERS = ("anonymous", "admin", "member", *(f"key:{scope}" for scope in sorted(scopes.ALL_SCOPES)))

D, UNAUTH, FORBID, NOT_ADMIN = "data", "UNAUTHENTICATED", "FORBIDDEN", "NOT_ADMIN"
CLOSED = "closed 4403"


def row(
    anonymous: str,
    admin: str,
    member: str,
    *,
    catalog: str = FORBID,
    tenant: str = FORBID,
    usage: str = FORBID,
    quota: str = FORBID,
    process: str = FORBID,
) -> dict[str, str]:
    return {
        "anonymous": anonymous,
        "admin": admin,
        "member": member,
        f"key:{scopes.CATALOG_READ}": catalog,
        f"key:{scopes.PROCESS_START}": process,
        f"key:{scopes.QUOTA_CHECK}": quota,
        f"key:{scopes.TENANT_READ}": tenant,
        f"key:{scopes.USAGE_REPORT}": usage,
    }


PUBLIC = row(D, D, D, catalog=D, tenant=D, usage=D, quota=D, process=D)
ANY_CREDENTIAL = row(UNAUTH, D, D, catalog=D, tenant=D, usage=D, quota=D, process=D)
# Store reads: tenant:read opens them, the service keeps them for admins.
STORE_READ = row(UNAUTH, D, NOT_ADMIN, tenant=NOT_ADMIN)
# Store writes: users only; the service keeps them for admins.
STORE_WRITE = row(UNAUTH, D, NOT_ADMIN)

ALERTS = row(UNAUTH, D, D, tenant=D, usage=D)
SELECTION = "{ __typename ... on Error { code } }"

# field -> (document, variables ("$id": the ActiveAddOn.id of nova's Mercado Livre add-on), answer per caller)
MATRIX: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "Query.plans": ("{ r: plans { code } }", {}, PUBLIC),
    "Query.addOns": ("{ r: addOns { code } }", {}, PUBLIC),
    "Query.addOn": ('{ r: addOn(code: "start-pack") { code } }', {}, PUBLIC),
    "Query.viewer": ("{ r: viewer { kind scopes tenant { slug } } }", {}, ANY_CREDENTIAL),
    "Query.myPlan": (f"{{ r: myPlan {SELECTION} }}", {}, STORE_READ),
    "Query.cart": (f"{{ r: cart {SELECTION} }}", {}, STORE_READ),
    "Query.invoicePreview": (f"{{ r: invoicePreview {SELECTION} }}", {}, STORE_READ),
    "Query.invoices": (f"{{ r: invoices(first: 5) {SELECTION} }}", {}, STORE_READ),
    "Query.invoice": (
        f'{{ r: invoice(number: "NOVA-2026-0001") {SELECTION} }}',
        {},
        row(UNAUTH, "NOT_FOUND", NOT_ADMIN, tenant=NOT_ADMIN),
    ),
    "Query.cancellationPreview": (
        f"query($id: ID!) {{ r: cancellationPreview(activeAddOnId: $id) {SELECTION} }}",
        {"id": "$id"},
        STORE_READ,
    ),
    "Query.planChangePreview": (
        f'{{ r: planChangePreview(planCode: "erp-start") {SELECTION} }}',
        {},
        STORE_READ,
    ),
    "Query.creditUsage": (
        f"{{ r: creditUsage {SELECTION} }}",
        {},
        row(UNAUTH, D, D, tenant=D, usage=D, quota=D),
    ),
    "Query.quota": (
        "{ r: quota(process: PRODUCT_SYNC) { allowed } }",
        {},
        row(UNAUTH, FORBID, FORBID, quota=D),
    ),
    "Query.alerts": ("{ r: alerts(first: 5) { totalCount nodes { id } } }", {}, ALERTS),
    "Query.planRecommendation": (
        f"{{ r: planRecommendation(counts: {{variants: 340}}) {SELECTION} }}",
        {},
        PUBLIC,
    ),
    "Query.orders": (f"{{ r: orders(first: 5) {SELECTION} }}", {}, STORE_READ),
    "Query.usageHistory": (
        f'{{ r: usageHistory(from: "2026-11-01", to: "2026-11-23") {SELECTION} }}',
        {},
        row(UNAUTH, D, D, tenant=D, usage=D, quota=D),
    ),
    "Query.limitCheck": (
        f"{{ r: limitCheck(resource: USERS, adding: 1) {SELECTION} }}",
        {},
        row(UNAUTH, D, D, quota=D),
    ),
    "Query.alertSettings": (
        "{ r: alertSettings { thresholds recipients } }",
        {},
        row(UNAUTH, D, D, tenant=D),
    ),
    "Mutation.addToCart": (f'mutation {{ r: addToCart(addOnCode: "users-1") {SELECTION} }}', {}, STORE_WRITE),
    "Mutation.updateCartItem": (
        f'mutation {{ r: updateCartItem(addOnCode: "users-1", quantity: 2) {SELECTION} }}',
        {},
        row(UNAUTH, "NOT_FOUND", NOT_ADMIN),
    ),
    "Mutation.removeFromCart": (
        f'mutation {{ r: removeFromCart(addOnCode: "users-1") {SELECTION} }}',
        {},
        row(UNAUTH, "NOT_FOUND", NOT_ADMIN),
    ),
    "Mutation.applyCoupon": (
        f'mutation {{ r: applyCoupon(code: "WELCOME10") {SELECTION} }}',
        {},
        row(UNAUTH, "COUPON_NOT_APPLICABLE", NOT_ADMIN),  # applied to an empty cart: it discounts nothing
    ),
    "Mutation.removeCoupon": (f"mutation {{ r: removeCoupon {SELECTION} }}", {}, STORE_WRITE),
    "Mutation.checkout": (
        f'mutation {{ r: checkout(idempotencyKey: "matrix-1") {SELECTION} }}',
        {},
        row(UNAUTH, "CART_EMPTY", NOT_ADMIN),
    ),
    "Mutation.requestQuote": (
        f'mutation {{ r: requestQuote(addOnCode: "start-pack") {SELECTION} }}',
        {},
        row(UNAUTH, "QUOTE_NOT_NEEDED", NOT_ADMIN),  # nova runs bling, where the Start Pack is sold
    ),
    "Mutation.cancelAddOn": (
        f"mutation($id: ID!) {{ r: cancelAddOn(activeAddOnId: $id) {SELECTION} }}",
        {"id": "$id"},
        STORE_WRITE,
    ),
    "Mutation.undoCancellation": (
        f"mutation($id: ID!) {{ r: undoCancellation(activeAddOnId: $id) {SELECTION} }}",
        {"id": "$id"},
        row(UNAUTH, "ADD_ON_NOT_CANCELLED", NOT_ADMIN),
    ),
    "Mutation.changePlan": (
        f'mutation {{ r: changePlan(planCode: "erp-start", idempotencyKey: "matrix-1") {SELECTION} }}',
        {},
        STORE_WRITE,  # nova's admin schedules the downgrade
    ),
    "Mutation.cancelPlanChange": (
        f"mutation {{ r: cancelPlanChange {SELECTION} }}",
        {},
        row(UNAUTH, "NO_PLAN_CHANGE_PENDING", NOT_ADMIN),
    ),
    "Mutation.configureIntegration": (
        "mutation($id: ID!, $s: JSON!) "
        f"{{ r: configureIntegration(activeAddOnId: $id, settings: $s) {SELECTION} }}",
        {"id": "$id", "s": {"api_token": "t0ken", "shop_url": "https://loja.nova.example"}},
        STORE_WRITE,
    ),
    "Mutation.setProcessControl": (
        f"mutation {{ r: setProcessControl(process: PRODUCT_SYNC, paused: true) {SELECTION} }}",
        {},
        row(UNAUTH, D, NOT_ADMIN),  # any environment's admins, store or not
    ),
    "Mutation.setMyLocale": (
        f"mutation {{ r: setMyLocale(locale: EN) {SELECTION} }}",
        {},
        row(UNAUTH, D, D),  # any user chooses their own language; a key has none to save
    ),
    "Mutation.setAlertThresholds": (
        f"mutation {{ r: setAlertThresholds(thresholds: [75, 100]) {SELECTION} }}",
        {},
        row(UNAUTH, D, NOT_ADMIN),
    ),
    "Mutation.setAlertRecipients": (
        f'mutation {{ r: setAlertRecipients(recipients: ["finance@nova.example"]) {SELECTION} }}',
        {},
        row(UNAUTH, D, NOT_ADMIN),
    ),
    "Mutation.reportUsage": (
        "mutation($input: UsageReportInput!) "
        f'{{ r: reportUsage(input: $input, idempotencyKey: "matrix-1") {SELECTION} }}',
        {
            "input": {
                "variants": 1,
                "customers": 1,
                "contacts": 1,
                "salesReps": 1,
                "adminUsers": 1,
                "storageBytes": 0,
                "measuredAt": "2026-11-23T11:00:00Z",
            }
        },
        row(UNAUTH, FORBID, FORBID, usage=D),
    ),
    "Mutation.startProcess": (
        f'mutation {{ r: startProcess(process: PRODUCT_SYNC, idempotencyKey: "matrix-1") {SELECTION} }}',
        {},
        row(UNAUTH, FORBID, FORBID, process=D),
    ),
    # Over graphql-transport-ws: "data" is a subscription the server registered.
    # Without credentials the connection itself is refused at connection_init.
    "Subscription.limitAlerts": (
        "subscription { limitAlerts { kind } }",
        {},
        {**ALERTS, "anonymous": CLOSED},
    ),
}

CELLS = [(field, caller) for field in MATRIX for caller in CALLERS]


def root_fields() -> set[str]:
    found = set()
    for root in ("Query", "Mutation", "Subscription"):
        graphql_type = schema._schema.get_type(root)
        if graphql_type is not None:
            found |= {f"{root}.{name}" for name in graphql_type.fields}  # type: ignore[attr-defined]
    return found


def test_the_matrix_covers_every_root_field() -> None:
    assert set(MATRIX) == root_fields(), "a root field without its row in the access matrix (or a stale row)"
    for field, (_, _, expected) in MATRIX.items():
        assert set(expected) == set(CALLERS), field


async def credentials(caller: str, gql: GraphQLClient) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller in ("admin", "member"):
        return {"Authorization": f"Bearer {await gql.token_for(f'{caller}@nova.test')}"}
    key = generate_api_key()
    await ApiKey.create(
        tenant=await Tenant.get(slug="nova"),
        name=caller,
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=[caller.removeprefix("key:")],
    )
    return {"Authorization": f"Bearer {key.plaintext}"}


async def variables_of(field: str) -> dict[str, Any]:
    variables = MATRIX[field][1]
    if variables.get("id") != "$id":
        return variables
    subscription = await AddOnSubscription.get(add_on__code="integration-mercado-livre", tenant__slug="nova")
    return {**variables, "id": global_id("ActiveAddOn", subscription.id)}


def answer(body: dict[str, Any]) -> str:
    if body.get("errors"):
        assert body["data"] == {"r": None}, body  # the refused field is null, not the whole answer
        return str(body["errors"][0]["extensions"]["code"])
    result = body["data"]["r"]
    if isinstance(result, dict) and str(result.get("__typename", "")).endswith("Error"):
        return str(result["code"])
    return D


@pytest.mark.parametrize(("field", "caller"), CELLS, ids=[f"{field}-{caller}" for field, caller in CELLS])
async def test_access(
    field: str,
    caller: str,
    gql: GraphQLClient,
    demo: SeedResult,
    db: TortoiseContext,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    document, _, expected = MATRIX[field]
    headers = await credentials(caller, gql)
    variables = await variables_of(field)

    if field.startswith("Subscription."):
        got = await subscribe(document, headers, settings, clock)
    else:
        response = await gql.http.post(
            "/graphql", json={"query": document, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        got = answer(response.json())

    assert got == expected[caller], f"{field} as {caller}: {got}, expected {expected[caller]}"


def test_every_root_field_that_needs_credentials_is_nullable() -> None:
    for field, (_, _, expected) in MATRIX.items():
        root, _, name = field.partition(".")
        if expected != PUBLIC and root != "Subscription":
            graphql_field = schema._schema.get_type(root).fields[name]  # type: ignore[union-attr]
            assert not is_non_null_type(graphql_field.type), f"{field} is {graphql_field.type}"


REFUSED_BESIDE_THE_CATALOG = """
query($id: ID!) {
  plans { code }
  viewer { id }
  myPlan { __typename }
  cart { __typename }
  invoicePreview { __typename }
  cancellationPreview(activeAddOnId: $id) { __typename }
  creditUsage { __typename }
  quota(process: PRODUCT_SYNC) { allowed }
  alerts { totalCount }
}
"""


async def test_a_refused_field_nulls_only_itself(gql: GraphQLClient, demo: SeedResult) -> None:
    response = await gql.http.post(
        "/graphql", json={"query": REFUSED_BESIDE_THE_CATALOG, "variables": {"id": "unknown"}}
    )

    body = response.json()
    refused = {name: value for name, value in body["data"].items() if name != "plans"}
    assert len(refused) == 8
    assert refused == dict.fromkeys(refused)  # each guarded field is null...
    assert body["data"]["plans"]  # ... and the catalog beside them answers
    assert sorted(error["path"][0] for error in body["errors"]) == sorted(refused)
    assert {error["extensions"]["code"] for error in body["errors"]} == {UNAUTH}


async def subscribe(document: str, headers: dict[str, str], settings: Settings, clock: FrozenClock) -> str:
    """Subscribe over a real socket: ``data`` once the server registered it, else the error's code."""
    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False)
    channel = channel_of((await Tenant.get(slug="nova")).id)
    async with (
        serving(app) as address,
        connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as socket,  # type: ignore[list-item]
    ):
        await socket.send(json.dumps({"type": "connection_init", "payload": headers}))
        try:
            assert json.loads(await socket.recv())["type"] == "connection_ack"
        except ConnectionClosed as closed:
            return f"closed {closed.rcvd.code if closed.rcvd else None}"
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 0.02))
                except TimeoutError:
                    if app.state.services.broadcaster.subscriber_count(channel):
                        return D
                    continue
                if message["type"] == "error":
                    return str(message["payload"][0]["extensions"]["code"])
                if message["type"] == "next" and message["payload"].get("errors"):
                    return str(message["payload"]["errors"][0]["extensions"]["code"])
                raise AssertionError(message)
