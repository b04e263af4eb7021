"""``planRecommendation`` over GraphQL: anonymous from a pricing page, signed in with the counts of the
environment's usage report, partial counts, currencies, plan codes and every refusal.

Demo catalog (EUR): storefront-s 1,500 credits 39.00, storefront-m 3,000 79.00, storefront-l 10,000 199.00,
erp-start 1,000 29.90, erp-pro 5,000 69.90; credit packs credits-1000 (25.00, at most 20) and
credits-5000 (99.00, at most 10). acme is in EUR, nova in BRL.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.auth import scopes
from app.auth.api_keys import generate_api_key
from app.clock import FrozenClock
from app.models.tenancy import ApiKey, Tenant
from app.seed import SeedResult
from tests.api.test_usage_reports import SEED_EXAMPLE, report
from tests.conftest import GraphQLClient

MONEY = "{ amount currency }"
COUNT = "{ value fromReport }"
RECOMMEND = f"""
query($counts: PlanSizingCounts, $margin: Int! = 20, $currency: String, $codes: [String!]) {{
  planRecommendation(counts: $counts, marginPercent: $margin, currency: $currency, planCodes: $codes) {{
    __typename
    ... on Error {{ code message field }}
    ... on UnsupportedCurrencyError {{ currency availableCurrencies }}
    ... on PlanRecommendation {{
      countsUsed {{
        variants {COUNT} customers {COUNT} contacts {COUNT} salesReps {COUNT} adminUsers {COUNT}
        reportMeasuredAt
      }}
      creditsNeeded creditsWithMargin marginPercent currency
      plans {{ plan {{ code }} fits headroom headroomPercent monthlyPrice {MONEY} }}
      recommendation {{
        plan {{ code limits {{ credits }} }}
        creditPacks {{ addOn {{ code }} quantity monthlyPrice {MONEY} }}
        credits monthlyPrice {MONEY} coversNeed
      }}
    }}
  }}
}}
"""
ADMIN = "admin@acme.test"


async def recommend(gql: GraphQLClient, *, as_: str | None = None, **variables: Any) -> dict[str, Any]:
    body = await gql.post(RECOMMEND, variables, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["planRecommendation"]
    return result


async def test_anonymous_pricing_page_sizes_the_seed_example(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await recommend(gql, counts=SEED_EXAMPLE)

    assert result["__typename"] == "PlanRecommendation"
    assert (result["creditsNeeded"], result["creditsWithMargin"], result["marginPercent"]) == (2748, 3298, 20)
    assert result["currency"] == "EUR"
    assert {
        name: used["fromReport"] for name, used in result["countsUsed"].items() if name != "reportMeasuredAt"
    } == {
        "variants": False,
        "customers": False,
        "contacts": False,
        "salesReps": False,
        "adminUsers": False,
    }
    plans = {
        fit["plan"]["code"]: (fit["fits"], fit["headroom"], fit["headroomPercent"]) for fit in result["plans"]
    }
    assert plans == {
        "storefront-s": (False, -1798, "-119.9"),
        "storefront-m": (False, -298, "-9.9"),
        "storefront-l": (True, 6702, "67.0"),
        "erp-start": (False, -2298, "-229.8"),
        "erp-pro": (True, 1702, "34.0"),
    }
    assert result["recommendation"] == {
        "plan": {"code": "erp-pro", "limits": {"credits": 5000}},
        "creditPacks": [],
        "credits": 5000,
        "monthlyPrice": {"amount": "69.90", "currency": "EUR"},
        "coversNeed": True,
    }


async def test_a_product_line_and_another_currency(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await recommend(
        gql, counts=SEED_EXAMPLE, currency="brl", codes=["storefront-s", "storefront-m", "storefront-l"]
    )

    assert result["currency"] == "BRL"
    assert [fit["plan"]["code"] for fit in result["plans"]] == [
        "storefront-s",
        "storefront-m",
        "storefront-l",
    ]
    assert result["recommendation"]["plan"]["code"] == "storefront-l"
    assert result["recommendation"]["monthlyPrice"] == {"amount": "999.00", "currency": "BRL"}


async def test_no_plan_is_enough_the_largest_with_the_cheapest_packs(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    result = await recommend(gql, counts={"variants": 21000}, margin=0)

    assert result["recommendation"] == {
        "plan": {"code": "storefront-l", "limits": {"credits": 10000}},
        "creditPacks": [
            {
                "addOn": {"code": "credits-1000"},
                "quantity": 1,
                "monthlyPrice": {"amount": "25.00", "currency": "EUR"},
            },
            {
                "addOn": {"code": "credits-5000"},
                "quantity": 2,
                "monthlyPrice": {"amount": "198.00", "currency": "EUR"},
            },
        ],
        "credits": 21000,
        "monthlyPrice": {"amount": "422.00", "currency": "EUR"},
        "coversNeed": True,
    }
    beyond = await recommend(gql, counts={"variants": 1_000_000_000})
    assert beyond["creditsWithMargin"] == 1_200_000_000
    assert beyond["recommendation"]["coversNeed"] is False


async def test_signed_in_counts_default_to_the_usage_report(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now())

    result = await recommend(gql, as_=ADMIN)

    assert (result["creditsNeeded"], result["creditsWithMargin"], result["currency"]) == (2748, 3298, "EUR")
    used = result["countsUsed"]
    assert used["variants"] == {"value": 340, "fromReport": True}
    assert used["adminUsers"] == {"value": 3, "fromReport": True}
    assert used["reportMeasuredAt"] == "2026-11-23T12:00:00+00:00"


async def test_partial_counts_take_the_rest_from_the_report(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now())

    result = await recommend(gql, as_=ADMIN, counts={"variants": 5000, "salesReps": None}, margin=0)

    used = result["countsUsed"]
    assert used["variants"] == {"value": 5000, "fromReport": False}
    assert used["salesReps"] == {"value": 5, "fromReport": True}
    assert used["customers"] == {"value": 1200, "fromReport": True}
    assert result["creditsNeeded"] == 5000 + 1200 + 1200 + 5 + 3


async def test_signed_in_without_a_report_counts_zero_in_the_tenant_currency(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    result = await recommend(gql, as_="admin@nova.test")

    assert result["creditsNeeded"] == 0
    assert result["currency"] == "BRL"
    assert result["countsUsed"]["variants"] == {"value": 0, "fromReport": False}
    assert result["countsUsed"]["reportMeasuredAt"] is None
    assert result["recommendation"]["plan"]["code"] == "erp-start"
    assert result["recommendation"]["monthlyPrice"] == {"amount": "149.90", "currency": "BRL"}


async def test_bad_credentials_are_answered_as_anonymous(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(RECOMMEND, {"counts": SEED_EXAMPLE}, key="not-a-key")

    assert body["data"]["planRecommendation"]["creditsNeeded"] == 2748


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({}, "counts"),  # anonymous without counts
        ({"counts": {"variants": -1}}, "counts.variants"),
        ({"counts": {"adminUsers": 1_000_000_001}}, "counts.adminUsers"),
        ({"counts": SEED_EXAMPLE, "margin": -1}, "marginPercent"),
        ({"counts": SEED_EXAMPLE, "margin": 1001}, "marginPercent"),
        ({"counts": SEED_EXAMPLE, "codes": ["storefront-m", "nope", "x" * 10_000]}, "planCodes"),
        ({"counts": SEED_EXAMPLE, "codes": []}, "planCodes"),
        ({"counts": SEED_EXAMPLE, "codes": ["erp-pro"] * 51}, "planCodes"),
    ],
)
async def test_invalid_input(
    gql: GraphQLClient, demo: SeedResult, variables: dict[str, Any], field: str
) -> None:
    result = await recommend(gql, **variables)

    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidInputError",
        "INVALID_INPUT",
        field,
    )
    assert len(result["message"]) < 300


async def test_unknown_plan_codes_are_named(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await recommend(gql, counts=SEED_EXAMPLE, codes=["storefront-m", "nope", "zzz"])

    assert "'nope'" in result["message"]
    assert "'zzz'" in result["message"]
    assert "storefront-m" not in result["message"]


@pytest.mark.parametrize("currency", ["USD", "XXX", "\x00" * 500, ""])
async def test_a_currency_the_plans_are_not_sold_in(
    gql: GraphQLClient, demo: SeedResult, currency: str
) -> None:
    result = await recommend(gql, counts=SEED_EXAMPLE, currency=currency)

    assert (result["__typename"], result["code"], result["field"]) == (
        "UnsupportedCurrencyError",
        "UNSUPPORTED_CURRENCY",
        "currency",
    )
    assert result["availableCurrencies"] == ["BRL", "EUR"]
    assert len(result["currency"]) <= 8


async def test_api_keys_use_the_report_only_when_they_may_read_usage(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now())
    # The connector's key (usage:report) may read creditUsage: the report's counts are used.
    with_report = await gql.post(RECOMMEND, {}, key=demo.connector_keys["acme"])
    assert with_report["data"]["planRecommendation"]["creditsNeeded"] == 2748
    # A catalog:read key may not: it is sized as an anonymous caller, who must send counts.
    key = generate_api_key()
    await ApiKey.create(
        tenant=await Tenant.get(slug="acme"),
        name="pricing page",
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=[scopes.CATALOG_READ],
    )
    anonymous = await gql.post(RECOMMEND, {}, key=key.plaintext)
    assert anonymous["data"]["planRecommendation"]["field"] == "counts"
