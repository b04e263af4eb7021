"""Provisioning through /operator/graphql: environments, users and API keys, idempotent and audited."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from app.auth.operator import OPS_READ, TENANTS_WRITE, USERS_WRITE, create_operator_key
from app.clock import FrozenClock
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import Plan
from app.models.operators import OperatorAuditEntry
from app.models.tenancy import Tenant, User
from app.models.webhooks import WebhookEvent
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import GraphQLClient, client_for, count_queries
from tests.live import WAIT, subscriber
from tests.operator.conftest import OperatorClient
from tests.test_live_sessions import (
    SUBSCRIPTION,
    WITH_AND_WITHOUT_REDIS,
    bearer,
    ended,
    gateways,
    live_settings,
    still_open,
    user_token,
)

ENVIRONMENT_FIELDS = """
  id slug name currency locale erp planCode createdAt billingAnchorDay active
  users { externalId email name role locale active }
  apiKeys { prefix name scopes createdAt revokedAt }
"""
PROVISION = f"""
mutation Provision($input: ProvisionEnvironmentInput!) {{
  provisionEnvironment(input: $input) {{
    __typename
    ... on Error {{ code message field }}
    ... on CurrencyNotPricedError {{ pricedCurrencies }}
    ... on CurrencyLockedError {{ currency addOnCodes }}
    ... on ProvisionEnvironmentSuccess {{ created changedFields environment {{ {ENVIRONMENT_FIELDS} }} }}
  }}
}}
"""
ENVIRONMENT = f"""
query Environment($slug: String!) {{
  environment(slug: $slug) {{
    __typename ... on Error {{ code field }} ... on Environment {{ {ENVIRONMENT_FIELDS} }}
  }}
}}
"""
SET_ACTIVE = """
mutation SetActive($slug: String!) {
  deactivateEnvironment(slug: $slug) @include(if: $off) {
    __typename ... on Error { code } ... on DeactivateEnvironmentSuccess { changed environment { active } }
  }
  reactivateEnvironment(slug: $slug) @skip(if: $off) {
    __typename ... on Error { code } ... on ReactivateEnvironmentSuccess { changed environment { active } }
  }
}
""".replace("$slug: String!", "$slug: String!, $off: Boolean!")
PROVISION_USER = """
mutation ProvisionUser($input: ProvisionUserInput!) {
  provisionUser(input: $input) {
    __typename
    ... on Error { code message field }
    ... on ProvisionUserSuccess { created changedFields user { externalId email name role locale active } }
  }
}
"""
DEACTIVATE_USER = """
mutation DeactivateUser($slug: String!, $externalId: String!) {
  deactivateUser(environmentSlug: $slug, externalId: $externalId) {
    __typename ... on Error { code field } ... on DeactivateUserSuccess { changed user { active } }
  }
}
"""
CREATE_KEY = """
mutation CreateKey($slug: String!, $name: String!, $scopes: [String!]!) {
  createApiKey(environmentSlug: $slug, name: $name, scopes: $scopes) {
    __typename ... on Error { code field } ... on CreateApiKeySuccess { plaintext apiKey { prefix scopes } }
  }
}
"""
REVOKE_KEY = """
mutation RevokeKey($slug: String!, $prefix: String!) {
  revokeApiKey(environmentSlug: $slug, prefix: $prefix) {
    __typename ... on Error { code field } ... on RevokeApiKeySuccess { changed apiKey { revokedAt } }
  }
}
"""
VIEWER = "{ viewer { __typename } }"
QUOTA = "{ quota(process: PRODUCT_SYNC) { allowed creditsUsed creditsLimit processesUsed } }"
MY_PLAN = "{ myPlan { ... on MyPlan { plan { code } activeAddOns { addOn { code } quantity } } } }"
WRITE = (TENANTS_WRITE, USERS_WRITE, OPS_READ)


def new_environment(**changes: Any) -> dict[str, Any]:
    return {
        "slug": "loja-nova",
        "name": "Loja Nova",
        "currency": "BRL",
        "planCode": "erp-start",
        "locale": "pt-BR",
        "erp": "bling",
        "createdAt": "2026-11-01T09:00:00+00:00",
        "billingAnchorDay": 5,
        **changes,
    }


async def provision(operator: OperatorClient, **changes: Any) -> dict[str, Any]:
    body = await operator.post(PROVISION, {"input": new_environment(**changes)}, scopes=WRITE)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["provisionEnvironment"]
    return result


def user_input(**changes: Any) -> dict[str, Any]:
    return {
        "environmentSlug": "acme",
        "externalId": "saas-user-1",
        "email": "Ana@Example.COM",
        "name": "Ana Lima",
        "role": "ADMIN",
        **changes,
    }


async def provision_user(operator: OperatorClient, **changes: Any) -> dict[str, Any]:
    body = await operator.post(PROVISION_USER, {"input": user_input(**changes)}, scopes=WRITE)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["provisionUser"]
    return result


async def audit_actions(operator: OperatorClient) -> list[tuple[str, str, str | None]]:
    entries = await OperatorAuditEntry.all().order_by("created_at", "id").select_related("operator_key")
    return [(entry.action, entry.operator_key.prefix, entry.subject_id) for entry in entries]


# --- Environments ------------------------------------------------------------------------------


async def test_a_new_environment_gets_its_plan_at_the_plans_price_and_is_audited(
    operator: OperatorClient, demo: SeedResult
) -> None:
    result = await provision(operator)

    assert result["__typename"] == "ProvisionEnvironmentSuccess"
    assert result["created"] is True
    environment = result["environment"]
    assert {k: v for k, v in environment.items() if k not in ("id", "users", "apiKeys")} == {
        "slug": "loja-nova",
        "name": "Loja Nova",
        "currency": "BRL",
        "locale": "pt-BR",
        "erp": "bling",
        "planCode": "erp-start",
        "createdAt": "2026-11-01T09:00:00+00:00",
        "billingAnchorDay": 5,
        "active": True,
    }
    tenant = await Tenant.get(slug="loja-nova")
    subscription = await PlanSubscription.get(tenant_id=tenant.id)
    assert (str(subscription.unit_price), subscription.currency) == ("149.90", "BRL")
    key_prefix = (await operator.key(*WRITE)).split("_")[1]
    assert await audit_actions(operator) == [("tenant.create", key_prefix, "loja-nova")]
    entry = await OperatorAuditEntry.get(action="tenant.create")
    assert entry.tenant_id == tenant.id
    assert entry.details["planCode"] == "erp-start"


async def test_the_same_input_twice_changes_nothing_the_second_time(
    operator: OperatorClient, demo: SeedResult
) -> None:
    await provision(operator)
    again = await provision(operator)
    left_out = await provision(operator, locale=None, createdAt=None, billingAnchorDay=None)

    assert (again["created"], again["changedFields"]) == (False, [])
    assert (left_out["created"], left_out["changedFields"]) == (False, [])
    assert left_out["environment"]["createdAt"] == "2026-11-01T09:00:00+00:00"
    assert await Tenant.filter(slug="loja-nova").count() == 1
    assert [action for action, _, _ in await audit_actions(operator)] == ["tenant.create"]


async def test_defaults_of_a_new_environment(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    body = await operator.post(
        PROVISION,
        {"input": {"slug": "min", "name": "M", "currency": "EUR", "planCode": "storefront-s"}},
        scopes=WRITE,
    )
    environment = body["data"]["provisionEnvironment"]["environment"]
    assert (environment["locale"], environment["erp"], environment["billingAnchorDay"]) == ("en", None, 1)
    assert environment["createdAt"] == clock.now().isoformat()


async def test_an_update_says_what_changed_and_audits_it(operator: OperatorClient, demo: SeedResult) -> None:
    await provision(operator)
    result = await provision(operator, name="Loja Renomeada", locale="es", erp=None, billingAnchorDay=31)

    assert result["changedFields"] == ["billingAnchorDay", "erp", "locale", "name"]
    assert result["environment"]["erp"] is None
    entry = await OperatorAuditEntry.get(action="tenant.update")
    assert entry.details["changes"]["name"] == ["Loja Nova", "Loja Renomeada"]
    assert entry.details["changes"]["erp"] == ["bling", None]


async def test_a_change_of_plan_moves_the_subscription_and_emits_plan_and_limits_events(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await provision(operator)
    result = await provision(operator, planCode="erp-pro")

    assert result["changedFields"] == ["planCode"]
    assert result["environment"]["planCode"] == "erp-pro"
    subscription = await PlanSubscription.get(tenant__slug="loja-nova").select_related("plan")
    assert (subscription.plan.code, str(subscription.unit_price), subscription.currency) == (
        "erp-pro",
        "349.90",
        "BRL",
    )
    events = {event.event_type: event.payload["data"] for event in await WebhookEvent.all()}
    assert events["plan.changed"] == {
        "environment": "loja-nova",
        "from_plan_code": "erp-start",
        "to_plan_code": "erp-pro",
        "kind": "UPGRADE",
        "source": "OPERATOR",
        "effective_at": clock.now().isoformat(),
        "currency": "BRL",
        "from_unit_price": "149.90",
        "to_unit_price": "349.90",
        "change_fee": "0.00",
    }
    erp_pro = await Plan.get(code="erp-pro")
    assert events["limits.changed"]["limits"]["credits"] == erp_pro.credits
    assert events["limits.changed"]["limits"]["users"] == erp_pro.users


async def test_a_changed_plan_is_what_the_gateway_answers_at_once(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    before = await gql.post(MY_PLAN, as_="admin@acme.test")  # now in the gateway's plan cache
    assert before["data"]["myPlan"]["plan"]["code"] == "storefront-m"
    await provision(
        operator, slug="acme", name="Acme Storefront", currency="EUR", planCode="storefront-l", locale="en",
        erp=None, createdAt="2023-03-14T00:00:00+00:00", billingAnchorDay=1,
    )  # fmt: skip
    after = await gql.post(MY_PLAN, as_="admin@acme.test")
    assert after["data"]["myPlan"]["plan"]["code"] == "storefront-l"


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"slug": "A"}, "INVALID_INPUT", "input.slug"),
        ({"slug": "Loja"}, "INVALID_INPUT", "input.slug"),
        ({"slug": "-loja"}, "INVALID_INPUT", "input.slug"),
        ({"slug": "loja\n"}, "INVALID_INPUT", "input.slug"),
        ({"slug": "a" * 65}, "INVALID_INPUT", "input.slug"),
        ({"name": "  "}, "INVALID_INPUT", "input.name"),
        ({"name": "x" * 201}, "INVALID_INPUT", "input.name"),
        ({"name": "Loja\x00Nova"}, "INVALID_INPUT", "input.name"),
        ({"name": "Loja\u202eavoN"}, "INVALID_INPUT", "input.name"),
        ({"currency": "brl"}, "INVALID_INPUT", "input.currency"),
        ({"currency": "USD"}, "CURRENCY_NOT_PRICED", "input.currency"),
        ({"locale": "fr"}, "INVALID_INPUT", "input.locale"),
        ({"erp": "Bling ERP"}, "INVALID_INPUT", "input.erp"),
        ({"planCode": "no-such-plan"}, "NOT_FOUND", "input.planCode"),
        ({"createdAt": "2027-01-01T00:00:00+00:00"}, "INVALID_INPUT", "input.createdAt"),
        ({"billingAnchorDay": 0}, "INVALID_INPUT", "input.billingAnchorDay"),
        ({"billingAnchorDay": 32}, "INVALID_INPUT", "input.billingAnchorDay"),
    ],
)
async def test_every_bad_input_is_a_typed_error_and_nothing_is_written(
    operator: OperatorClient, demo: SeedResult, changes: dict[str, Any], code: str, field: str
) -> None:
    result = await provision(operator, **changes)

    assert (result["__typename"] != "ProvisionEnvironmentSuccess", result["code"], result["field"]) == (
        True,
        code,
        field,
    )
    assert len(result["message"]) < 300
    assert await Tenant.all().count() == 3  # the seed's
    assert not await OperatorAuditEntry.exists()


async def test_an_unpriced_currency_lists_the_plans_currencies(
    operator: OperatorClient, demo: SeedResult
) -> None:
    result = await provision(operator, currency="USD")
    assert result["pricedCurrencies"] == ["BRL", "EUR"]


async def test_a_plan_no_longer_sold_starts_no_new_subscription(
    operator: OperatorClient, demo: SeedResult
) -> None:
    await Plan.filter(code="erp-pro").update(is_active=False)
    refused = await provision(operator, planCode="erp-pro")
    assert (refused["__typename"], refused["code"]) == ("PlanUnavailableError", "PLAN_UNAVAILABLE")
    # An environment already on it keeps it through provisioning.
    nova = await provision(
        operator, slug="nova", name="Nova Distribuidora", currency="BRL", planCode="erp-pro",
        createdAt="2024-06-10T00:00:00+00:00", billingAnchorDay=10, locale="pt-BR", erp="bling",
    )  # fmt: skip
    assert (nova["__typename"], nova["changedFields"]) == ("ProvisionEnvironmentSuccess", [])


async def test_the_currency_stays_while_add_ons_contracted_in_it_count(
    operator: OperatorClient, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = {
        "slug": "acme", "name": "Acme Storefront", "planCode": "storefront-m", "locale": "es",
        "erp": "holded", "createdAt": "2023-03-14T00:00:00+00:00", "billingAnchorDay": 1,
    }  # fmt: skip
    refused = await provision(operator, **acme, currency="BRL")

    assert refused["__typename"] == "CurrencyLockedError"
    assert (refused["currency"], refused["addOnCodes"]) == (
        "EUR",
        ["credits-1000", "report-sales-dashboard", "storage-10gb"],
    )
    assert (await Tenant.get(slug="acme")).currency == "EUR"
    # Once they have ended, it may change, and the plan's price follows it.
    await AddOnSubscription.filter(tenant__slug="acme").update(ends_at=clock.now() - dt.timedelta(days=1))
    moved = await provision(operator, **acme, currency="BRL")
    assert moved["changedFields"] == ["currency"]
    subscription = await PlanSubscription.get(tenant__slug="acme")
    assert (str(subscription.unit_price), subscription.currency) == ("399.00", "BRL")


async def test_the_longest_values_are_accepted(operator: OperatorClient, demo: SeedResult) -> None:
    slug, name = "a" * 64, "Ç" * 200
    result = await provision(operator, slug=slug, name=name, erp="e" * 64)
    assert result["created"] is True
    assert (await Tenant.get(slug=slug)).name == name


async def test_twenty_concurrent_provisionings_of_one_new_slug_make_one_environment(
    operator: OperatorClient, demo: SeedResult
) -> None:
    key = await operator.key(*WRITE)
    responses = await asyncio.gather(
        *(operator.raw(PROVISION, {"input": new_environment()}, key=key) for _ in range(20))
    )

    assert {response.status_code for response in responses} == {200}
    results = [response.json()["data"]["provisionEnvironment"] for response in responses]
    assert {result["__typename"] for result in results} == {"ProvisionEnvironmentSuccess"}
    assert sum(result["created"] for result in results) == 1
    assert await Tenant.filter(slug="loja-nova").count() == 1
    assert await PlanSubscription.filter(tenant__slug="loja-nova").count() == 1
    assert [action for action, _, _ in await audit_actions(operator)] == ["tenant.create"]


async def test_each_mutation_needs_its_scope(operator: OperatorClient, demo: SeedResult) -> None:
    refused = await operator.post(PROVISION, {"input": new_environment()}, scopes=(USERS_WRITE, OPS_READ))
    assert refused["data"] == {"provisionEnvironment": None}
    assert refused["errors"][0]["extensions"] == {"code": "FORBIDDEN", "requiredScopes": [TENANTS_WRITE]}
    refused = await operator.post(PROVISION_USER, {"input": user_input()}, scopes=(TENANTS_WRITE,))
    assert refused["errors"][0]["extensions"]["requiredScopes"] == [USERS_WRITE]
    refused = await operator.post(ENVIRONMENT, {"slug": "acme"}, scopes=(TENANTS_WRITE,))
    assert refused["errors"][0]["extensions"]["requiredScopes"] == [OPS_READ]
    assert not await Tenant.filter(slug="loja-nova").exists()


# --- Reading -----------------------------------------------------------------------------------


async def test_an_environment_shows_its_users_and_keys_never_a_hash(
    operator: OperatorClient, demo: SeedResult
) -> None:
    body = await operator.post(ENVIRONMENT, {"slug": "acme"}, scopes=(OPS_READ,))
    environment = body["data"]["environment"]
    assert environment["planCode"] == "storefront-m"
    assert [user["email"] for user in environment["users"]] == ["admin@acme.test", "member@acme.test"]
    [key] = environment["apiKeys"]
    assert demo.connector_keys["acme"].startswith(f"tg_{key['prefix']}_")
    assert "hash" not in str(body).lower()
    missing = await operator.post(ENVIRONMENT, {"slug": "nope"}, scopes=(OPS_READ,))
    assert missing["data"]["environment"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "field": "slug",
    }


async def test_environments_page_by_slug_and_filter_by_activity(
    operator: OperatorClient, demo: SeedResult
) -> None:
    page = "query($after: String, $active: Boolean) { environments(first: 2, after: $after, active: $active) "
    page += "{ totalCount nodes { slug } pageInfo { hasNextPage endCursor } } }"
    first = (await operator.post(page, {}, scopes=(OPS_READ,)))["data"]["environments"]
    assert [n["slug"] for n in first["nodes"]] == ["acme", "legacy"]
    assert first["pageInfo"]["hasNextPage"]
    after = {"after": first["pageInfo"]["endCursor"]}
    second = (await operator.post(page, after, scopes=(OPS_READ,)))["data"]["environments"]
    assert [n["slug"] for n in second["nodes"]] == ["nova"]
    assert not second["pageInfo"]["hasNextPage"]
    await Tenant.filter(slug="legacy").update(is_active=False)
    inactive = (await operator.post(page, {"active": False}, scopes=(OPS_READ,)))["data"]["environments"]
    assert (inactive["totalCount"], [n["slug"] for n in inactive["nodes"]]) == (1, ["legacy"])
    foreign = await operator.post(page, {"after": "Zm9vOmJhcg"}, scopes=(OPS_READ,))
    assert foreign["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# --- Deactivation ------------------------------------------------------------------------------


async def test_a_deactivated_environment_is_refused_at_once_and_restored_whole(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    key = demo.connector_keys["nova"]
    async with client_for(settings, clock, auth_cache_seconds=30) as http:
        operator, gql = OperatorClient(http, clock), GraphQLClient(http, settings, clock)
        before = await gql.post(QUOTA, key=key)  # the key is now in the credential cache
        plan_before = await gql.post(MY_PLAN, as_="admin@nova.test")
        assert "errors" not in before

        off = await operator.post(SET_ACTIVE, {"slug": "nova", "off": True}, scopes=(TENANTS_WRITE,))
        refused = await gql.post(QUOTA, key=key)
        refused_user = await gql.post(VIEWER, as_="admin@nova.test")
        again = await operator.post(SET_ACTIVE, {"slug": "nova", "off": True}, scopes=(TENANTS_WRITE,))
        on = await operator.post(SET_ACTIVE, {"slug": "nova", "off": False}, scopes=(TENANTS_WRITE,))
        after = await gql.post(QUOTA, key=key)
        plan_after = await gql.post(MY_PLAN, as_="admin@nova.test")

    assert off["data"]["deactivateEnvironment"] == {
        "__typename": "DeactivateEnvironmentSuccess",
        "changed": True,
        "environment": {"active": False},
    }
    [error] = refused["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "TENANT_INACTIVE"}
    assert error["message"] == "The environment of this key is disabled."
    assert refused_user["errors"][0]["extensions"]["reason"] == "TENANT_INACTIVE"
    assert again["data"]["deactivateEnvironment"]["changed"] is False
    assert on["data"]["reactivateEnvironment"]["changed"] is True
    assert after == before
    assert plan_after == plan_before
    assert sorted(a for a, _, _ in await audit_actions(operator)) == [
        "tenant.deactivate",
        "tenant.reactivate",
    ]


# --- Users -------------------------------------------------------------------------------------


async def test_a_provisioned_user_signs_in_and_a_deactivated_one_is_refused(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    created = await provision_user(operator, locale="pt-BR")
    assert created["created"] is True
    assert created["user"] == {
        "externalId": "saas-user-1",
        "email": "ana@example.com",
        "name": "Ana Lima",
        "role": "ADMIN",
        "locale": "pt-BR",
        "active": True,
    }
    viewer = await gql.post(VIEWER, as_="ana@example.com")
    assert "errors" not in viewer
    assert viewer["data"]["viewer"] is not None

    same = await provision_user(operator)
    assert (same["created"], same["changedFields"]) == (False, [])
    demoted = await provision_user(operator, role="MEMBER", name="Ana L.")
    assert demoted["changedFields"] == ["name", "role"]

    off = await operator.post(DEACTIVATE_USER, {"slug": "acme", "externalId": "saas-user-1"}, scopes=WRITE)
    assert off["data"]["deactivateUser"] == {
        "__typename": "DeactivateUserSuccess",
        "changed": True,
        "user": {"active": False},
    }
    refused = await gql.post(VIEWER, as_="ana@example.com")
    assert refused["errors"][0]["extensions"]["reason"] == "USER_UNKNOWN"
    back = await provision_user(operator, role="MEMBER", name="Ana L.")
    assert back["changedFields"] == ["active"]
    assert "errors" not in await gql.post(VIEWER, as_="ana@example.com")
    actions = sorted(action for action, _, _ in await audit_actions(operator))  # one instant: no order
    assert actions == ["user.create", "user.deactivate", "user.update", "user.update"]


async def test_active_false_deactivates_too(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    await provision_user(operator)
    assert "errors" not in await gql.post(VIEWER, as_="ana@example.com")
    off = await provision_user(operator, active=False)
    assert off["changedFields"] == ["active"]
    assert off["user"]["active"] is False
    assert (await gql.post(VIEWER, as_="ana@example.com"))["errors"][0]["extensions"][
        "code"
    ] == "UNAUTHENTICATED"


async def test_an_existing_user_with_the_same_email_is_adopted(
    operator: OperatorClient, demo: SeedResult
) -> None:
    adopted = await provision_user(
        operator, email="MEMBER@acme.test", role="MEMBER", name="Acme Storefront member"
    )
    assert (adopted["created"], adopted["changedFields"]) == (False, ["externalId"])
    assert await User.filter(email="member@acme.test", external_id="saas-user-1").count() == 1
    assert await User.filter(tenant__slug="acme").count() == 2


async def test_an_email_of_another_environment_or_user_is_taken(
    operator: OperatorClient, demo: SeedResult
) -> None:
    elsewhere = await provision_user(operator, email="admin@nova.test")
    assert (elsewhere["__typename"], elsewhere["code"], elsewhere["field"]) == (
        "EmailTakenError",
        "EMAIL_TAKEN",
        "input.email",
    )
    await provision_user(operator)
    other = await provision_user(operator, externalId="saas-user-2")  # same e-mail, another SaaS user
    assert other["code"] == "EMAIL_TAKEN"
    assert await User.filter(external_id="saas-user-2").count() == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-address"}, "input.email"),
        ({"email": "a@b"}, "input.email"),
        ({"email": "ana @example.com"}, "input.email"),
        ({"email": "ana@exam\nple.com"}, "input.email"),
        ({"email": f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 63}.com"}, "input.email"),
        ({"externalId": ""}, "input.externalId"),
        ({"externalId": "x" * 256}, "input.externalId"),
        ({"externalId": "id\x07"}, "input.externalId"),
        ({"name": "Ana\r\nBcc: x"}, "input.name"),
        ({"locale": "de"}, "input.locale"),
        ({"environmentSlug": "NOPE"}, "input.environmentSlug"),
    ],
)
async def test_every_bad_user_input_is_a_typed_error(
    operator: OperatorClient, demo: SeedResult, changes: dict[str, Any], field: str
) -> None:
    result = await provision_user(operator, **changes)
    assert (result["code"], result["field"]) == ("INVALID_INPUT", field)
    assert not await User.filter(external_id__not_isnull=True).exists()


async def test_an_unknown_environment_is_not_found(operator: OperatorClient, demo: SeedResult) -> None:
    result = await provision_user(operator, environmentSlug="nope")
    assert (result["code"], result["field"]) == ("NOT_FOUND", "input.environmentSlug")
    missing = await operator.post(DEACTIVATE_USER, {"slug": "acme", "externalId": "nobody"}, scopes=WRITE)
    assert missing["data"]["deactivateUser"]["code"] == "NOT_FOUND"


async def test_the_longest_user_values_are_accepted(operator: OperatorClient, demo: SeedResult) -> None:
    email = f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 57}.com"
    assert len(email) == 254
    result = await provision_user(operator, email=email, externalId="é" * 255, name="N" * 200)
    assert result["created"] is True
    assert result["user"]["email"] == email


async def test_concurrent_provisionings_of_one_user_make_one(
    operator: OperatorClient, demo: SeedResult
) -> None:
    key = await operator.key(*WRITE)
    responses = await asyncio.gather(
        *(operator.raw(PROVISION_USER, {"input": user_input()}, key=key) for _ in range(10))
    )
    results = [response.json()["data"]["provisionUser"] for response in responses]
    assert {result["__typename"] for result in results} == {"ProvisionUserSuccess"}
    assert sum(result["created"] for result in results) == 1
    assert await User.filter(external_id="saas-user-1").count() == 1


# --- API keys ----------------------------------------------------------------------------------


async def test_a_created_key_works_once_shown_and_a_revoked_one_is_refused(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    created = await operator.post(
        CREATE_KEY,
        {"slug": "acme", "name": "connector", "scopes": ["quota:check", "quota:check"]},
        scopes=WRITE,
    )
    success = created["data"]["createApiKey"]
    assert success["apiKey"]["scopes"] == ["quota:check"]
    plaintext = success["plaintext"]
    assert plaintext.startswith(f"tg_{success['apiKey']['prefix']}_")
    assert "errors" not in await gql.post(QUOTA, key=plaintext)

    revoke = {"slug": "acme", "prefix": success["apiKey"]["prefix"]}
    revoked = await operator.post(REVOKE_KEY, revoke, scopes=WRITE)
    assert revoked["data"]["revokeApiKey"]["changed"] is True
    assert (await gql.post(QUOTA, key=plaintext))["errors"][0]["extensions"]["reason"] == "API_KEY_REVOKED"
    again = await operator.post(REVOKE_KEY, revoke, scopes=WRITE)
    assert again["data"]["revokeApiKey"]["changed"] is False
    other = await operator.post(REVOKE_KEY, {**revoke, "slug": "nova"}, scopes=WRITE)
    assert other["data"]["revokeApiKey"]["code"] == "NOT_FOUND"
    actions = sorted(action for action, _, _ in await audit_actions(operator))
    assert actions == ["api_key.create", "api_key.revoke"]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["admin:all"]}, "scopes"),
        ({"name": ""}, "name"),
        ({"name": "k\x1b[31m"}, "name"),
    ],
)
async def test_bad_key_requests_are_typed_errors(
    operator: OperatorClient, demo: SeedResult, variables: dict[str, Any], field: str
) -> None:
    body = await operator.post(
        CREATE_KEY, {"slug": "acme", "name": "k", "scopes": ["quota:check"], **variables}, scopes=WRITE
    )
    assert body["data"]["createApiKey"] == {
        "__typename": "InvalidInputError",
        "code": "INVALID_INPUT",
        "field": field,
    }


# --- Live sessions -----------------------------------------------------------------------------


@WITH_AND_WITHOUT_REDIS
async def test_deactivation_closes_the_environments_live_sessions_at_once(
    settings: Settings, demo: SeedResult, redis: bool
) -> None:
    """Real gateways: the operator call on the first, the sessions on the last. The credential cache keeps
    credentials a minute, so only the announcement can end the sessions this fast."""
    config = live_settings(settings, redis=redis, auth_cache_seconds=60)
    token = await user_token("admin@acme.test", dt.timedelta(hours=1), config)
    _, operator_key = await create_operator_key(
        name="ops", scopes=[TENANTS_WRITE], now=dt.datetime.now(dt.UTC)
    )
    async with (
        gateways(config, count=2 if redis else 1) as addresses,
        subscriber(addresses[-1], bearer(demo.connector_keys["acme"]), SUBSCRIPTION) as connector,
        subscriber(addresses[-1], bearer(token), SUBSCRIPTION) as admin,
        subscriber(addresses[-1], bearer(demo.connector_keys["nova"]), SUBSCRIPTION) as other,
    ):
        assert await still_open(connector)
        assert await still_open(admin)
        async with httpx.AsyncClient(base_url=f"http://{addresses[0]}") as http:
            response = await http.post(
                "/operator/graphql",
                json={"query": SET_ACTIVE, "variables": {"slug": "acme", "off": True}},
                headers={"Authorization": bearer(operator_key)},
            )
        assert response.json()["data"]["deactivateEnvironment"]["changed"] is True
        (connector_code, _, took), (admin_code, _, _) = await asyncio.gather(
            ended(connector, within=WAIT), ended(admin, within=WAIT)
        )
        other_open = await still_open(other)

    assert (connector_code, admin_code) == (4403, 4403)
    assert took < 2.0
    assert other_open  # another environment's session is not touched


async def test_a_page_of_environments_costs_the_same_statements_for_one_or_twenty(
    operator: OperatorClient, demo: SeedResult
) -> None:
    """Plan codes, users and keys are loaded for the whole page at once (no query per environment)."""
    page = "query($first: Int) { environments(first: $first) { nodes { slug planCode users { email } "
    page += "apiKeys { prefix } } } }"
    for n in range(17):
        assert (await provision(operator, slug=f"loja-{n:02}"))["__typename"] == "ProvisionEnvironmentSuccess"
    await operator.key(OPS_READ)  # made before counting
    counts = []
    for first in (1, 20):
        with count_queries() as counter:
            body = await operator.post(page, {"first": first}, scopes=(OPS_READ,))
        assert len(body["data"]["environments"]["nodes"]) == first
        counts.append(counter.count)
    assert counts[0] == counts[1], counts
