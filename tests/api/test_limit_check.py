"""limitCheck(resource, adding): may the environment add users, integrations or bytes now, with the limit,
the use and why not; storage beyond the storage included is refused under a hard cap, billed under overage.

The demo tenants: acme (EUR, storefront-m, OVERAGE at 2.30 EUR per extra GB) has 5 users, 2 integrations
and 20 GiB of storage (10 GiB + the storage-10gb add-on); nova (BRL, erp-pro, HARD_CAP) has 15 users
(10 + users-5), 4 integrations (3 + Mercado Livre) and 10 GiB; legacy (BRL, erp-start, HARD_CAP).
"""

from __future__ import annotations

from typing import Any

from app.auth import scopes
from app.clock import FrozenClock
from app.models.billing import PlanSubscription
from app.models.enums import PlanSubscriptionStatus
from app.models.tenancy import Tenant
from app.seed import SeedResult
from tests.api.test_checkout import checkout
from tests.api.test_quota import key_with_scopes
from tests.api.test_store import add
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient, count_queries

GIB = 1024**3
LIMIT_CHECK = """
query Check($resource: LimitResource!, $adding: Long!) {
  limitCheck(resource: $resource, adding: $adding) {
    __typename
    ... on Error { code message field }
    ... on LimitCheck {
      resource adding allowed reason limit used available policy
      extraMonthlyCost { amount currency } overageCostAfter { amount currency }
    }
  }
}
"""


async def check(
    gql: GraphQLClient, resource: str, adding: int, *, key: str | None = None, as_: str | None = None
) -> dict[str, Any]:
    body = await gql.post(LIMIT_CHECK, {"resource": resource, "adding": adding}, key=key, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["limitCheck"]
    return result


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


async def test_users_within_at_and_beyond_the_limit(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), users=3)

    within = await check(gql, "USERS", 1, key=key)
    at = await check(gql, "USERS", 2, key=key)
    beyond = await check(gql, "USERS", 3, key=key)

    assert within == {
        "__typename": "LimitCheck",
        "resource": "USERS",
        "adding": 1,
        "allowed": True,
        "reason": None,
        "limit": 5,
        "used": 3,
        "available": 2,
        "policy": None,
        "extraMonthlyCost": None,
        "overageCostAfter": None,
    }
    assert (at["allowed"], at["reason"]) == (True, None)
    assert (beyond["allowed"], beyond["reason"], beyond["available"]) == (False, "LIMIT_REACHED", 2)


async def test_users_already_beyond_the_limit_have_nothing_available(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), users=7)

    now = await check(gql, "USERS", 0, key=key)

    assert (now["allowed"], now["reason"], now["used"], now["available"]) == (False, "LIMIT_REACHED", 7, 0)


async def test_integrations_against_the_limit_with_the_add_ons(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["nova"]
    await report(gql, key, clock.now(), integrations=3)  # limit 3 + Mercado Livre = 4

    one_more = await check(gql, "INTEGRATIONS", 1, key=key)
    two_more = await check(gql, "INTEGRATIONS", 2, key=key)

    assert (one_more["allowed"], one_more["limit"], one_more["used"], one_more["available"]) == (
        True,
        4,
        3,
        1,
    )
    assert (two_more["allowed"], two_more["reason"], two_more["available"]) == (False, "LIMIT_REACHED", 1)
    assert two_more["policy"] is None


async def test_adding_zero_asks_whether_the_environment_is_within_the_limit(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), integrations=2, users=6)

    integrations = await check(gql, "INTEGRATIONS", 0, key=key)
    users = await check(gql, "USERS", 0, key=key)

    assert (integrations["allowed"], integrations["available"]) == (True, 0)  # at the limit: fine
    assert (users["allowed"], users["reason"]) == (False, "LIMIT_REACHED")


