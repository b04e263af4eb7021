"""The cart and coupons over GraphQL: adding, merging, conditions, summary, coupon rejections.

The clock is 2026-11-23 12:00 UTC. acme (EUR, anchor day 1) is in the period 2026-11-01..12-01
(30 days, 8 left today included); nova (BRL, anchor day 10) in 2026-11-10..12-10 (30 days, 17 left).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.billing import PlanSubscription
from app.models.catalog import AddOn
from app.models.coupons import Coupon
from app.models.enums import PlanSubscriptionStatus
from app.models.store import Cart, CartLine, CouponRedemption
from app.models.tenancy import User
from app.resolvers.ids import global_id
from app.seed import SeedResult
from app.services import cart as cart_service
from tests.conftest import GraphQLClient, count_queries

# The Start Pack is sold per ERP: acme buys it here as a bling environment (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("acme_runs_bling")

MONEY = "{ amount currency }"
CART_FIELDS = f"""
  id
  lines {{
    id addOnCode name quantity cadence isFree priceChanged couponApplies
    unitPrice {MONEY} currentUnitPrice {MONEY} lineTotal {MONEY}
    amountDue {MONEY} discount {MONEY} total {MONEY}
  }}
  coupon {{ code kind percentOff amountOff {MONEY} duration durationMonths applies changedSinceApplied }}
  summary {{
    subtotal {MONEY} discount {MONEY} total {MONEY} monthlyIncrease {MONEY} dueOnNextInvoice {MONEY}
    oneOffTotal {MONEY} newMonthlyTotal {MONEY} daysLeft period {{ name start end }}
  }}
"""
ERROR_FIELDS = "__typename ... on Error { code message field }"
# The data the error types carry, for a client to act on.
ERROR_DATA = """
  ... on QuantityAboveMaximumError { addOnCode maximum alreadyContracted }
  ... on NotAvailableForPlanError { addOnCode eligiblePlanCodes }
  ... on RequiredAddOnMissingError { addOnCode requiredAddOnCodes }
  ... on AddOnUnavailableError { addOnCode }
  ... on UnsupportedCurrencyError { currency availableCurrencies }
"""
COUPON_ERROR_DATA = """
  ... on CouponExpiredError { expiredAt }
  ... on CouponNotYetValidError { validFrom }
  ... on CouponExhaustedError { maxRedemptions }
