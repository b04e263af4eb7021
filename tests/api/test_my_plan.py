"""My plan: admins of eligible environments, effective limits, stable global ids, isolation, constant SQL
queries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.clock import FrozenClock
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn
from app.models.enums import AddOnStatus, PlanSubscriptionStatus
from app.models.tenancy import Tenant
from app.resolvers import ids
from app.seed import SeedResult
from app.services.errors import NotFound
from app.settings import Settings
from tests.conftest import GraphQLClient, count_queries

GIB = 1024**3

MY_PLAN = """
{
  myPlan {
    __typename
    ... on Error { code message }
    ... on MyPlan {
      id
      plan { id code price { amount currency } limits { storageBytes users integrations credits } }
      effectiveLimits { storageBytes users integrations credits }
      features
      currentPeriod { name start end }
      monthlyTotal { amount currency }
      activeAddOns {
        id name quantity cadence status endsAt availableUntil configurationStatus contractedAt
        unitPrice { amount currency } monthlyPrice { amount currency }
        addOn { id code category }
      }
    }
  }
}
"""


async def test_admin_sees_plan_add_ons_and_effective_limits(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(MY_PLAN, as_="admin@acme.test")

    my_plan = body["data"]["myPlan"]
    assert my_plan["__typename"] == "MyPlan"
    assert my_plan["plan"]["code"] == "storefront-m"
    assert [add_on["addOn"]["code"] for add_on in my_plan["activeAddOns"]] == [
        "storage-10gb",
        "report-sales-dashboard",
        "credits-1000",
    ]
    # 10 GB included + one 10 GB pack, in bytes; 3,000 plan credits + a 1,000 pack.
    assert my_plan["effectiveLimits"] == {
        "storageBytes": 20 * GIB,
        "users": 5,
        "integrations": 2,
        "credits": 4000,
    }
    assert "report:sales-dashboard" in my_plan["features"]
    # Anchor day 1: the period of 2026-11-23 is November.
    assert my_plan["currentPeriod"] == {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"}
    # 79.00 plan + 19.00 storage + 0.00 free report + 25.00 credits.
    assert my_plan["monthlyTotal"] == {"amount": "123.00", "currency": "EUR"}
    free = my_plan["activeAddOns"][1]
    assert (free["monthlyPrice"], free["status"]) == ({"amount": "0.00", "currency": "EUR"}, "ACTIVE")


async def test_effective_limits_sum_increments_times_quantity(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    nova = await Tenant.get(slug="nova")
    users_1 = await AddOn.get(code="users-1")
    await AddOnSubscription.create(
        tenant=nova, add_on=users_1, quantity=3, unit_price=Decimal("24.90"), currency="BRL",
        contracted_at=clock.now() - dt.timedelta(days=1),
    )  # fmt: skip

    body = await gql.post(MY_PLAN, as_="admin@nova.test")

    limits = body["data"]["myPlan"]["effectiveLimits"]
    # erp-pro: 10 users + users-5 pack + 3 x users-1; 3 integrations + Mercado Livre.
    assert limits == {"storageBytes": 10 * GIB, "users": 18, "integrations": 4, "credits": 5000}
    extra_tax_id = next(
        a for a in body["data"]["myPlan"]["activeAddOns"] if a["addOn"]["code"] == "extra-tax-id"
    )
    assert extra_tax_id["quantity"] == 2
    assert extra_tax_id["monthlyPrice"] == {"amount": "99.80", "currency": "BRL"}
    assert body["data"]["myPlan"]["currentPeriod"]["name"] == "2026-11"  # anchor day 10


async def test_an_ended_add_on_stops_counting_on_its_end_date(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    ends_at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    await AddOnSubscription.filter(add_on__code="credits-1000").update(
        status=AddOnStatus.CANCELLING, cancelled_at=clock.now(), ends_at=ends_at
    )

    before = (await gql.post(MY_PLAN, as_="admin@acme.test"))["data"]["myPlan"]
    clock.set(ends_at)
    after = (await gql.post(MY_PLAN, as_="admin@acme.test"))["data"]["myPlan"]

    canceling = next(a for a in before["activeAddOns"] if a["addOn"]["code"] == "credits-1000")
    assert (canceling["status"], canceling["availableUntil"]) == ("CANCELLING", "2026-11-30")
    assert before["effectiveLimits"]["credits"] == 4000
    assert after["effectiveLimits"]["credits"] == 3000
    assert "credits-1000" not in [a["addOn"]["code"] for a in after["activeAddOns"]]


async def test_member_gets_not_admin_and_the_sibling_viewer_keeps_its_data(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await gql.post(
        "{ viewer { role } myPlan { __typename ... on Error { code } } }", as_="member@acme.test"
    )

    assert "errors" not in body
    assert body["data"] == {
        "viewer": {"role": "MEMBER"},
        "myPlan": {"__typename": "NotAdminError", "code": "NOT_ADMIN"},
    }


async def test_api_key_without_tenant_read_is_forbidden(gql: GraphQLClient, demo: SeedResult) -> None:
    # Issue 11: myPlan is tenant data, which the connector's scopes do not open (test_access_matrix.py).
    body = await gql.post(MY_PLAN, key=demo.connector_keys["acme"])
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_environment_created_before_2022_is_not_eligible(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(MY_PLAN, as_="admin@legacy.test")

    my_plan = body["data"]["myPlan"]
    assert my_plan["__typename"] == "NotEligibleError"
    assert my_plan["code"] == "NOT_ELIGIBLE"
    assert "2022-01-01" in my_plan["message"]


@pytest.mark.parametrize(
    ("eligible_since", "typename"), [("2021-01-01", "MyPlan"), ("2023-06-01", "NotEligibleError")]
)
async def test_eligibility_date_is_a_setting(
    gql: GraphQLClient, demo: SeedResult, settings: Settings, eligible_since: str, typename: str
) -> None:
    settings.store_eligible_since = dt.date.fromisoformat(eligible_since)

    legacy = await gql.post(MY_PLAN, as_="admin@legacy.test")
    acme = await gql.post(MY_PLAN, as_="admin@acme.test")  # created 2023-03-14

    assert legacy["data"]["myPlan"]["__typename"] == typename
    assert acme["data"]["myPlan"]["__typename"] == typename


async def test_no_active_plan_is_a_typed_error(gql: GraphQLClient, demo: SeedResult) -> None:
    await PlanSubscription.filter(tenant__slug="acme").update(status=PlanSubscriptionStatus.SUSPENDED)
    body = await gql.post(MY_PLAN, as_="admin@acme.test")
    assert body["data"]["myPlan"]["code"] == "NO_ACTIVE_PLAN"


async def test_unauthenticated_my_plan_is_null_beside_the_public_catalog(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await gql.post("{ plans { code } myPlan { __typename } }")

    assert body["data"]["myPlan"] is None
    assert len(body["data"]["plans"]) == 5
    assert [(error["path"], error["extensions"]["code"]) for error in body["errors"]] == [
        (["myPlan"], "UNAUTHENTICATED")
    ]


async def test_each_tenant_sees_only_its_own_subscription(gql: GraphQLClient, demo: SeedResult) -> None:
    acme = (await gql.post(MY_PLAN, as_="admin@acme.test"))["data"]["myPlan"]
    nova = (await gql.post(MY_PLAN, as_="admin@nova.test"))["data"]["myPlan"]

    acme_ids = {a["id"] for a in acme["activeAddOns"]}
    nova_ids = {a["id"] for a in nova["activeAddOns"]}
    assert acme_ids.isdisjoint(nova_ids)
    # An active add-on's id is read back as one by the fields that take it (cancelAddOn...).
    assert {ids.key_of(value, "ActiveAddOn", field="activeAddOnId") for value in acme_ids} == {
        str(i) for i in await AddOnSubscription.filter(tenant__slug="acme").values_list("id", flat=True)
    }
    assert {a["unitPrice"]["currency"] for a in nova["activeAddOns"]} == {"BRL"}


async def test_my_plan_id_is_the_environments_across_requests_and_changes(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    first = (await gql.post(MY_PLAN, as_="admin@acme.test"))["data"]["myPlan"]
    await AddOnSubscription.create(
        tenant=await Tenant.get(slug="acme"), add_on=await AddOn.get(code="users-1"), quantity=1,
        unit_price=Decimal("4.90"), currency="EUR", contracted_at=clock.now() - dt.timedelta(minutes=1),
    )  # fmt: skip
    clock.advance(dt.timedelta(days=8))  # another billing period (December), the plan cache expired
    later = (await gql.post(MY_PLAN, as_="admin@acme.test"))["data"]["myPlan"]
    nova = (await gql.post(MY_PLAN, as_="admin@nova.test"))["data"]["myPlan"]

    assert len(later["activeAddOns"]) == len(first["activeAddOns"]) + 1
    assert later["id"] == first["id"]
    assert nova["id"] != first["id"]
    assert nova["plan"]["id"] != first["plan"]["id"]


async def test_ids_of_different_types_never_coincide(gql: GraphQLClient, demo: SeedResult) -> None:
    # Add-ons, subscriptions, plans, tenants and users are all numbered from 1 in the database.
    query = "{ viewer { id tenant { id } user { id } } myPlan { ... on MyPlan { id plan { id } activeAddOns { id addOn { id } } } } }"  # noqa: E501
    ids_by_type: dict[str, set[str]] = {}
    for admin in ("admin@acme.test", "admin@nova.test"):
        data = (await gql.post(query, as_=admin))["data"]
        my_plan = data["myPlan"]
        found = {
            "Viewer": [data["viewer"]["id"]],
            "Tenant": [data["viewer"]["tenant"]["id"]],
            "UserAccount": [data["viewer"]["user"]["id"]],
            "MyPlan": [my_plan["id"]],
            "Plan": [my_plan["plan"]["id"]],
            "ActiveAddOn": [a["id"] for a in my_plan["activeAddOns"]],
            "AddOn": [a["addOn"]["id"] for a in my_plan["activeAddOns"]],
        }
        for type_name, values in found.items():
            ids_by_type.setdefault(type_name, set()).update(values)

    assert ids.key_of(next(iter(ids_by_type["ActiveAddOn"])), "ActiveAddOn", field="activeAddOnId")
    every = [value for values in ids_by_type.values() for value in values]
    assert len(set(every)) == len(every), "an id is shared by objects of different types"
    with pytest.raises(NotFound):  # a catalog add-on's id is no active add-on's
        ids.key_of(next(iter(ids_by_type["AddOn"])), "ActiveAddOn", field="activeAddOnId")


async def test_my_plan_uses_a_constant_number_of_queries(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    # Each tenant's first read (the plan cache is cold for both): acme as seeded, nova with 30 more add-ons.
    await gql.token_for("admin@acme.test")  # minted outside the counted requests
    await gql.token_for("admin@nova.test")
    with count_queries() as before:
        acme = await gql.post(MY_PLAN, as_="admin@acme.test")
    nova = await Tenant.get(slug="nova")
    packs = await AddOn.filter(code__in=["users-1", "storage-500mb", "report-abc-curve"])
    for index in range(30):
        await AddOnSubscription.create(
            tenant=nova, add_on=packs[index % 3], quantity=1, unit_price=Decimal("1.00"), currency="BRL",
            contracted_at=clock.now() - dt.timedelta(hours=index + 1),
        )  # fmt: skip
    with count_queries() as after:
        body = await gql.post(MY_PLAN, as_="admin@nova.test")

    assert (
        len(body["data"]["myPlan"]["activeAddOns"]) == len(acme["data"]["myPlan"]["activeAddOns"]) + 30
    )  # 3 each as seeded
    assert after.count == before.count
    assert after.count <= 3  # the caller, the plan subscription, the add-ons
