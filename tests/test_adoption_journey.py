"""Issue 13's "done when", end to end on a live gateway (uvicorn, background tasks running): an operator
provisions a new environment from the demo catalog file, gives it users and a connector key, registers the
SaaS's webhook endpoint; a user signs in with a token of a local OpenID Connect issuer (created just in
time) and buys an add-on; the endpoint receives the signed events, verified by the Standard Webhooks
library. The steps are those of docs/operators.md. Run with ``-s`` to see what the receiver got."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from app.auth.operator import OPERATOR_SCOPES, create_operator_key
from app.clock import FrozenClock
from app.main import create_app
from app.seed import seed_catalog
from app.settings import Settings
from tests.live import serving
from tests.test_oidc import AUDIENCE, IdentityProvider
from tests.test_webhooks import SETTLE, Receiver

PROVISION = """
mutation($input: ProvisionEnvironmentInput!) {
  provisionEnvironment(input: $input) {
    __typename ... on ProvisionEnvironmentSuccess { created changedFields environment { slug planCode } }
    ... on Error { code message field }
  }
}
"""
USER = """
mutation($input: ProvisionUserInput!) {
  provisionUser(input: $input) {
    __typename ... on ProvisionUserSuccess { created user { email role } } ... on Error { code field }
  }
}
"""
CONNECTOR_KEY = """
mutation($slug: String!) {
  createApiKey(environmentSlug: $slug, name: "ERP connector",
               scopes: ["usage:report", "quota:check", "process:start"]) {
    __typename ... on CreateApiKeySuccess { plaintext } ... on Error { code field }
  }
}
"""
REGISTER = """
mutation($input: RegisterWebhookEndpointInput!) {
  registerWebhookEndpoint(input: $input) {
    __typename ... on RegisterWebhookEndpointSuccess { secret } ... on Error { code field }
  }
}
"""
VIEWER = "{ viewer { kind tenant { slug } user { email role } } }"
ADD = """
mutation { addToCart(addOnCode: "users-5", quantity: 1) { __typename ... on Error { code message } } }
"""
CHECKOUT = """
mutation($key: String!) {
  checkout(idempotencyKey: $key) {
    __typename ... on CheckoutSuccess { order { id total { amount currency } } } ... on Error { code message }
  }
}
"""
QUOTA = "{ quota(process: PRODUCT_SYNC) { allowed } }"


async def post(http: httpx.AsyncClient, path: str, credential: str, query: str, **variables: Any) -> Any:
    response = await http.post(
        path,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_a_saas_provisions_signs_in_sells_and_hears_of_it(
    settings: Settings, clock: FrozenClock, db: Any
) -> None:
    await seed_catalog(now=clock.now())  # the demo catalog file, as `tollgate catalog apply` applies it
    _, operator_key = await create_operator_key(
        name="SaaS provisioning", scopes=sorted(OPERATOR_SCOPES), now=clock.now()
    )
    idp, receiver = IdentityProvider(), Receiver()
    idp.add_key("k1", "RS256")
    receiver_app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    async with serving(idp.app) as idp_address, serving(receiver_app) as receiver_address:
        idp.issuer = f"http://{idp_address}"
        receiver.url = f"http://{receiver_address}/hook"
        gateway_settings = settings.model_copy(
            update={"oidc_issuer": idp.issuer, "oidc_audience": AUDIENCE, "webhook_poll_seconds": 0.2}
        )
        gateway = create_app(gateway_settings, clock=clock, manage_orm=False, run_background_tasks=True)
        async with serving(gateway) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
            operator = ("/operator/graphql", operator_key)

            # The SaaS registers its endpoint, then provisions a new environment, its admin and its key.
            registered = await post(
                http, *operator, REGISTER, input={"url": receiver.url, "description": "the SaaS"}
            )
            receiver.secrets.append(registered["registerWebhookEndpoint"]["secret"])
            environment = {
                "slug": "lojas-sol",
                "name": "Lojas Sol",
                "currency": "BRL",
                "planCode": "erp-pro",
                "locale": "pt-BR",
                "erp": "bling",
                "createdAt": "2025-02-01T00:00:00Z",
                "billingAnchorDay": 5,
            }
            provisioned = (await post(http, *operator, PROVISION, input=environment))["provisionEnvironment"]
            assert provisioned["created"] is True, provisioned
            again = (await post(http, *operator, PROVISION, input=environment))["provisionEnvironment"]
            assert (again["created"], again["changedFields"]) == (False, [])  # idempotent: a sync
            user = {
                "environmentSlug": "lojas-sol",
                "externalId": "idp|ana",
                "email": "ana@lojassol.com.br",
                "name": "Ana Souza",
                "role": "ADMIN",
                "locale": "pt-BR",
            }
            assert (await post(http, *operator, USER, input=user))["provisionUser"]["created"] is True
            connector = (await post(http, *operator, CONNECTOR_KEY, slug="lojas-sol"))["createApiKey"]
            assert (await post(http, "/graphql", connector["plaintext"], QUOTA))["quota"]["allowed"] is True

            # Ana signs in with the SaaS's identity provider; a colleague is created just in time.
            ana = idp.token(
                clock.now(), sub="idp|ana", email="ana@lojassol.com.br", tollgate_environment="lojas-sol"
            )
            viewer = (await post(http, "/graphql", ana, VIEWER))["viewer"]
            assert viewer["user"] == {"email": "ana@lojassol.com.br", "role": "ADMIN"}
            bruno = idp.token(
                clock.now(),
                sub="idp|bruno",
                email="bruno@lojassol.com.br",
                tollgate_environment="lojas-sol",
                tollgate_role="staff",
            )
            viewer = (await post(http, "/graphql", bruno, VIEWER))["viewer"]
            assert viewer["user"] == {"email": "bruno@lojassol.com.br", "role": "MEMBER"}

            # Ana buys five more users.
            assert (await post(http, "/graphql", ana, ADD))["addToCart"]["__typename"] == "AddToCartSuccess"
            order = (await post(http, "/graphql", ana, CHECKOUT, key="first-order"))["checkout"]
            assert order["__typename"] == "CheckoutSuccess", order

            for _ in range(int(SETTLE / 0.05)):
                if len(receiver.accepted()) >= 2:
                    break
                await asyncio.sleep(0.05)

    received = receiver.accepted()
    print("\nWhat the SaaS's endpoint received for one purchase:")
    for message in received:
        signed = {
            name: message.headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        print(json.dumps({"headers": signed, "body": message.body}, indent=2, sort_keys=True))
    assert [message.body["type"] for message in received] == ["add_on.purchased", "limits.changed"]
    assert all(message.verified_by == receiver.secrets for message in received)
    purchased, limits = (message.body["data"] for message in received)
    assert purchased["environment"] == "lojas-sol"
    assert (purchased["add_on"], purchased["quantity"], purchased["unit_price"], purchased["currency"]) == (
        "users-5",
        1,
        "99.90",
        "BRL",
    )
    assert purchased["order_id"] == order["order"]["id"]
    assert (limits["cause"], limits["limits"]["users"]) == ("add_on.purchased", 10 + 5)  # erp-pro: 10 users
