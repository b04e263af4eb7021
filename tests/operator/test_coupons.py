"""Coupons over /operator/graphql: creation with every rule checked (and retried safely), the list with its
redemptions, deactivation; and their effect proved on /graphql: applied, checked out, refused once
deactivated, capped under 50 concurrent checkouts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import pytest

from app.auth.operator import COUPONS_WRITE, OPS_READ, TENANTS_WRITE
from app.clock import FrozenClock
from app.models.coupons import Coupon
from app.models.operators import OperatorAuditEntry
from app.models.store import Cart, CouponRedemption, Order
from app.seed import SeedResult
from tests.api.test_checkout import checkout
from tests.api.test_store import add, apply
from tests.conftest import GraphQLClient, on_postgres
from tests.operator.conftest import OperatorClient
from tests.operator.test_operations import make_environments

COUPON_FIELDS = """
  id code description kind percentOff amountsOff { amount currency } duration durationPeriods
  validFrom validUntil maxRedemptions timesRedeemed remainingRedemptions appliesToAddOnCodes
  appliesToCategories isActive
"""
CREATE = f"""
mutation($input: CreateCouponInput!) {{ createCoupon(input: $input) {{
  __typename ... on Error {{ code message field }}
  ... on CreateCouponSuccess {{ replayed coupon {{ {COUPON_FIELDS} }} }}
}} }}
"""
COUPONS = f"""
query($first: Int, $after: String, $active: Boolean, $redemptions: Int! = 10) {{
  coupons(first: $first, after: $after, active: $active) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    nodes {{ {COUPON_FIELDS}
      redemptions(first: $redemptions) {{
        environment {{ slug name }} orderId redeemedAt discount {{ amount currency }}
      }}
    }}
  }}
}}
"""
ONE = f"""
query($code: String!) {{ coupon(code: $code) {{
  __typename ... on Error {{ errorCode: code field }} ... on Coupon {{ {COUPON_FIELDS} }}
}} }}
"""
DEACTIVATE = f"""
mutation($code: String!) {{ deactivateCoupon(code: $code) {{
  __typename ... on Error {{ code field }}
  ... on DeactivateCouponSuccess {{ wasActive coupon {{ {COUPON_FIELDS} }} }}
}} }}
"""
SPRING = {
    "code": "spring-26",
    "description": "Primavera: 20% por 3 meses",
    "kind": "PERCENT",
    "percentOff": "20",
    "duration": "REPEATING",
    "durationPeriods": 3,
    "validUntil": "2027-03-01T00:00:00+00:00",
    "maxRedemptions": 100,
    "appliesToCategories": ["USERS"],
}


async def create(operator: OperatorClient, **fields: Any) -> dict[str, Any]:
    body = await operator.post(CREATE, {"input": fields}, scopes=(COUPONS_WRITE,))
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createCoupon"]
    return result


async def test_a_created_coupon_is_stored_upper_case_with_its_terms_and_audited(
    operator: OperatorClient, demo: SeedResult
) -> None:
    result = await create(operator, **SPRING)
    assert result["__typename"] == "CreateCouponSuccess"
    assert result["replayed"] is False
    coupon = result["coupon"]
    assert {k: v for k, v in coupon.items() if k != "id"} == {
        "code": "SPRING-26",
        "description": "Primavera: 20% por 3 meses",
        "kind": "PERCENT",
        "percentOff": "20.00",
        "amountsOff": [],
        "duration": "REPEATING",
        "durationPeriods": 3,
        "validFrom": None,
        "validUntil": "2027-03-01T00:00:00+00:00",
        "maxRedemptions": 100,
        "timesRedeemed": 0,
        "remainingRedemptions": 100,
        "appliesToAddOnCodes": [],
        "appliesToCategories": ["USERS"],
        "isActive": True,
    }
    stored = await Coupon.get(code="SPRING-26")
    assert (stored.duration_months, stored.applies_to_categories) == (3, ["USERS"])
    [entry] = await OperatorAuditEntry.filter(action="coupon.create").select_related("operator_key")
    assert entry.subject_id == "SPRING-26"
    assert entry.operator_key.prefix == (await operator.key(COUPONS_WRITE)).split("_")[1]
    assert entry.details["percent_off"] == "20.00"
    assert entry.details["duration_months"] == 3


async def test_a_fixed_coupon_has_one_amount_per_currency(operator: OperatorClient, demo: SeedResult) -> None:
    result = await create(
        operator,
        code="FIX_10",
        kind="FIXED",
        duration="ONCE",
        amountsOff=[{"currency": "EUR", "amount": "10"}, {"currency": "BRL", "amount": "49.9"}],
        appliesToAddOnCodes=["users-1", "users-1", "start-pack"],
    )
    coupon = result["coupon"]
    assert coupon["amountsOff"] == [
        {"amount": "49.90", "currency": "BRL"},
        {"amount": "10.00", "currency": "EUR"},
    ]
    assert coupon["appliesToAddOnCodes"] == ["users-1", "start-pack"]
    assert (await Coupon.get(code="FIX_10")).amounts_off == {"EUR": "10.00", "BRL": "49.90"}


async def test_a_retry_with_the_same_terms_returns_the_coupon_and_other_terms_are_refused(
    operator: OperatorClient, demo: SeedResult
) -> None:
    first = await create(operator, **SPRING)
    again = await create(operator, **{**SPRING, "code": " Spring-26", "percentOff": "20.00"})
    assert again["replayed"] is True
    assert again["coupon"] == first["coupon"]
    other = await create(operator, **{**SPRING, "percentOff": "25"})
    assert (other["__typename"], other["code"], other["field"]) == (
        "CouponCodeTakenError",
        "COUPON_CODE_TAKEN",
        "input.code",
    )
    assert await Coupon.filter(code="SPRING-26").count() == 1
    assert await OperatorAuditEntry.filter(action="coupon.create").count() == 1


async def test_concurrent_creates_of_one_coupon_make_one(operator: OperatorClient, demo: SeedResult) -> None:
    await operator.key(COUPONS_WRITE)
    results = await asyncio.gather(*(create(operator, **SPRING) for _ in range(8)))
    assert Counter(result["replayed"] for result in results) == {False: 1, True: 7}
    assert await Coupon.filter(code="SPRING-26").count() == 1
    assert await OperatorAuditEntry.filter(action="coupon.create").count() == 1


LONGEST = "A" * 64
INVALID = [
    pytest.param({"code": "A"}, "input.code", id="code-too-short"),
    pytest.param({"code": LONGEST + "B"}, "input.code", id="code-too-long"),
    pytest.param({"code": "ÇUPOM"}, "input.code", id="code-unicode"),
    pytest.param({"code": "АБВГ"}, "input.code", id="code-cyrillic-look-alike"),
    pytest.param({"code": "TWO WORDS"}, "input.code", id="code-space"),
    pytest.param({"code": "NUL\x00"}, "input.code", id="code-nul"),
    pytest.param({"description": "x" * 301}, "input.description", id="description-too-long"),
    pytest.param({"description": "line\nbreak"}, "input.description", id="description-control"),
    pytest.param({"description": "nul\x00"}, "input.description", id="description-nul"),
    pytest.param({"description": "evil\u202etxt.exe"}, "input.description", id="description-bidi"),
    pytest.param({"percentOff": None}, "input.percentOff", id="percent-missing"),
    pytest.param({"percentOff": "0"}, "input.percentOff", id="percent-zero"),
    pytest.param({"percentOff": "-5"}, "input.percentOff", id="percent-negative"),
    pytest.param({"percentOff": "100.01"}, "input.percentOff", id="percent-above-100"),
    pytest.param({"percentOff": "10.005"}, "input.percentOff", id="percent-three-decimals"),
    pytest.param({"percentOff": "NaN"}, "input.percentOff", id="percent-nan"),
    pytest.param({"percentOff": "Infinity"}, "input.percentOff", id="percent-infinity"),
    pytest.param(
        {"amountsOff": [{"currency": "EUR", "amount": "5"}]}, "input.amountsOff", id="percent-with-amounts"
    ),
    pytest.param({"kind": "FIXED", "percentOff": None}, "input.amountsOff", id="fixed-without-amounts"),
    pytest.param(
        {"kind": "FIXED", "amountsOff": [{"currency": "EUR", "amount": "5"}]},
        "input.percentOff",
        id="fixed-with-percent",
    ),
    pytest.param(
        {"kind": "FIXED", "percentOff": None, "amountsOff": [{"currency": "USD", "amount": "5"}]},
        "input.amountsOff[0].currency",
        id="fixed-unknown-currency",
    ),
    pytest.param(
        {
            "kind": "FIXED",
            "percentOff": None,
            "amountsOff": [{"currency": "EUR", "amount": "5"}, {"currency": "EUR", "amount": "6"}],
        },
        "input.amountsOff[1].currency",
        id="fixed-currency-twice",
    ),
    pytest.param(
        {"kind": "FIXED", "percentOff": None, "amountsOff": [{"currency": "EUR", "amount": "0"}]},
        "input.amountsOff[0].amount",
        id="fixed-zero",
    ),
    pytest.param(
        {"kind": "FIXED", "percentOff": None, "amountsOff": [{"currency": "BRL", "amount": "1.001"}]},
        "input.amountsOff[0].amount",
        id="fixed-three-decimals",
    ),
    pytest.param(
        {"kind": "FIXED", "percentOff": None, "amountsOff": [{"currency": "BRL", "amount": "1e12"}]},
        "input.amountsOff[0].amount",
        id="fixed-huge",
    ),
    pytest.param({"durationPeriods": None}, "input.durationPeriods", id="repeating-without-periods"),
    pytest.param({"durationPeriods": 0}, "input.durationPeriods", id="repeating-zero-periods"),
    pytest.param({"durationPeriods": 121}, "input.durationPeriods", id="repeating-too-many-periods"),
    pytest.param({"duration": "FOREVER"}, "input.durationPeriods", id="forever-with-periods"),
    pytest.param({"duration": "ONCE"}, "input.durationPeriods", id="once-with-periods"),
    pytest.param({"validFrom": "2027-03-01T00:00:00Z"}, "input.validUntil", id="until-equals-from"),
    pytest.param({"validFrom": "2027-04-01T00:00:00Z"}, "input.validUntil", id="until-before-from"),
    pytest.param({"validUntil": "2026-11-23T12:00:00Z"}, "input.validUntil", id="until-already-past"),
    pytest.param({"maxRedemptions": 0}, "input.maxRedemptions", id="cap-zero"),
    pytest.param({"maxRedemptions": -1}, "input.maxRedemptions", id="cap-negative"),
    pytest.param(
        {"appliesToAddOnCodes": ["users-1", "no-such-add-on"]},
        "input.appliesToAddOnCodes",
        id="unknown-add-on",
    ),
    pytest.param({"appliesToAddOnCodes": ["x" * 10_000]}, "input.appliesToAddOnCodes", id="huge-add-on-code"),
    pytest.param({"appliesToAddOnCodes": ["\x00"]}, "input.appliesToAddOnCodes", id="nul-add-on-code"),
    pytest.param(
        {"appliesToAddOnCodes": [f"code-{n}" for n in range(5000)]},
        "input.appliesToAddOnCodes",
        id="too-many-add-on-codes",
    ),
]


@pytest.mark.parametrize(("change", "field"), INVALID)
async def test_every_inconsistent_input_is_a_typed_error_naming_its_field_and_writes_nothing(
    operator: OperatorClient, demo: SeedResult, change: dict[str, Any], field: str
) -> None:
    before = await Coupon.all().count()
    result = await create(operator, **{**SPRING, **change})
    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidInputError",
        "INVALID_INPUT",
        field,
    )
    assert len(result["message"]) < 300
    assert "\x00" not in result["message"]
    assert "x" * 100 not in result["message"]
    assert await Coupon.all().count() == before
    assert not await OperatorAuditEntry.exists()


async def test_hostile_but_valid_values_are_kept_as_given(operator: OperatorClient, demo: SeedResult) -> None:
    description = ("Cupom de boas-vindas 🎉 — «ação» 割引 '; DROP TABLE coupon; -- <script>" + "x" * 300)[
        :300
    ]
    result = await create(operator, **{**SPRING, "code": LONGEST.lower(), "description": description})
    assert result["coupon"]["code"] == LONGEST
    assert result["coupon"]["description"] == description


async def test_the_list_pages_by_code_and_filters_active_ones(
    operator: OperatorClient, demo: SeedResult
) -> None:
    body = await operator.post(COUPONS, {"first": 3}, scopes=(OPS_READ,))
    page = body["data"]["coupons"]
    # The demo's EXPIRED, FIXED5, ONEUSE, WELCOME10.
    assert page["totalCount"] == 4
    assert page["pageInfo"]["hasNextPage"] is True
    assert [node["code"] for node in page["nodes"]] == ["EXPIRED", "FIXED5", "ONEUSE"]
    rest = await operator.post(
        COUPONS, {"first": 3, "after": page["pageInfo"]["endCursor"]}, scopes=(OPS_READ,)
    )
    assert [node["code"] for node in rest["data"]["coupons"]["nodes"]] == ["WELCOME10"]
    await operator.post(DEACTIVATE, {"code": "fixed5"}, scopes=(COUPONS_WRITE,))
    inactive = await operator.post(COUPONS, {"active": False}, scopes=(OPS_READ,))
    assert [node["code"] for node in inactive["data"]["coupons"]["nodes"]] == ["FIXED5"]
    active = await operator.post(COUPONS, {"active": True}, scopes=(OPS_READ,))
    assert active["data"]["coupons"]["totalCount"] == 3
    foreign = await operator.post(COUPONS, {"after": "bm9wZQ=="}, scopes=(OPS_READ,))
    assert foreign["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_one_coupon_by_code_or_not_found(operator: OperatorClient, demo: SeedResult) -> None:
    found = (await operator.post(ONE, {"code": " welcome10 "}, scopes=(OPS_READ,)))["data"]["coupon"]
    assert (found["__typename"], found["code"], found["durationPeriods"]) == ("Coupon", "WELCOME10", 3)
    for code in ("NOPE", "x" * 5000, "\x00", ""):
        missing = (await operator.post(ONE, {"code": code}, scopes=(OPS_READ,)))["data"]["coupon"]
        # An error's code and a coupon's code differ in type: a client aliases one of them.
        assert missing == {"__typename": "NotFoundError", "errorCode": "NOT_FOUND", "field": "code"}


async def test_a_new_coupon_applied_and_checked_out_on_graphql_shows_its_redemption(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    await create(operator, **{**SPRING, "maxRedemptions": 2})
    assert (await add(gql, "users-1"))["__typename"] == "AddToCartSuccess"
    applied = await apply(gql, "spring-26")
    assert applied["__typename"] == "ApplyCouponSuccess"
    assert applied["cart"]["coupon"]["code"] == "SPRING-26"
    result = await checkout(gql, "spring-1")
    assert result["__typename"] == "CheckoutSuccess", result
    order = result["order"]
    assert order["couponCode"] == "SPRING-26"
    assert order["discount"]["amount"] != "0.00"

    page = (await operator.post(COUPONS, {"active": True}, scopes=(OPS_READ,)))["data"]["coupons"]
    [spring] = [node for node in page["nodes"] if node["code"] == "SPRING-26"]
    assert (spring["timesRedeemed"], spring["remainingRedemptions"]) == (1, 1)
    assert spring["redemptions"] == [
        {
            "environment": {"slug": "acme", "name": "Acme Storefront"},
            "orderId": order["id"],
            "redeemedAt": operator.clock.now().isoformat(),
            "discount": order["discount"],
        }
    ]


async def test_a_deactivated_coupon_is_refused_at_checkout_and_for_new_carts_and_its_redemptions_stay(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    await create(operator, **SPRING)
    # nova redeems it first; acme applies it and is left with it in its cart.
    await add(gql, "users-1", as_="admin@nova.test")
    await apply(gql, "SPRING-26", as_="admin@nova.test")
    assert (await checkout(gql, "nova-1", as_="admin@nova.test"))["__typename"] == "CheckoutSuccess"
    await add(gql, "users-1")
    assert (await apply(gql, "SPRING-26"))["__typename"] == "ApplyCouponSuccess"

    result = (await operator.post(DEACTIVATE, {"code": "spring-26"}, scopes=(COUPONS_WRITE,)))["data"]
    done = result["deactivateCoupon"]
    assert (done["wasActive"], done["coupon"]["isActive"], done["coupon"]["timesRedeemed"]) == (
        True,
        False,
        1,
    )

    refused = await checkout(gql, "acme-1")
    assert (refused["__typename"], refused["code"]) == ("CouponNotFoundError", "COUPON_NOT_FOUND")
    assert await Order.filter(tenant__slug="acme").count() == 0
    cart = await Cart.get(user__email="admin@acme.test", status="OPEN")
    assert cart.coupon_id is not None  # left for the admin to remove: nothing changed silently
    assert (await apply(gql, "SPRING-26"))["__typename"] == "CouponNotFoundError"
    assert await CouponRedemption.filter(coupon__code="SPRING-26").count() == 1

    again = (await operator.post(DEACTIVATE, {"code": "SPRING-26"}, scopes=(COUPONS_WRITE,)))["data"]
    assert again["deactivateCoupon"]["wasActive"] is False
    [entry] = await OperatorAuditEntry.filter(action="coupon.deactivate")
    assert entry.subject_id == "SPRING-26"
    missing = (await operator.post(DEACTIVATE, {"code": "GHOST"}, scopes=(COUPONS_WRITE,)))["data"]
    assert missing["deactivateCoupon"]["__typename"] == "NotFoundError"


async def test_coupon_fields_need_their_scopes(operator: OperatorClient, demo: SeedResult) -> None:
    for scopes in ((OPS_READ,), (TENANTS_WRITE,)):
        body = await operator.post(CREATE, {"input": SPRING}, scopes=scopes)
        assert body["data"] == {"createCoupon": None}
        assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "requiredScopes": [COUPONS_WRITE]}
        body = await operator.post(DEACTIVATE, {"code": "WELCOME10"}, scopes=scopes)
        assert body["errors"][0]["extensions"]["requiredScopes"] == [COUPONS_WRITE]
    body = await operator.post(COUPONS, scopes=(COUPONS_WRITE,))
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "requiredScopes": [OPS_READ]}
    assert await Coupon.filter(code="SPRING-26").count() == 0
    assert (await Coupon.get(code="WELCOME10")).is_active


async def test_fifty_concurrent_checkouts_redeem_a_coupon_capped_at_three_exactly_three_times(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    racers = 50
    await create(operator, **{**SPRING, "code": "RUSH", "maxRedemptions": 3})
    tenants = await make_environments(racers, clock.now() - dt.timedelta(days=400), prefix="rush")
    admins = [f"admin@{tenant.slug}.test" for tenant in tenants]
    for admin in admins:
        await add(gql, "users-1", as_=admin)
        assert (await apply(gql, "RUSH", as_=admin))["__typename"] == "ApplyCouponSuccess"
        await gql.token_for(admin)

    results = await asyncio.gather(*(checkout(gql, f"rush-{i}", as_=admin) for i, admin in enumerate(admins)))

    outcomes = Counter(result["__typename"] for result in results)
    assert outcomes["CheckoutSuccess"] == 3, outcomes
    # The others are refused with the cap (or, on SQLite, may lose a busy race and be told so): never sold.
    assert set(outcomes) <= {"CheckoutSuccess", "CouponExhaustedError", "CartBusyError"}
    if on_postgres():
        assert outcomes["CouponExhaustedError"] == racers - 3
    coupon = await Coupon.get(code="RUSH")
    assert coupon.times_redeemed == 3
    assert await CouponRedemption.filter(coupon=coupon).count() == 3
    assert await Order.filter(coupon=coupon).count() == 3
    listed = (await operator.post(ONE, {"code": "RUSH"}, scopes=(OPS_READ,)))["data"]["coupon"]
    assert (listed["timesRedeemed"], listed["remainingRedemptions"]) == (3, 0)
