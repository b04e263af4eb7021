"""quota(process): allowed or not, why, and the figures; over the credit limit nothing may start."""

from __future__ import annotations

from typing import Any

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.clock import FrozenClock
from app.models.billing import PlanSubscription
from app.models.enums import PlanSubscriptionStatus
from app.models.metering import ProcessCounter
from app.models.tenancy import ApiKey, Tenant
from app.observability import REGISTRY
from app.seed import SeedResult
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient, count_queries

QUOTA = """
query Quota($process: ProcessKind!) {
  quota(process: $process) {
    process allowed reason creditsUsed creditsLimit processesUsed processAllowance period { name start end }
  }
}
"""


async def quota(gql: GraphQLClient, key: str, process: str = "PRODUCT_SYNC") -> dict[str, Any]:
    body = await gql.post(QUOTA, {"process": process}, key=key)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["quota"]
    return result


async def key_with_scopes(slug: str, *granted: str) -> str:
    key = generate_api_key()
    tenant = await Tenant.get(slug=slug)
    await ApiKey.create(
        tenant=tenant, name="test", prefix=key.prefix, key_hash=key.key_hash, scopes=list(granted)
    )
    return key.plaintext


async def test_within_the_credit_limit_a_process_may_start(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now())

    decision = await quota(gql, key, "STOCK_UPDATE")

    assert decision == {
        "process": "STOCK_UPDATE",
        "allowed": True,
        "reason": None,
        "creditsUsed": 2748,
        "creditsLimit": 4000,
        "processesUsed": 0,
        "processAllowance": 159_600,
        "period": {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"},
    }


async def test_exactly_at_the_credit_limit_a_process_may_still_start(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), variants=4000 - 2408)

    decision = await quota(gql, key)

    assert (decision["creditsUsed"], decision["allowed"]) == (4000, True)


async def test_over_the_credit_limit_no_process_may_start_but_the_store_keeps_working(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), variants=4000 - 2408 + 1)

    decision = await quota(gql, key, "ORDER_EXPORT")
    store = await gql.post("{ addOns { code } myPlan { __typename } }", as_="admin@acme.test")

    assert (decision["allowed"], decision["reason"]) == (False, "CREDITS_EXCEEDED")
    assert (decision["creditsUsed"], decision["creditsLimit"]) == (4001, 4000)
    assert "errors" not in store
    assert store["data"]["myPlan"]["__typename"] == "MyPlan"
    assert len(store["data"]["addOns"]) > 0


async def test_an_inactive_plan_launches_nothing(gql: GraphQLClient, demo: SeedResult) -> None:
    acme = await Tenant.get(slug="acme")
    await PlanSubscription.filter(tenant_id=acme.id).update(status=PlanSubscriptionStatus.SUSPENDED)

    decision = await quota(gql, demo.connector_keys["acme"])

    assert (decision["allowed"], decision["reason"]) == (False, "PLAN_INACTIVE")


async def test_beyond_the_allowance_processes_are_allowed_with_the_reason(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    acme = await Tenant.get(slug="acme")
    await ProcessCounter.create(tenant=acme, period="2026-11", used=159_600)

    decision = await quota(gql, demo.connector_keys["acme"])

    assert (decision["allowed"], decision["reason"], decision["processesUsed"]) == (
        True, "BEYOND_ALLOWANCE", 159_600,
    )  # fmt: skip


async def test_each_tenant_sees_only_its_own_figures(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now(), variants=100_000)

    nova = await quota(gql, demo.connector_keys["nova"])

    assert (nova["allowed"], nova["creditsUsed"], nova["creditsLimit"]) == (True, 0, 5000)


async def test_the_quota_check_needs_the_quota_check_scope(gql: GraphQLClient, demo: SeedResult) -> None:
    reporter_only = await key_with_scopes("acme", scopes.USAGE_REPORT)

    as_user = await gql.post(QUOTA, {"process": "PRODUCT_SYNC"}, as_="admin@acme.test")
    wrong_scope = await gql.post(QUOTA, {"process": "PRODUCT_SYNC"}, key=reporter_only)
    bad_key = await gql.post(QUOTA, {"process": "PRODUCT_SYNC"}, key="tg_nope_nope")

    assert as_user["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert wrong_scope["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert wrong_scope["errors"][0]["extensions"]["requiredScopes"] == ["quota:check"]
    assert bad_key["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_unknown_process_kind_is_a_validation_error(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(QUOTA, {"process": "MINING_BITCOIN"}, key=demo.connector_keys["acme"])

    assert body["data"] is None
    assert "MINING_BITCOIN" in body["errors"][0]["message"]
    assert body["errors"][0].get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR"


async def test_the_quota_check_runs_a_constant_number_of_queries(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now())
    await quota(gql, key)  # loads the plan cache

    with count_queries() as queries:
        decision = await quota(gql, key)

    assert decision["allowed"] is True
    # The key and its tenant only: the limits and the figures are cached (app.services.plan_cache,
    # app.services.figures_cache); with the credential cache of a running gateway the key costs nothing.
    assert queries.count == 1, queries.statements


def decisions(decision: str, reason: str) -> float:
    return (
        REGISTRY.get_sample_value("tollgate_quota_decisions_total", {"decision": decision, "reason": reason})
        or 0
    )


async def test_each_decision_is_counted_in_the_metrics(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    allowed_before, denied_before = decisions("allowed", "OK"), decisions("denied", "CREDITS_EXCEEDED")

    await quota(gql, key)
    await report(gql, key, clock.now(), variants=10_000)
    await quota(gql, key)
    await quota(gql, key)

    assert decisions("allowed", "OK") - allowed_before == 1
    assert decisions("denied", "CREDITS_EXCEEDED") - denied_before == 2


async def test_the_period_follows_the_billing_anchor_day(gql: GraphQLClient, demo: SeedResult) -> None:
    # nova's periods start on the 10th: November 23 is in the period of November 10 to December 10.
    decision = await quota(gql, demo.connector_keys["nova"])

    assert decision["period"] == {"name": "2026-11", "start": "2026-11-10", "end": "2026-12-10"}


async def test_a_connector_key_asking_my_plan_beside_quota_keeps_its_figures(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]  # quota:check, usage:report, process:start; no tenant:read
    await report(gql, key, clock.now())
    document = """
    query Screen {
      quota(process: PRODUCT_SYNC) { allowed creditsUsed }
      creditUsage { ... on CreditUsage { used } }
      myPlan { __typename }
    }
    """

    body = await gql.post(document, key=key)

    assert body["data"] == {
        "quota": {"allowed": True, "creditsUsed": 2748},
        "creditUsage": {"used": 2748},
        "myPlan": None,
    }
    [error] = body["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["myPlan"], "FORBIDDEN")
