"""The public catalog: plans and add-ons, prices per currency, null answers, global ids, constant queries."""

from __future__ import annotations

import pytest

from app.models.catalog import AddOn
from app.models.enums import AddOnCategory
from app.resolvers import ids
from app.seed import SeedResult
from app.services.errors import NotFound
from tests.conftest import GraphQLClient, count_queries

GIB = 1024**3

PLANS = "{ plans { code name price { amount currency } limits { storageBytes users integrations credits } storagePolicy overagePricePerGb { amount currency } } }"  # noqa: E501

ADD_ONS = """
query AddOns($category: AddOnCategory, $currency: String) {
  addOns(category: $category) {
    code name category cadence isFree requiresConfiguration
    price(currency: $currency) { amount currency }
    increments { storageBytes users integrations credits }
    conditions { eligiblePlanCodes maxQuantity requiredAddOnCodes requiresConfiguration summary }
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
        "storageBytes": 10 * GIB,
        "users": 5,
        "integrations": 2,
        "credits": 3000,
    }
    # Seed 002: every plan includes 10 GB (in bytes); overage costs 2.30 EUR per extra GB.
    assert {plan["limits"]["storageBytes"] for plan in plans.values()} == {10 * GIB}
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
    assert make_to_order["eligiblePlanCodes"] == ["erp-pro"]
    assert make_to_order["requiredAddOnCodes"] == ["fiscal-bookkeeping"]
    summary = "Plans ERP Pro only; at most 1; requires Fiscal bookkeeping (SPED Fiscal)."
    assert make_to_order["summary"] == summary


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


async def test_a_currency_an_item_is_not_sold_in_is_a_null_price_not_an_error(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    query = """
    {
      plans { code price(currency: "XYZ") { amount } overagePricePerGb(currency: "xyz") { amount } }
      addOns { code price(currency: "XYZ") { amount } prices { currency } }
    }
    """
    body = await gql.post(query)

    assert "errors" not in body
    plans, add_ons = body["data"]["plans"], body["data"]["addOns"]
    assert len(plans) == 5  # the siblings keep their data
    assert len(add_ons) > 10
    assert {plan["price"] is None and plan["overagePricePerGb"] is None for plan in plans} == {True}
    assert {add_on["price"] is None for add_on in add_ons} == {True}
    # What it is sold in is listed beside it.
    assert {money["currency"] for add_on in add_ons for money in add_on["prices"]} == {"EUR", "BRL"}


async def test_an_explicit_currency_not_sold_nulls_only_the_prices(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await gql.post(ADD_ONS, {"category": "CREDITS", "currency": "XYZ"})

    assert "errors" not in body
    assert [(a["code"], a["price"]) for a in body["data"]["addOns"]] == [
        ("credits-1000", None),
        ("credits-5000", None),
    ]


async def test_storage_is_in_bytes(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(ADD_ONS, {"category": "STORAGE"})

    increments = {a["code"]: a["increments"]["storageBytes"] for a in body["data"]["addOns"]}
    assert increments == {"storage-500mb": 500 * 1024**2, "storage-10gb": 10 * GIB}


async def test_configuration_fields_have_a_kind(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(ADD_ONS, {"category": "INTEGRATIONS"})

    by_code = {add_on["code"]: add_on for add_on in body["data"]["addOns"]}
    fields = by_code["integration-mercado-livre"]["configurationFields"]
    assert {field["name"]: field["kind"] for field in fields} == {"api_token": "SECRET", "shop_url": "URL"}


async def test_add_on_by_code(gql: GraphQLClient, demo: SeedResult) -> None:
    query = "query One($code: String!) { addOn(code: $code) { code name cadence } }"

    found = await gql.post(query, {"code": "start-pack"})

    assert found == {"data": {"addOn": {"code": "start-pack", "name": "Start Pack", "cadence": "ONE_OFF"}}}


@pytest.mark.parametrize("code", ["nope", "", " start-pack ", "x" * 1000, "start\x00pack"])
async def test_an_unknown_or_implausible_code_is_null_without_error(
    gql: GraphQLClient, demo: SeedResult, code: str
) -> None:
    body = await gql.post(
        "query One($code: String!) { addOn(code: $code) { code } plans { code } }", {"code": code}
    )

    assert "errors" not in body
    assert body["data"]["addOn"] is None
    assert body["data"]["plans"]


async def test_catalog_ids_are_global_stable_and_distinct_per_type(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    query = "{ plans { id code } addOns { id code } }"
    first = await gql.post(query)
    again = await gql.post(query, as_="admin@nova.test")

    assert again == first
    plan_ids = {plan["id"] for plan in first["data"]["plans"]}
    add_on_ids = {add_on["id"] for add_on in first["data"]["addOns"]}
    assert len(plan_ids) == len(first["data"]["plans"])
    assert len(add_on_ids) == len(first["data"]["addOns"])
    # Plans and add-ons are both numbered from 1 in the database: only the type keeps their ids apart.
    assert plan_ids.isdisjoint(add_on_ids)
    stored = {str(key) for key in await AddOn.all().values_list("id", flat=True)}
    assert add_on_ids.isdisjoint(stored)  # opaque: not the stored number


async def test_an_id_names_its_type(gql: GraphQLClient, demo: SeedResult) -> None:
    add_on_id = (await gql.post('{ addOn(code: "start-pack") { id } }'))["data"]["addOn"]["id"]

    assert ids.key_of(add_on_id, "AddOn", field="id") == str((await AddOn.get(code="start-pack")).id)
    with pytest.raises(NotFound):
        ids.key_of(add_on_id, "Plan", field="id")


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
    # The add-ons, then (for the conditions' summaries) the names of the plans and add-ons they name, once.
    assert after.count == before.count == 3