async def test_storage_under_a_hard_cap_refuses_what_would_pass_it(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["nova"]
    await report(gql, key, clock.now(), storageBytes=10 * GIB - 100)

    fits = await check(gql, "STORAGE", 100, key=key)
    refused = await check(gql, "STORAGE", 101, key=key)

    brl_zero = {"amount": "0.00", "currency": "BRL"}
    assert fits == {
        "__typename": "LimitCheck",
        "resource": "STORAGE",
        "adding": 100,
        "allowed": True,
        "reason": None,
        "limit": 10 * GIB,
        "used": 10 * GIB - 100,
        "available": 100,
        "policy": "HARD_CAP",
        "extraMonthlyCost": None,
        "overageCostAfter": brl_zero,
    }
    assert (refused["allowed"], refused["reason"], refused["available"]) == (False, "STORAGE_CAP", 100)
    assert (refused["extraMonthlyCost"], refused["overageCostAfter"]) == (None, brl_zero)


async def test_storage_under_overage_is_allowed_and_priced_per_extra_gb_rounded_up(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), storageBytes=19 * GIB)  # 20 GiB included

    # 19 GiB + 2 GiB + 1 byte = 1 GiB + 1 byte beyond: 2 whole GB at 2.30.
    beyond = await check(gql, "STORAGE", 2 * GIB + 1, key=key)

    assert beyond == {
        "__typename": "LimitCheck",
        "resource": "STORAGE",
        "adding": 2 * GIB + 1,
        "allowed": True,
        "reason": "STORAGE_OVERAGE",
        "limit": 20 * GIB,
        "used": 19 * GIB,
        "available": GIB,
        "policy": "OVERAGE",
        "extraMonthlyCost": eur("4.60"),
        "overageCostAfter": eur("4.60"),
    }


async def test_storage_overage_costs_only_the_gb_it_adds(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), storageBytes=20 * GIB + GIB // 2)  # 1 GB billed now: 2.30

    same_gb = await check(gql, "STORAGE", GIB // 4, key=key)  # 20.75 GiB: still 1 GB
    three_more = await check(gql, "STORAGE", 3 * GIB, key=key)  # 23.5 GiB: 4 GB, 9.20

    assert (same_gb["allowed"], same_gb["reason"]) == (True, "STORAGE_OVERAGE")
    assert (same_gb["extraMonthlyCost"], same_gb["overageCostAfter"]) == (eur("0.00"), eur("2.30"))
    assert (three_more["extraMonthlyCost"], three_more["overageCostAfter"]) == (eur("6.90"), eur("9.20"))
    assert three_more["available"] == 0


async def test_storage_checks_of_more_than_2_gib_are_askable(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now())  # 0 bytes

    five = await check(gql, "STORAGE", 5 * GIB, key=key)  # beyond a 32-bit Int
    twenty_five = await check(gql, "STORAGE", 25 * GIB, key=key)

    assert 5 * GIB > 2**31
    assert (five["allowed"], five["reason"], five["adding"], five["available"]) == (
        True,
        None,
        5 * GIB,
        20 * GIB,
    )
    assert five["overageCostAfter"] == eur("0.00")
    assert (twenty_five["reason"], twenty_five["extraMonthlyCost"]) == ("STORAGE_OVERAGE", eur("11.50"))


async def test_before_any_report_the_use_is_zero(gql: GraphQLClient, demo: SeedResult) -> None:
    key = demo.connector_keys["legacy"]

    users = await check(gql, "USERS", 3, key=key)
    storage = await check(gql, "STORAGE", 10 * GIB + 1, key=key)

    assert (users["allowed"], users["used"], users["limit"], users["available"]) == (True, 0, 3, 3)
    assert (storage["allowed"], storage["reason"], storage["used"]) == (False, "STORAGE_CAP", 0)


async def test_negative_and_too_large_amounts_are_refused_naming_the_argument(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]

    negative = await check(gql, "USERS", -1, key=key)
    too_many = await check(gql, "INTEGRATIONS", 1_000_000_001, key=key)
    too_big = await check(gql, "STORAGE", 10**16 + 1, key=key)
    largest = await check(gql, "STORAGE", 10**16, key=key)

    for refused in (negative, too_many, too_big):
        assert refused["__typename"] == "InvalidInputError", refused
        assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "adding")
    assert (largest["__typename"], largest["allowed"], largest["reason"]) == (
        "LimitCheck", True, "STORAGE_OVERAGE",
    )  # fmt: skip


