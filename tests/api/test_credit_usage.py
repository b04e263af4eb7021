"""creditUsage: the seed's 2,748 credits, the limit with credit packs, processes, storage and forecast."""

from __future__ import annotations

import datetime as dt

from app.clock import FrozenClock
from app.models.billing import PlanSubscription
from app.models.enums import PlanSubscriptionStatus
from app.models.metering import ProcessCounter
from app.models.tenancy import Tenant
from app.resolvers.ids import key_of
from app.seed import SeedResult
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient, count_queries

CREDIT_USAGE = """
{
  creditUsage {
    ... on CreditUsage {
      id
      breakdown { variants customers contacts salesReps adminUsers }
      used limit remaining percent measuredAt
      processes {
        period { name start end } used estimate allowance beyondAllowance
        forecast { dailyPace expectedByPeriodEnd allowancePassedOn }
      }
      storage { usedBytes includedBytes policy overageGb overageCost { amount currency } }
    }
    ... on Error { code message }
  }
}
"""

GB = 1024**3


async def test_the_seed_example_reads_back_2748_credits_with_estimate_and_allowance(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now())

    body = await gql.post(CREDIT_USAGE, as_="admin@acme.test")

    usage = body["data"]["creditUsage"]
    assert usage["breakdown"] == {
        "variants": 340, "customers": 1200, "contacts": 1200, "salesReps": 5, "adminUsers": 3,
    }  # fmt: skip
    # storefront-m has 3,000 credits, plus the 1,000 credit pack acme bought.
    assert (usage["used"], usage["limit"], usage["remaining"], usage["percent"]) == (
        2748,
        4000,
        1252,
        "68.70",
    )
    assert usage["measuredAt"] == "2026-11-23T12:00:00+00:00"
    processes = usage["processes"]
    # Estimate: 4,000 credits x 30 days; allowance: the estimate + 33%.
    assert (processes["estimate"], processes["allowance"]) == (120_000, 159_600)
    assert (processes["used"], processes["beyondAllowance"]) == (0, False)
    assert processes["period"] == {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"}


async def test_the_limit_follows_the_plan_of_each_tenant(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    body = await gql.post(CREDIT_USAGE, as_="admin@nova.test")

    usage = body["data"]["creditUsage"]
    # erp-pro: 5,000 credits and no credit pack; nothing reported yet.
    assert (usage["used"], usage["limit"], usage["remaining"], usage["percent"]) == (0, 5000, 5000, "0.00")
    assert (usage["processes"]["estimate"], usage["processes"]["allowance"]) == (150_000, 199_500)
    assert usage["processes"]["period"] == {"name": "2026-11", "start": "2026-11-10", "end": "2026-12-10"}
    assert usage["measuredAt"] is None


async def test_storage_overage_is_billed_per_started_gb_at_2_30_eur(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    # acme: 10 GB included + a 10 GB pack = 20 GB; 22.5 GB used is 3 extra GB (rounded up).
    await report(gql, demo.connector_keys["acme"], clock.now(), storageBytes=22 * GB + GB // 2)

    storage = (await gql.post(CREDIT_USAGE, as_="admin@acme.test"))["data"]["creditUsage"]["storage"]

    assert storage == {
        "usedBytes": 22 * GB + GB // 2,
        "includedBytes": 20 * GB,
        "policy": "OVERAGE",
        "overageGb": 3,
        "overageCost": {"amount": "6.90", "currency": "EUR"},
    }


async def test_storage_within_the_included_space_costs_nothing(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now(), storageBytes=20 * GB)

    storage = (await gql.post(CREDIT_USAGE, as_="admin@acme.test"))["data"]["creditUsage"]["storage"]

    assert (storage["overageGb"], storage["overageCost"]) == (0, {"amount": "0.00", "currency": "EUR"})


async def test_a_hard_cap_plan_shows_overage_without_a_price(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["nova"], clock.now(), storageBytes=11 * GB)

    storage = (await gql.post(CREDIT_USAGE, as_="admin@nova.test"))["data"]["creditUsage"]["storage"]

    assert (storage["policy"], storage["overageGb"]) == ("HARD_CAP", 1)
    assert storage["overageCost"] == {"amount": "0.00", "currency": "BRL"}


async def test_the_forecast_extrapolates_the_pace_of_the_period(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    # 22.5 days into November (30 days): 135,000 processes is 6,000 a day -> 180,000 by the end;
    # the 159,600 allowance is passed 26.6 days in, on November 27.
    await ProcessCounter.create(tenant=acme, period="2026-11", used=135_000)

    processes = (await gql.post(CREDIT_USAGE, as_="admin@acme.test"))["data"]["creditUsage"]["processes"]

    assert processes["forecast"] == {
        "dailyPace": "6000.00",
        "expectedByPeriodEnd": 180_000,
        "allowancePassedOn": "2026-11-27",
    }
    assert processes["used"] == 135_000


async def test_the_process_count_restarts_with_the_next_billing_period(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    await ProcessCounter.create(tenant=acme, period="2026-11", used=500)
    clock.set(dt.datetime(2026, 12, 2, tzinfo=dt.UTC))

    processes = (await gql.post(CREDIT_USAGE, as_="admin@acme.test"))["data"]["creditUsage"]["processes"]

    assert (processes["period"]["name"], processes["used"]) == ("2026-12", 0)


async def test_members_and_the_connector_may_read_credit_usage_of_their_own_tenant_only(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now())

    member = await gql.post(CREDIT_USAGE, as_="member@acme.test")
    connector = await gql.post(CREDIT_USAGE, key=demo.connector_keys["acme"])
    other = await gql.post(CREDIT_USAGE, as_="admin@nova.test")
    anonymous = await gql.post(CREDIT_USAGE)

    assert member["data"]["creditUsage"]["used"] == connector["data"]["creditUsage"]["used"] == 2748
    assert other["data"]["creditUsage"]["used"] == 0
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_id_is_the_environments_the_same_for_every_caller_and_names_its_type(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    admin = (await gql.post(CREDIT_USAGE, as_="admin@acme.test"))["data"]["creditUsage"]["id"]
    member = (await gql.post(CREDIT_USAGE, as_="member@acme.test"))["data"]["creditUsage"]["id"]
    connector = (await gql.post(CREDIT_USAGE, key=demo.connector_keys["acme"]))["data"]["creditUsage"]["id"]
    nova = (await gql.post(CREDIT_USAGE, as_="admin@nova.test"))["data"]["creditUsage"]["id"]

    assert admin == member == connector != nova
    acme = await Tenant.get(slug="acme")
    assert key_of(admin, "CreditUsage", field="id") == str(acme.id)


async def test_credit_usage_runs_a_constant_number_of_queries(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now())
    await gql.post(CREDIT_USAGE, as_="admin@acme.test")  # the user's token is minted outside the count

    with count_queries() as queries:
        body = await gql.post(CREDIT_USAGE, as_="admin@acme.test")

    assert body["data"]["creditUsage"]["used"] == 2748
    # The caller only: the plan and the figures (usage row, process counter) are cached.
    assert queries.count == 1, queries.statements

    # The next applied report drops the cached figures: the screen shows it at once.
    await report(gql, demo.connector_keys["acme"], clock.now() + dt.timedelta(seconds=1), variants=1340)
    with count_queries() as queries:
        body = await gql.post(CREDIT_USAGE, as_="admin@acme.test")

    assert body["data"]["creditUsage"]["used"] == 2748 + 1000
    assert queries.count == 2, queries.statements  # the caller, the figures read again


async def test_my_plan_and_credit_usage_side_by_side_load_the_plan_once(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    both = "query Dashboard { myPlan { __typename } creditUsage { ... on CreditUsage { used limit } } }"

    with count_queries() as queries:
        body = await gql.post(both, as_="admin@acme.test")

    assert body["data"]["myPlan"]["__typename"] == "MyPlan"
    plan_loads = [s for s in queries.statements if 'FROM "plan_subscription"' in s]
    assert len(plan_loads) == 1, plan_loads


async def test_without_an_active_plan_the_answer_is_a_no_active_plan_member_beside_its_siblings(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    acme = await Tenant.get(slug="acme")
    await PlanSubscription.filter(tenant_id=acme.id).update(status=PlanSubscriptionStatus.SUSPENDED)

    body = await gql.post(
        "{ viewer { tenant { slug } } creditUsage { __typename ... on Error { code } } }",
        as_="member@acme.test",
    )

    assert "errors" not in body, body
    assert body["data"] == {
        "viewer": {"tenant": {"slug": "acme"}},
        "creditUsage": {"__typename": "NoActivePlanError", "code": "NO_ACTIVE_PLAN"},
    }