"""
CART = f"{{ cart {{ __typename ... on Error {{ code }} ... on Cart {{ {CART_FIELDS} }} }} }}"
ADD = f"""
mutation($code: String!, $quantity: Int) {{
  addToCart(addOnCode: $code, quantity: $quantity) {{
    {ERROR_FIELDS} {ERROR_DATA}
    ... on AddToCartSuccess {{ cart {{ {CART_FIELDS} }} }}
  }}
}}
"""
UPDATE = f"""
mutation($code: String!, $quantity: Int!) {{
  updateCartItem(addOnCode: $code, quantity: $quantity) {{
    {ERROR_FIELDS} {ERROR_DATA}
    ... on UpdateCartItemSuccess {{ cart {{ {CART_FIELDS} }} }}
  }}
}}
"""
REMOVE = f"""
mutation($code: String!) {{
  removeFromCart(addOnCode: $code) {{
    {ERROR_FIELDS} ... on RemoveFromCartSuccess {{ cart {{ {CART_FIELDS} }} }}
  }}
}}
"""
APPLY_COUPON = f"""
mutation($code: String!) {{
  applyCoupon(code: $code) {{
    {ERROR_FIELDS} {COUPON_ERROR_DATA} ... on ApplyCouponSuccess {{ cart {{ {CART_FIELDS} }} }}
  }}
}}
"""
REMOVE_COUPON = f"""
mutation {{ removeCoupon {{ {ERROR_FIELDS} ... on RemoveCouponSuccess {{ cart {{ {CART_FIELDS} }} }} }} }}
"""

ADMIN = "admin@acme.test"


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


async def add(
    gql: GraphQLClient, code: str, quantity: int | None = None, *, as_: str = ADMIN
) -> dict[str, Any]:
    variables: dict[str, Any] = {"code": code}
    if quantity is not None:
        variables["quantity"] = quantity
    body = await gql.post(ADD, variables, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["addToCart"]
    return result


async def apply(gql: GraphQLClient, code: str, *, as_: str = ADMIN) -> dict[str, Any]:
    body = await gql.post(APPLY_COUPON, {"code": code}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["applyCoupon"]
    return result


async def cart_rows() -> tuple[int, int]:
    return await Cart.all().count(), await CartLine.all().count()


def cart_id_of(user: User) -> str:
    return str(global_id("Cart", user.id))


async def test_empty_cart_has_a_zero_summary(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(CART, as_=ADMIN)

    cart = body["data"]["cart"]
    assert cart["__typename"] == "Cart"
    assert cart["id"] == cart_id_of(await User.get(email=ADMIN))  # an id before anything is added
    assert cart["lines"] == []
    assert cart["summary"]["total"] == eur("0.00")
    assert cart["summary"]["newMonthlyTotal"] == eur("123.00")  # the current subscription
    assert cart["summary"]["period"] == {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"}
    assert cart["summary"]["daysLeft"] == 8


async def test_monthly_add_on_is_prorated_by_day_to_the_end_of_the_period(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    result = await add(gql, "users-1", 2)

    cart = result["cart"]
    line = cart["lines"][0]
    assert (line["addOnCode"], line["quantity"], line["isFree"]) == ("users-1", 2, False)
    assert line["unitPrice"] == eur("4.90")
    assert line["lineTotal"] == eur("9.80")
    assert line["amountDue"] == eur("2.61")  # 9.80 x 8 / 30 = 2.6133
    summary = cart["summary"]
    assert summary["monthlyIncrease"] == eur("9.80")
    assert summary["dueOnNextInvoice"] == eur("2.61")
    assert summary["oneOffTotal"] == eur("0.00")
    assert summary["total"] == eur("2.61")
    assert summary["newMonthlyTotal"] == eur("132.80")  # 123.00 + 9.80


async def test_repeated_add_merges_into_one_line(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    result = await add(gql, "users-1", 3)

    assert [(line["addOnCode"], line["quantity"]) for line in result["cart"]["lines"]] == [("users-1", 4)]
    assert await CartLine.all().count() == 1


async def test_free_add_on_shows_as_free(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await add(gql, "integration-webhooks")

    line = result["cart"]["lines"][0]
    assert line["isFree"] is True
    assert line["unitPrice"] == eur("0.00")
    assert line["total"] == eur("0.00")
    assert result["cart"]["summary"]["total"] == eur("0.00")


async def test_one_off_item_is_billed_in_full_once(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await add(gql, "start-pack")

    summary = result["cart"]["summary"]
    assert summary["oneOffTotal"] == eur("490.00")
    assert summary["monthlyIncrease"] == eur("0.00")
    assert summary["dueOnNextInvoice"] == eur("0.00")
    assert summary["total"] == eur("490.00")
    assert summary["newMonthlyTotal"] == eur("123.00")


async def test_update_and_remove_lines(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    await add(gql, "start-pack")

    updated = (await gql.post(UPDATE, {"code": "users-1", "quantity": 5}, as_=ADMIN))["data"][
        "updateCartItem"
    ]
    removed = (await gql.post(REMOVE, {"code": "start-pack"}, as_=ADMIN))["data"]["removeFromCart"]

    assert [(line["addOnCode"], line["quantity"]) for line in updated["cart"]["lines"]] == [
        ("users-1", 5),
        ("start-pack", 1),
    ]
    assert [line["addOnCode"] for line in removed["cart"]["lines"]] == ["users-1"]
    assert removed["cart"]["summary"]["monthlyIncrease"] == eur("24.50")


@pytest.mark.parametrize("quantity", [0, -1])
async def test_quantity_below_one_is_invalid_input_and_writes_nothing(
    gql: GraphQLClient, demo: SeedResult, quantity: int
) -> None:
    result = await add(gql, "users-1", quantity)

    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidInputError",
        "INVALID_INPUT",
        "quantity",
    )
    assert await cart_rows() == (0, 0)


async def test_update_to_zero_is_invalid_input(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1", 2)
    body = await gql.post(UPDATE, {"code": "users-1", "quantity": 0}, as_=ADMIN)

    assert body["data"]["updateCartItem"]["code"] == "INVALID_INPUT"
    assert (await CartLine.get()).quantity == 2


async def test_quantity_above_the_maximum_counts_what_is_already_active(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    # storage-10gb: at most 10; acme already has 1 active.
    ok = await add(gql, "storage-10gb", 9)
    refused = await add(gql, "storage-10gb", 1)

    assert ok["__typename"] == "AddToCartSuccess"
    assert refused["__typename"] == "QuantityAboveMaximumError"
    assert (refused["code"], refused["addOnCode"], refused["maximum"], refused["alreadyContracted"]) == (
        "QUANTITY_ABOVE_MAXIMUM",
        "storage-10gb",
        10,
        1,
    )
    assert (await CartLine.get()).quantity == 9


async def test_update_above_the_maximum_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    body = await gql.post(UPDATE, {"code": "users-1", "quantity": 21}, as_=ADMIN)
    assert body["data"]["updateCartItem"]["code"] == "QUANTITY_ABOVE_MAXIMUM"
    assert (await CartLine.get()).quantity == 1


async def test_free_add_on_already_active_cannot_be_added_again(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await add(gql, "report-sales-dashboard")  # max 1, active on acme
    assert result["code"] == "QUANTITY_ABOVE_MAXIMUM"


@pytest.mark.parametrize(
    "code", ["no-such-add-on", "users-5 x", "", "   ", "USERS-1", "u" * 10_000, "users-1\x00", "usérs-1"]
)
async def test_unknown_add_on_is_not_found(gql: GraphQLClient, demo: SeedResult, code: str) -> None:
    result = await add(gql, code)
    assert (result["__typename"], result["field"]) == ("NotFoundError", "addOnCode")
    assert await cart_rows() == (0, 0)


async def test_withdrawn_add_on_is_unavailable_and_writes_nothing(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await AddOn.filter(code="users-1").update(is_active=False)
    result = await add(gql, "users-1")
    assert (result["__typename"], result["code"], result["field"], result["addOnCode"]) == (
        "AddOnUnavailableError",
        "ADD_ON_UNAVAILABLE",
        "addOnCode",
        "users-1",
    )
    assert await cart_rows() == (0, 0)


async def test_add_on_for_other_plans_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await add(gql, "extra-tax-id")  # ERP plans only; acme is on storefront-m
    assert result["__typename"] == "NotAvailableForPlanError"
    assert "erp-start" in result["message"]
    # The plans that may buy it, by code: what a client offers instead.
    eligible = (await AddOn.get(code="extra-tax-id")).eligible_plan_codes
    assert "erp-start" in eligible
    assert (result["addOnCode"], result["eligiblePlanCodes"]) == ("extra-tax-id", eligible)


async def test_required_add_on_must_be_active_or_in_the_cart(gql: GraphQLClient, demo: SeedResult) -> None:
    nova = "admin@nova.test"
    refused = await add(gql, "make-to-order", as_=nova)
    await add(gql, "fiscal-bookkeeping", as_=nova)
    accepted = await add(gql, "make-to-order", as_=nova)

    assert refused["__typename"] == "RequiredAddOnMissingError"
    assert "fiscal-bookkeeping" in refused["message"]
    assert (refused["addOnCode"], refused["requiredAddOnCodes"]) == ("make-to-order", ["fiscal-bookkeeping"])
    assert accepted["__typename"] == "AddToCartSuccess"
    # BRL, 17 of 30 days: 119.90 x 17/30 = 67.943 -> 67.94; 149.90 x 17/30 = 84.943 -> 84.94.
    assert [line["amountDue"]["amount"] for line in accepted["cart"]["lines"]] == ["67.94", "84.94"]
    assert accepted["cart"]["summary"]["dueOnNextInvoice"] == {"amount": "152.88", "currency": "BRL"}


async def test_member_and_old_environment_get_typed_errors(gql: GraphQLClient, demo: SeedResult) -> None:
    member = await add(gql, "users-1", as_="member@acme.test")
    legacy = await add(gql, "users-1", as_="admin@legacy.test")
    cart = await gql.post(CART, as_="member@acme.test")

    assert member["__typename"] == "NotAdminError"
    assert legacy["__typename"] == "NotEligibleError"
    assert "errors" not in cart
    assert cart["data"]["cart"] == {"__typename": "NotAdminError", "code": "NOT_ADMIN"}
    assert await cart_rows() == (0, 0)


async def test_member_asking_the_cart_beside_the_viewer_keeps_the_viewer(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await gql.post(
        "{ viewer { user { email } } cart { __typename ... on Error { code message } } }",
        as_="member@acme.test",
    )

    assert "errors" not in body
    assert body["data"]["viewer"] == {"user": {"email": "member@acme.test"}}
    assert body["data"]["cart"]["__typename"] == "NotAdminError"
    assert body["data"]["cart"]["code"] == "NOT_ADMIN"


async def test_old_environment_and_no_plan_are_cart_members(gql: GraphQLClient, demo: SeedResult) -> None:
    legacy = (await gql.post(CART, as_="admin@legacy.test"))["data"]["cart"]
    eligible = await gql.post(
        "{ cart { ... on NotEligibleError { eligibleSince } } }", as_="admin@legacy.test"
    )
    await PlanSubscription.filter(tenant__slug="acme").update(status=PlanSubscriptionStatus.SUSPENDED)
    no_plan = await gql.post(CART, as_=ADMIN)

    assert legacy == {"__typename": "NotEligibleError", "code": "NOT_ELIGIBLE"}
    assert eligible["data"]["cart"]["eligibleSince"] is not None
    assert "errors" not in no_plan
    assert no_plan["data"]["cart"] == {"__typename": "NoActivePlanError", "code": "NO_ACTIVE_PLAN"}


async def test_api_key_cannot_use_the_cart(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(ADD, {"code": "users-1"}, key=demo.connector_keys["acme"])
    # Issue 11: no API key scope opens the store's writes (tests/api/test_access_matrix.py).
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_unauthenticated_cart_is_an_error(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(CART)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"] == {"cart": None}  # the field is nulled, not the answer


async def test_add_on_not_sold_in_the_currency_lists_the_currencies_it_is_sold_in(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await AddOn.create(
        code="brl-only", name="BRL only", category="REPORTS", prices={"BRL": "9.90", "USD": "2.00"}
    )

    result = await add(gql, "brl-only")  # acme pays in EUR

    assert (result["__typename"], result["code"], result["field"]) == (
        "UnsupportedCurrencyError",
        "UNSUPPORTED_CURRENCY",
        "addOnCode",
    )
    assert (result["currency"], result["availableCurrencies"]) == ("EUR", ["BRL", "USD"])
    assert await cart_rows() == (0, 0)


async def test_a_cart_always_busy_answers_cart_busy(
    gql: GraphQLClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def closed_meanwhile(cart: Cart, now: dt.datetime) -> None:
        return None  # every attempt finds its cart confirmed by a checkout meanwhile

    monkeypatch.setattr(cart_service, "_hold_open", closed_meanwhile)
    result = await add(gql, "users-1")

    assert (result["__typename"], result["code"]) == ("CartBusyError", "CART_BUSY")
    assert await CartLine.all().count() == 0


async def test_line_edits_of_a_cart_confirmed_meanwhile_answer_cart_checked_out(
    gql: GraphQLClient, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add(gql, "users-1", 2)

    async def closed_meanwhile(cart: Cart, now: dt.datetime) -> None:
        return None  # a checkout closed the cart between the edit's reads and its write

    monkeypatch.setattr(cart_service, "_hold_open", closed_meanwhile)
    updated = (await gql.post(UPDATE, {"code": "users-1", "quantity": 3}, as_=ADMIN))["data"][
        "updateCartItem"
    ]
    removed = (await gql.post(REMOVE, {"code": "users-1"}, as_=ADMIN))["data"]["removeFromCart"]

    assert (updated["__typename"], updated["code"]) == ("CartCheckedOutError", "CART_CHECKED_OUT")
    assert (removed["__typename"], removed["code"]) == ("CartCheckedOutError", "CART_CHECKED_OUT")
    assert [line.quantity for line in await CartLine.all()] == [2]


async def test_each_admin_has_their_own_cart(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    nova = await gql.post(CART, as_="admin@nova.test")
    assert nova["data"]["cart"]["lines"] == []


# --- Coupons -------------------------------------------------------------------------------------


async def test_percent_coupon_updates_the_summary_at_once(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1", 2)
    await add(gql, "start-pack")

    result = await apply(gql, "WELCOME10")

    cart = result["cart"]
    assert cart["coupon"] == {
        "code": "WELCOME10",
        "kind": "PERCENT",
        "percentOff": "10.00",
        "amountOff": None,
        "duration": "REPEATING",
        "durationMonths": 3,
        "applies": True,
        "changedSinceApplied": False,
    }
    # WELCOME10 lasts three months: a discount on the monthly bill, nothing off the one-off Start Pack.
    assert [line["discount"] for line in cart["lines"]] == [eur("0.26"), eur("0.00")]
    assert [line["couponApplies"] for line in cart["lines"]] == [True, False]
    assert cart["summary"]["subtotal"] == eur("492.61")
    assert cart["summary"]["discount"] == eur("0.26")
    assert cart["summary"]["total"] == eur("492.35")


async def test_fixed_coupon_takes_its_amount_in_cart_order(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1", 2)  # 2.61 due
    await add(gql, "integration-shopify")  # 3.97 due

    cart = (await apply(gql, "FIXED5"))["cart"]

    assert [line["discount"] for line in cart["lines"]] == [eur("2.61"), eur("2.39")]
    assert cart["summary"]["discount"] == eur("5.00")
    assert cart["summary"]["total"] == eur("1.58")


async def test_fixed_coupon_never_makes_the_total_negative(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")  # 4.90 x 8/30 = 1.31
    cart = (await apply(gql, "FIXED5"))["cart"]
    assert cart["summary"]["discount"] == eur("1.31")
    assert cart["summary"]["total"] == eur("0.00")


@pytest.mark.parametrize("typed", ["welcome10", " WELCOME10 ", "Welcome10\t", "\nwelcome10 "])
async def test_coupon_code_ignores_case_and_surrounding_spaces(
    gql: GraphQLClient, demo: SeedResult, typed: str
) -> None:
    await add(gql, "users-1")
    result = await apply(gql, typed)
    assert result["cart"]["coupon"]["code"] == "WELCOME10"


@pytest.mark.parametrize(
    ("typed", "typename", "code"),
    [
        ("NOPE", "CouponNotFoundError", "COUPON_NOT_FOUND"),
        ("WELCOME 10", "CouponNotFoundError", "COUPON_NOT_FOUND"),
        ("W" * 500, "CouponNotFoundError", "COUPON_NOT_FOUND"),
        ("WELCOME10\x00", "CouponNotFoundError", "COUPON_NOT_FOUND"),
        ("WELCOME\u200b10", "CouponNotFoundError", "COUPON_NOT_FOUND"),
        ("   ", "InvalidInputError", "INVALID_INPUT"),
        ("EXPIRED", "CouponExpiredError", "COUPON_EXPIRED"),
        ("expired ", "CouponExpiredError", "COUPON_EXPIRED"),
    ],
)
async def test_coupon_rejections_say_why(
    gql: GraphQLClient, demo: SeedResult, typed: str, typename: str, code: str
) -> None:
    await add(gql, "users-1")
    result = await apply(gql, typed)
    assert (result["__typename"], result["code"], result["field"]) == (typename, code, "code")
    assert (await Cart.get()).coupon_id is None


async def test_expired_coupon_says_when_it_expired(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    result = await apply(gql, "EXPIRED")

    valid_until = (await Coupon.get(code="EXPIRED")).valid_until
    assert valid_until is not None
    assert result["__typename"] == "CouponExpiredError"
    assert dt.datetime.fromisoformat(result["expiredAt"]) == valid_until


async def test_exhausted_coupon_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    await Coupon.filter(code="ONEUSE").update(times_redeemed=1)
    await add(gql, "users-1")
    result = await apply(gql, "ONEUSE")
    assert (result["code"], result["maxRedemptions"]) == ("COUPON_EXHAUSTED", 1)


async def test_coupon_not_yet_valid_is_refused(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    starts = clock.now() + dt.timedelta(days=1)
    await Coupon.filter(code="WELCOME10").update(valid_from=starts)
    await add(gql, "users-1")
    result = await apply(gql, "WELCOME10")
    assert result["code"] == "COUPON_NOT_YET_VALID"
    assert dt.datetime.fromisoformat(result["validFrom"]) == starts


async def test_coupon_on_an_empty_cart_or_free_items_applies_to_nothing(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    empty = await apply(gql, "WELCOME10")
    await add(gql, "integration-webhooks")
    free_only = await apply(gql, "WELCOME10")

    assert empty["__typename"] == "CouponNotApplicableError"
    assert free_only["code"] == "COUPON_NOT_APPLICABLE"


async def test_restricted_coupon_applies_only_to_its_categories(gql: GraphQLClient, demo: SeedResult) -> None:
    await Coupon.create(code="STORAGE20", kind="PERCENT", percent_off=20, applies_to_categories=["STORAGE"])
    await add(gql, "users-1")
    refused = await apply(gql, "storage20")
    await add(gql, "storage-500mb", 2)  # 3.00 x 8/30 = 0.80
    accepted = await apply(gql, "storage20")

    assert refused["code"] == "COUPON_NOT_APPLICABLE"
    lines = accepted["cart"]["lines"]
    assert [(line["addOnCode"], line["couponApplies"], line["discount"]) for line in lines] == [
        ("users-1", False, eur("0.00")),
        ("storage-500mb", True, eur("0.16")),
    ]


async def test_coupon_already_used_by_the_tenant_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    from app.models.store import Order
    from app.models.tenancy import Tenant

    acme = await Tenant.get(slug="acme")
    coupon = await Coupon.get(code="WELCOME10")
    order = await Order.create(
        tenant=acme, idempotency_key="old", request_fingerprint="x", currency="EUR",
        period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 11, 1), subtotal=0, discount=0, total=0,
        monthly_increase=0, due_on_next_invoice=0, one_off_total=0, new_monthly_total=0,
        created_at=dt.datetime(2026, 10, 2, tzinfo=dt.UTC),
    )  # fmt: skip
    await CouponRedemption.create(coupon=coupon, tenant=acme, order=order, redeemed_at=order.created_at)
    await add(gql, "users-1")

    assert (await apply(gql, "WELCOME10"))["code"] == "COUPON_ALREADY_USED"


async def test_remove_coupon_restores_the_total(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "start-pack")
    await apply(gql, "FIXED5")
    body = await gql.post(REMOVE_COUPON, as_=ADMIN)

    cart = body["data"]["removeCoupon"]["cart"]
    assert cart["coupon"] is None
    assert cart["summary"]["total"] == eur("490.00")


async def test_coupon_that_stops_applying_shows_as_not_applying(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    await add(gql, "integration-webhooks")
    await apply(gql, "WELCOME10")
    removed = (await gql.post(REMOVE, {"code": "users-1"}, as_=ADMIN))["data"]["removeFromCart"]

    assert removed["cart"]["coupon"]["applies"] is False
    assert removed["cart"]["summary"]["discount"] == eur("0.00")


async def test_cart_line_keeps_the_price_seen_and_flags_a_change(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1")
    await AddOn.filter(code="users-1").update(prices={"EUR": "5.50", "BRL": "27.90"})

    line = (await gql.post(CART, as_=ADMIN))["data"]["cart"]["lines"][0]
    assert (line["unitPrice"], line["currentUnitPrice"], line["priceChanged"]) == (
        eur("4.90"),
        eur("5.50"),
        True,
    )

    updated = (await gql.post(UPDATE, {"code": "users-1", "quantity": 1}, as_=ADMIN))["data"][
        "updateCartItem"
    ]
    assert updated["cart"]["lines"][0]["unitPrice"] == eur("5.50")
    assert updated["cart"]["lines"][0]["priceChanged"] is False


@pytest.mark.parametrize("code", ["start-pack", "users-1\x00", "x" * 10_000, ""])
async def test_updating_or_removing_a_line_not_in_the_cart_is_not_found(
    gql: GraphQLClient, demo: SeedResult, code: str
) -> None:
    await add(gql, "users-1", 2)

    updated = (await gql.post(UPDATE, {"code": code, "quantity": 1}, as_=ADMIN))["data"]["updateCartItem"]
    removed = (await gql.post(REMOVE, {"code": code}, as_=ADMIN))["data"]["removeFromCart"]

    assert (updated["__typename"], updated["field"]) == ("NotFoundError", "addOnCode")
    assert (removed["__typename"], removed["field"]) == ("NotFoundError", "addOnCode")
    assert [(line.quantity) for line in await CartLine.all()] == [2]


@pytest.mark.parametrize(
    ("moment", "days_left", "due"),
    [
        (dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC), 30, "19.90"),  # the whole period
        (dt.datetime(2026, 11, 23, 23, 59, tzinfo=dt.UTC), 8, "5.31"),  # today counts whole
        (dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC), 1, "0.66"),  # the last day: 19.90 / 30
        (dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC), 31, "19.90"),  # December has 31 days
    ],
)
async def test_summary_is_prorated_by_day_from_the_clock(
    gql: GraphQLClient,
    demo: SeedResult,
    clock: FrozenClock,
    moment: dt.datetime,
    days_left: int,
    due: str,
) -> None:
    clock.set(moment)
    summary = (await add(gql, "users-5"))["cart"]["summary"]

    assert summary["daysLeft"] == days_left
    assert summary["dueOnNextInvoice"] == eur(due)
    assert summary["monthlyIncrease"] == eur("19.90")


async def test_quantity_defaults_to_one_and_an_explicit_null_is_refused(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    defaulted = await add(gql, "users-1")
    body = await gql.post(ADD, {"code": "users-5", "quantity": None}, as_=ADMIN)

    assert defaulted["cart"]["lines"][0]["quantity"] == 1
    # quantity is Int! = 1: a null does not fit its type, so nothing runs.
    assert body["data"] == {"addToCart": None}
    assert "'$quantity'" in body["errors"][0]["message"], body
    assert [line.quantity for line in await CartLine.all()] == [1]


async def test_cart_line_ids_are_stable_and_distinct(gql: GraphQLClient, demo: SeedResult) -> None:
    first = (await add(gql, "users-1"))["cart"]["lines"]
    second = (await add(gql, "start-pack"))["cart"]["lines"]
    merged = (await add(gql, "users-1", 2))["cart"]["lines"]

    assert [line["id"] for line in second] == [first[0]["id"], second[1]["id"]]
    assert [line["id"] for line in merged] == [line["id"] for line in second]
    assert len({line["id"] for line in merged}) == 2
    assert second[1]["id"] != cart_id_of(await User.get(email=ADMIN))


async def test_cart_queries_do_not_grow_with_its_lines(gql: GraphQLClient, demo: SeedResult) -> None:
    add_on = "addOn { code category isFree conditions { maxQuantity } }"
    query = f"{{ cart {{ ... on Cart {{ {CART_FIELDS} lines {{ {add_on} }} }} }} }}"
    await add(gql, "users-1")
    with count_queries() as one_line:
        await gql.post(query, as_=ADMIN)
    for code in ("users-5", "storage-500mb", "start-pack", "integration-shopify", "credits-5000"):
        await add(gql, code)
    with count_queries() as six_lines:
        body = await gql.post(query, as_=ADMIN)

    assert len(body["data"]["cart"]["lines"]) == 6
    assert six_lines.count == one_line.count


async def test_coupon_restricted_to_add_ons_discounts_only_those(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await Coupon.create(code="PACK50", kind="PERCENT", percent_off=50, applies_to_add_on_codes=["start-pack"])
    await add(gql, "users-1")
    await add(gql, "start-pack")

    cart = (await apply(gql, "pack50"))["cart"]

    assert [(line["addOnCode"], line["discount"]) for line in cart["lines"]] == [
        ("users-1", eur("0.00")),
        ("start-pack", eur("245.00")),
    ]