async def test_values_that_are_not_a_long_are_refused_before_anything_runs(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]

    for adding in (2**63, "12", 1.5, "\x00" * 10_000):
        body = await gql.post(LIMIT_CHECK, {"resource": "STORAGE", "adding": adding}, key=key)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    body = await gql.post(LIMIT_CHECK, {"resource": "CPU", "adding": 1}, key=key)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_an_inactive_plan_allows_nothing(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), users=1)
    acme = await Tenant.get(slug="acme")
    await PlanSubscription.filter(tenant_id=acme.id).update(status=PlanSubscriptionStatus.SUSPENDED)

    users = await check(gql, "USERS", 1, key=key)
    storage = await check(gql, "STORAGE", 0, key=key)

    assert (users["allowed"], users["reason"], users["limit"], users["used"]) == (
        False,
        "PLAN_INACTIVE",
        0,
        1,
    )
    assert (storage["allowed"], storage["reason"], storage["policy"], storage["overageCostAfter"]) == (
        False, "PLAN_INACTIVE", None, None,
    )  # fmt: skip


async def test_an_add_on_bought_raises_the_limit_at_once(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), users=5)
    before = await check(gql, "USERS", 1, key=key)  # the plan is cached from here on

    assert (await add(gql, "users-1", 2))["__typename"] == "AddToCartSuccess"
    assert (await checkout(gql, "more-users"))["__typename"] == "CheckoutSuccess"
    after = await check(gql, "USERS", 1, key=key)

    assert (before["allowed"], before["reason"], before["limit"]) == (False, "LIMIT_REACHED", 5)
    assert (after["allowed"], after["reason"], after["limit"], after["available"]) == (True, None, 7, 2)


async def test_users_of_the_environment_may_ask_members_included(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now(), users=4)

    admin = await check(gql, "USERS", 1, as_="admin@acme.test")
    member = await check(gql, "USERS", 2, as_="member@acme.test")
    other_tenant = await check(gql, "USERS", 1, as_="member@nova.test")

    assert (admin["allowed"], admin["used"]) == (True, 4)
    assert (member["allowed"], member["reason"]) == (False, "LIMIT_REACHED")
    assert (other_tenant["used"], other_tenant["limit"]) == (0, 15)  # its own environment only


async def test_keys_need_the_quota_check_scope(gql: GraphQLClient, demo: SeedResult) -> None:
    checker = await key_with_scopes("acme", scopes.QUOTA_CHECK)
    reporter_only = await key_with_scopes("acme", scopes.USAGE_REPORT)
    variables = {"resource": "USERS", "adding": 1}

    allowed = await check(gql, "USERS", 1, key=checker)
    wrong_scope = await gql.post(LIMIT_CHECK, variables, key=reporter_only)
    anonymous = await gql.post(LIMIT_CHECK, variables)

    assert allowed["__typename"] == "LimitCheck"
    assert wrong_scope["data"] == {"limitCheck": None}
    assert wrong_scope["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert wrong_scope["errors"][0]["extensions"]["requiredScopes"] == ["quota:check"]
    assert anonymous["data"] == {"limitCheck": None}
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_check_runs_a_constant_number_of_queries(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), storageBytes=21 * GIB)
    await check(gql, "STORAGE", 0, key=key)  # loads the plan cache

    with count_queries() as queries:
        storage = await check(gql, "STORAGE", GIB, key=key)

    assert storage["extraMonthlyCost"] == eur("2.30")
    # The key and its tenant, then the usage row: the plan and its limits come from the plan cache.
    assert queries.count == 2, queries.statements
    assert "tenant_usage" in queries.statements[1]
