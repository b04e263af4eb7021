"""The public catalog: plans and add-ons, prices per currency, typed errors, constant SQL queries."""

from __future__ import annotations

from app.models.catalog import AddOn
from app.models.enums import AddOnCategory
from app.seed import SeedResult
from tests.conftest import GraphQLClient, count_queries

PLANS = "{ plans { code name price { amount currency } limits { storageMb users integrations credits } storagePolicy overagePricePerGb { amount currency } } }"  # noqa: E501

ADD_ONS = """
query AddOns($category: AddOnCategory, $currency: String) {
  addOns(category: $category) {
    code name category cadence isFree requiresConfiguration
    price(currency: $currency) { amount currency }
    increments { storageMb users integrations credits }
    conditions { eligiblePlans maxQuantity requires requiresConfiguration summary }
    configurationFields { name kind secret required }
  }
}
"""


async def test_plans_are_public_and_priced_in_the_default_currency(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await gql.post(PLANS)

    plans = {plan["code"]: plan for plan in body["data"]["plans"]}
    assert plans["storefront-m"]["price"] == {"amount": "79.00", "currency": "EUR"}
    assert plans["storefront-m"]["limits"] == {
        "storageMb": 10240,
        "users": 5,
        "integrations": 2,
        "credits": 3000,
    }
    # Seed 002: every plan includes 10 GB; overage costs 2.30 EUR per extra GB.
    assert {plan["limits"]["storageMb"] for plan in plans.values()} == {10240}
    assert plans["storefront-m"]["overagePricePerGb"] == {"amount": "2.30", "currency": "EUR"}
    assert plans["erp-pro"]["storagePolicy"] == "HARD_CAP"
    assert plans["erp-pro"]["overagePricePerGb"] is None


async def test_prices_follow_the_callers_tenant_currency(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(PLANS, as_="admin@nova.test")
    plans = {plan["code"]: plan for plan in body["data"]["plans"]}
    assert plans["erp-pro"]["price"] == {"amount": "349.90", "currency": "BRL"}


async def test_store_covers_every_category_of_the_seeds(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(ADD_ONS)

    add_ons = body["data"]["addOns"]
    assert {add_on["category"] for add_on in add_ons} == {category.value for category in AddOnCategory}
    by_code = {add_on["code"]: add_on for add_on in add_ons}
    assert by_code["report-sales-dashboard"]["isFree"] is True
    assert by_code["report-sales-dashboard"]["price"] == {"amount": "0.00", "currency": "EUR"}
    assert by_code["start-pack"]["cadence"] == "ONE_OFF"
    assert by_code["credits-1000"]["increments"]["credits"] == 1000
    mercado_livre = by_code["integration-mercado-livre"]
    assert mercado_livre["requiresConfiguration"] is True
    assert {field["name"]: field["secret"] for field in mercado_livre["configurationFields"]} == {
        "api_token": True,
        "shop_url": False,
    }
    make_to_order = by_code["make-to-order"]["conditions"]
    assert make_to_order["eligiblePlans"] == ["erp-pro"]
    assert make_to_order["requires"] == ["fiscal-bookkeeping"]
    assert make_to_order["summary"] == "Plans erp-pro only; at most 1; requires fiscal-bookkeeping."


async def test_add_ons_filter_by_category_and_explicit_currency(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(ADD_ONS, {"category": "CREDITS", "currency": "BRL"})

    assert [(a["code"], a["price"]) for a in body["data"]["addOns"]] == [
        ("credits-1000", {"amount": "125.00", "currency": "BRL"}),
        ("credits-5000", {"amount": "495.00", "currency": "BRL"}),
    ]


async def test_unknown_category_is_a_validation_error(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(ADD_ONS, {"category": "WIDGETS"})

    assert body["data"] is None
    assert "WIDGETS" in body["errors"][0]["message"]


async def test_unsupported_currency_is_a_typed_error(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(ADD_ONS, {"category": "CREDITS", "currency": "XYZ"})

    assert body["data"] is None
    assert {error["extensions"]["code"] for error in body["errors"]} == {"UNSUPPORTED_CURRENCY"}


async def test_add_on_by_code(gql: GraphQLClient, demo: SeedResult) -> None:
    query = "query One($code: String!) { addOn(code: $code) { code name cadence } }"

    found = await gql.post(query, {"code": "start-pack"})
    missing = await gql.post(query, {"code": "no-such-add-on"})

    assert found == {"data": {"addOn": {"code": "start-pack", "name": "Start Pack", "cadence": "ONE_OFF"}}}
    assert missing["data"] == {"addOn": None}
    assert missing["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "code"}


async def test_add_ons_use_a_constant_number_of_queries(gql: GraphQLClient, demo: SeedResult) -> None:
    with count_queries() as before:
        await gql.post(ADD_ONS)
    for index in range(50):
        await AddOn.create(
            code=f"extra-{index}",
            name=f"Extra {index}",
            category=AddOnCategory.REPORTS,
            prices={"EUR": "1.00"},
        )
    with count_queries() as after:
        body = await gql.post(ADD_ONS)

    assert len(body["data"]["addOns"]) >= 65
    assert after.count == before.count == 1
