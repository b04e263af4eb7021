"""Checkout over GraphQL: the seed's journey end to end, with and without each demo coupon, the order,
My plan, the effective limits and the e-mails received by a real SMTP server; idempotency; bad input.

acme (EUR, anchor 1, 2026-11-23: 8 of 30 days left) starts with storefront-m (79.00) + storage-10gb
(19.00) + the free sales dashboard + credits-1000 (25.00) = 123.00 a month; limits 20480 MB,
5 users, 2 integrations, 4000 credits.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.audit import AuditEntry
from app.models.billing import AddOnSubscription
from app.models.catalog import AddOn
from app.models.coupons import Coupon
from app.models.enums import Role
from app.models.notifications import OutboxEmail
from app.models.store import Cart, CartLine, CouponRedemption, Order, OrderLine
from app.models.tenancy import Tenant, User
from app.seed import SeedResult
from tests.api.test_store import ADMIN, CART, add, apply, eur
from tests.conftest import GraphQLClient, count_queries
from tests.emails import html_of, language_of, opening, says, subject_of, text_of
from tests.emails import money as formatted
from tests.smtp import SmtpServer

# The Start Pack is sold per ERP: acme buys it here as a bling environment (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("acme_runs_bling")

MONEY = "{ amount currency }"
CHECKOUT = f"""
mutation($key: String!) {{
  checkout(idempotencyKey: $key) {{
    __typename
    ... on Error {{ code message field }}
    ... on PriceChangedError {{ changes {{ addOnCode name seenUnitPrice {MONEY} currentUnitPrice {MONEY} }} }}
    ... on CheckoutSuccess {{
      replayed
      order {{
        id idempotencyKey couponCode period {{ name start end }}
        subtotal {MONEY} discount {MONEY} total {MONEY} monthlyIncrease {MONEY}
        dueOnNextInvoice {MONEY} oneOffTotal {MONEY} newMonthlyTotal {MONEY}
        lines {{
          id addOnCode name cadence isFree quantity activeAddOn {{ id addOn {{ code }} }}
          unitPrice {MONEY} lineTotal {MONEY} amountDue {MONEY} discount {MONEY} total {MONEY}
        }}
      }}
      activeAddOns {{ id name quantity status configurationStatus contractedAt monthlyPrice {MONEY} }}
      cart {{ id lines {{ id }} coupon {{ code }} summary {{ total {MONEY} newMonthlyTotal {MONEY} }} }}
      myPlan {{
        id monthlyTotal {MONEY} effectiveLimits {{ users integrations }}
        activeAddOns {{ id addOn {{ code }} }}
      }}
    }}
  }}
}}
"""
MY_PLAN = """
{ myPlan { ... on MyPlan {
  effectiveLimits { storageBytes users integrations credits }
  monthlyTotal { amount currency }
  activeAddOns { id name contractedAt configurationStatus monthlyPrice { amount } addOn { code } }
} } }
"""


async def checkout(gql: GraphQLClient, key: str, *, as_: str = ADMIN) -> dict[str, Any]:
    body = await gql.post(CHECKOUT, {"key": key}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["checkout"]
    return result


async def fill_journey_cart(gql: GraphQLClient) -> None:
    """A monthly, an integration, a free (integration) and a one-off add-on."""
    for code, quantity in (
        ("users-1", 2),
        ("integration-shopify", 1),
        ("integration-webhooks", 1),
        ("start-pack", 1),
    ):
        assert (await add(gql, code, quantity))["__typename"] == "AddToCartSuccess"


async def add_second_admin() -> None:
    acme = await Tenant.get(slug="acme")
    await User.create(tenant=acme, email="owner@acme.test", name="Acme owner", role=Role.ADMIN)


# Line discounts on 2.61 (users-1 x2), 3.97 (Shopify), 0.00 (webhooks), 490.00 (Start Pack).
JOURNEY = [
    pytest.param(None, ["0.00", "0.00", "0.00", "0.00"], id="no-coupon"),
    # WELCOME10 lasts three months: a discount on the monthly bill, nothing off the one-off Start Pack.
    pytest.param("WELCOME10", ["0.26", "0.40", "0.00", "0.00"], id="WELCOME10"),
    pytest.param("FIXED5", ["2.61", "2.39", "0.00", "0.00"], id="FIXED5"),
    pytest.param("ONEUSE", ["0.39", "0.60", "0.00", "73.50"], id="ONEUSE"),
]


@pytest.mark.parametrize(("coupon", "discounts"), JOURNEY)
async def test_purchase_journey_end_to_end(
    gql: GraphQLClient,
    demo: SeedResult,
    clock: FrozenClock,
    smtp_server: SmtpServer,
    coupon: str | None,
    discounts: list[str],
) -> None:
    await add_second_admin()
    await fill_journey_cart(gql)
    if coupon:
        assert (await apply(gql, coupon))["__typename"] == "ApplyCouponSuccess"
    summary = (await gql.post(CART, as_=ADMIN))["data"]["cart"]["summary"]

    result = await checkout(gql, "journey-1")

    assert result["__typename"] == "CheckoutSuccess"
    order = result["order"]
    discount = sum(float(d) for d in discounts)
    # The order is the summary the admin confirmed, line by line.
    assert [line["addOnCode"] for line in order["lines"]] == [
        "users-1",
        "integration-shopify",
        "integration-webhooks",
        "start-pack",
    ]
    assert [line["amountDue"]["amount"] for line in order["lines"]] == ["2.61", "3.97", "0.00", "490.00"]
    assert [line["discount"]["amount"] for line in order["lines"]] == discounts
    assert order["lines"][2]["isFree"] is True
    for field in ("subtotal", "discount", "total", "monthlyIncrease", "dueOnNextInvoice", "oneOffTotal"):
        assert order[field] == summary[field], field
    assert order["subtotal"] == eur("496.58")
    assert order["monthlyIncrease"] == eur("24.70")
    assert order["dueOnNextInvoice"] == eur("6.58")
    assert order["oneOffTotal"] == eur("490.00")
    assert float(order["discount"]["amount"]) == pytest.approx(discount)
    assert order["total"]["amount"] == f"{496.58 - discount:.2f}"
    assert order["newMonthlyTotal"] == eur("147.70")
    assert order["couponCode"] == coupon

    # Activated at once: three subscriptions (the Start Pack is in the order only).
    activated = {a["name"]: a for a in result["activeAddOns"]}
    assert set(activated) == {"1 extra user", "Shopify integration", "Webhooks"}
    assert activated["Shopify integration"]["configurationStatus"] == "PENDING"
    assert activated["Webhooks"]["configurationStatus"] == "PENDING"
    assert activated["1 extra user"]["configurationStatus"] == "NOT_REQUIRED"
    assert order["lines"][3]["activeAddOn"] is None
    assert [line["activeAddOn"]["id"] for line in order["lines"][:3]] == [
        a["id"] for a in result["activeAddOns"]
    ]

    my_plan = (await gql.post(MY_PLAN, as_=ADMIN))["data"]["myPlan"]
    assert my_plan["effectiveLimits"] == {
        "storageBytes": 20480 * 1024 * 1024,
        "users": 7,
        "integrations": 4,
        "credits": 4000,
    }
    assert my_plan["monthlyTotal"] == eur("147.70")
    new = {a["addOn"]["code"]: a for a in my_plan["activeAddOns"]}
    assert new["users-1"]["contractedAt"] == "2026-11-23T12:00:00+00:00"
    assert new["users-1"]["monthlyPrice"] == {"amount": "9.80"}

    # The cart is closed; the next one starts empty.
    assert (await gql.post(CART, as_=ADMIN))["data"]["cart"]["lines"] == []

    # Every admin is e-mailed, once, through a real SMTP server.
    assert await smtp_server.dispatcher(clock).run_once() == 2
    messages = smtp_server.inbox.messages
    assert sorted(str(m["To"]) for m in messages) == ["admin@acme.test", "owner@acme.test"]
    body, locale = text_of(messages[0]), language_of(messages[0])
    assert html_of(messages[0])
    shopify, webhooks = (
        await AddOn.get(code="integration-shopify"),
        await AddOn.get(code="integration-webhooks"),
    )
    assert f"{shopify.names.get(locale.value) or shopify.name} x 1" in body
    webhooks_name = webhooks.names.get(locale.value) or webhooks.name
    assert says(locale, "%(name)s x %(quantity)s: free", name=webhooks_name, quantity="1") in body
    total = formatted(order["total"]["amount"], "EUR", locale)
    assert says(locale, "Total of this purchase: %(amount)s", amount=total) in body
    assert subject_of(messages[0]).startswith(
        opening(locale, "Your subscription was updated: order %(order_ref)s")
    )
    assert await smtp_server.dispatcher(clock).run_once() == 0
    assert [e.action for e in await AuditEntry.filter(action="checkout")] == ["checkout"]

    if coupon:
        assert (await Coupon.get(code=coupon)).times_redeemed == 1
        assert await CouponRedemption.filter(coupon__code=coupon).count() == 1


async def test_nova_buys_in_brl_with_its_own_period(gql: GraphQLClient, demo: SeedResult) -> None:
    nova = "admin@nova.test"
    await add(gql, "users-1", as_=nova)  # 24.90 x 17/30 = 14.11
    await apply(gql, "FIXED5", as_=nova)

    result = await checkout(gql, "nova-1", as_=nova)

    order = result["order"]
    assert order["period"] == {"name": "2026-11", "start": "2026-11-10", "end": "2026-12-10"}
    assert order["dueOnNextInvoice"] == {"amount": "14.11", "currency": "BRL"}
    assert order["total"] == {"amount": "9.11", "currency": "BRL"}


async def test_same_key_returns_the_same_order(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    first = await checkout(gql, "same-key")
    again = await checkout(gql, "same-key")

    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["order"] == first["order"]
    assert [a["id"] for a in again["activeAddOns"]] == [a["id"] for a in first["activeAddOns"]]
    assert await Order.all().count() == 1
    assert await AddOnSubscription.filter(add_on__code="users-1").count() == 1


async def test_same_key_with_a_different_cart_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    await checkout(gql, "reused")
    await add(gql, "start-pack")

    result = await checkout(gql, "reused")

    assert (result["__typename"], result["code"], result["field"]) == (
        "IdempotencyKeyReusedError",
        "IDEMPOTENCY_KEY_REUSED",
        "idempotencyKey",
    )
    assert await Order.all().count() == 1
    assert await CartLine.filter(cart__status="OPEN").count() == 1  # the new cart is untouched


async def test_checkout_of_an_empty_cart_is_a_typed_error(gql: GraphQLClient, demo: SeedResult) -> None:
    never = await checkout(gql, "empty-1")
    await add(gql, "users-1")
    await gql.post('mutation { removeFromCart(addOnCode: "users-1") { __typename } }', as_=ADMIN)
    emptied = await checkout(gql, "empty-2")

    assert never["__typename"] == emptied["__typename"] == "CartEmptyError"
    assert never["code"] == "CART_EMPTY"
    assert await Order.all().count() == 0


@pytest.mark.parametrize("key", ["k" * 129, "", "has space", "tab\tkey", "çedilla"])
async def test_bad_idempotency_key_is_invalid_input_and_writes_nothing(
    gql: GraphQLClient, demo: SeedResult, key: str
) -> None:
    await add(gql, "users-1")
    result = await checkout(gql, key)

    assert (result["__typename"], result["code"], result["field"]) == (
        "InvalidInputError",
        "INVALID_INPUT",
        "idempotencyKey",
    )
    assert await Order.all().count() == 0
    assert await CartLine.all().count() == 1


async def test_longest_valid_key_is_accepted(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    assert (await checkout(gql, "k" * 128))["__typename"] == "CheckoutSuccess"


async def nothing_written() -> bool:
    return (
        await Order.all().count() == 0
        and await OrderLine.all().count() == 0
        and await AddOnSubscription.filter(add_on__code__in=["users-1", "storage-500mb"]).count() == 0
        and await OutboxEmail.all().count() == 0
        and await AuditEntry.all().count() == 0
        and await CouponRedemption.all().count() == 0
        and await Cart.filter(status="OPEN").count() == 1
    )


async def test_price_change_is_reported_instead_of_charged(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1", 2)
    await add(gql, "storage-500mb")
    await AddOn.filter(code="users-1").update(prices={"EUR": "5.90", "BRL": "29.90"})

    refused = await checkout(gql, "price-1")

    assert refused["__typename"] == "PriceChangedError"
    assert refused["changes"] == [
        {
            "addOnCode": "users-1",
            "name": "1 extra user",
            "seenUnitPrice": eur("4.90"),
            "currentUnitPrice": eur("5.90"),
        }
    ]
    assert await nothing_written()
    # Accepting the new price: the line takes it, and checkout goes through with it.
    await gql.post('mutation { updateCartItem(addOnCode: "users-1", quantity: 2) { __typename } }', as_=ADMIN)
    accepted = await checkout(gql, "price-2")
    assert accepted["order"]["lines"][0]["unitPrice"] == eur("5.90")


async def test_add_on_withdrawn_after_adding_is_refused_at_checkout(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1")
    await AddOn.filter(code="users-1").update(is_active=False)

    result = await checkout(gql, "withdrawn")

    assert result["code"] == "ADD_ON_UNAVAILABLE"
    assert await nothing_written()


async def test_quantity_that_became_too_high_is_refused_at_checkout(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1", 5)
    await AddOn.filter(code="users-1").update(max_quantity=3)

    result = await checkout(gql, "too-many")

    assert result["code"] == "QUANTITY_ABOVE_MAXIMUM"
    assert await nothing_written()


async def test_coupon_expired_since_it_was_applied_is_refused_at_checkout(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await add(gql, "users-1")
    await apply(gql, "WELCOME10")
    await Coupon.filter(code="WELCOME10").update(valid_until=clock.now())

    result = await checkout(gql, "expired")

    assert result["__typename"] == "CouponExpiredError"
    assert await nothing_written()


async def test_one_use_coupon_taken_by_another_tenant_is_refused(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1")
    await apply(gql, "ONEUSE")
    await add(gql, "users-1", as_="admin@nova.test")
    await apply(gql, "ONEUSE", as_="admin@nova.test")

    nova = await checkout(gql, "nova", as_="admin@nova.test")
    acme = await checkout(gql, "acme")

    assert nova["__typename"] == "CheckoutSuccess"
    assert acme["__typename"] == "CouponExhaustedError"
    assert (await Coupon.get(code="ONEUSE")).times_redeemed == 1


async def test_coupon_is_used_once_per_tenant(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    await apply(gql, "FIXED5")
    await checkout(gql, "first")
    await add(gql, "storage-500mb")

    assert (await apply(gql, "FIXED5"))["code"] == "COUPON_ALREADY_USED"


async def test_member_cannot_check_out(gql: GraphQLClient, demo: SeedResult) -> None:
    result = await checkout(gql, "member", as_="member@acme.test")
    assert result["code"] == "NOT_ADMIN"


async def test_coupon_terms_changed_since_applied_are_reported_instead_of_charged(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "start-pack")
    await apply(gql, "ONEUSE")  # 73.50 off the 490.00 shown
    await Coupon.filter(code="ONEUSE").update(percent_off=5)

    cart = (await gql.post("{ cart { ... on Cart { coupon { changedSinceApplied } } } }", as_=ADMIN))["data"][
        "cart"
    ]
    refused = await checkout(gql, "changed-1")

    assert cart["coupon"]["changedSinceApplied"] is True
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "CouponChangedError",
        "COUPON_CHANGED",
        "code",
    )
    assert await Order.all().count() == 0
    assert (await Coupon.get(code="ONEUSE")).times_redeemed == 0
    # Applying it again shows the new terms, which checkout then charges.
    again = await apply(gql, "ONEUSE")
    assert again["cart"]["coupon"]["changedSinceApplied"] is False
    assert again["cart"]["summary"]["discount"] == eur("24.50")
    accepted = await checkout(gql, "changed-2")
    assert accepted["order"]["discount"] == eur("24.50")


async def test_coupon_withdrawn_after_applying_is_refused_at_checkout(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1")
    await apply(gql, "FIXED5")
    await Coupon.filter(code="FIXED5").update(is_active=False)

    result = await checkout(gql, "withdrawn-coupon")

    assert (result["__typename"], result["field"]) == ("CouponNotFoundError", "code")
    assert await Order.all().count() == 0


async def test_key_of_another_admins_purchase_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    await add_second_admin()
    await add(gql, "users-1")
    await checkout(gql, "shared-key")

    result = await checkout(gql, "shared-key", as_="owner@acme.test")

    assert (result["__typename"], result["field"]) == ("IdempotencyKeyReusedError", "idempotencyKey")


async def test_retry_after_the_cart_was_closed_returns_the_order_and_charges_once(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    await add(gql, "users-1")
    await apply(gql, "ONEUSE")
    first = await checkout(gql, "retry")
    await gql.post(CART, as_=ADMIN)  # the admin opens the (empty) cart again meanwhile
    again = await checkout(gql, "retry")

    assert again["order"]["id"] == first["order"]["id"]
    assert again["replayed"] is True
    assert (await Coupon.get(code="ONEUSE")).times_redeemed == 1
    assert await smtp_server.dispatcher(clock).run_once() == 1  # one e-mail, not two


async def test_same_key_may_be_used_by_another_tenant(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1")
    await add(gql, "users-1", as_="admin@nova.test")

    acme = await checkout(gql, "tenant-scoped")
    nova = await checkout(gql, "tenant-scoped", as_="admin@nova.test")

    assert (acme["replayed"], nova["replayed"]) == (False, False)
    assert acme["order"]["id"] != nova["order"]["id"]


async def test_one_off_item_bought_once_cannot_be_bought_again(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "start-pack")
    await checkout(gql, "pack-1")

    again = await add(gql, "start-pack")

    assert (again["__typename"], again["maximum"], again["alreadyContracted"]) == (
        "QuantityAboveMaximumError",
        1,
        1,
    )


async def test_required_add_on_removed_from_the_cart_is_refused_at_checkout(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    nova = "admin@nova.test"
    await add(gql, "fiscal-bookkeeping", as_=nova)
    await add(gql, "make-to-order", as_=nova)
    await gql.post('mutation { removeFromCart(addOnCode: "fiscal-bookkeeping") { __typename } }', as_=nova)

    result = await checkout(gql, "needs", as_=nova)

    assert (result["__typename"], result["field"]) == ("RequiredAddOnMissingError", "addOnCode")
    assert "fiscal-bookkeeping" in result["message"]
    assert await Order.all().count() == 0


# --- What checkout returns: a client cache needs no refetch ------------------------------------------


async def test_cart_keeps_its_id_before_the_first_add_while_filling_and_after_checkout(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    before = (await gql.post(CART, as_=ADMIN))["data"]["cart"]["id"]
    filling = [(await add(gql, code))["cart"]["id"] for code in ("users-1", "start-pack")]

    result = await checkout(gql, "same-cart")
    after = (await gql.post(CART, as_=ADMIN))["data"]["cart"]

    assert filling == [before, before]
    # The emptied cart replaces the confirmed one under the same id.
    assert result["cart"]["id"] == before
    assert result["cart"]["lines"] == []
    assert result["cart"]["coupon"] is None
    assert result["cart"]["summary"]["total"] == eur("0.00")
    assert result["cart"]["summary"]["newMonthlyTotal"] == result["order"]["newMonthlyTotal"]
    assert (after["id"], after["lines"]) == (before, [])
    # Another admin's cart has another id.
    nova = (await gql.post(CART, as_="admin@nova.test"))["data"]["cart"]["id"]
    assert nova != before


async def test_checkout_returns_my_plan_with_the_purchase_counted(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    before = (await gql.post(MY_PLAN, as_=ADMIN))["data"]["myPlan"]  # cached before the purchase
    await fill_journey_cart(gql)

    result = await checkout(gql, "my-plan")

    my_plan = result["myPlan"]
    codes = {a["addOn"]["code"] for a in my_plan["activeAddOns"]}
    assert {"users-1", "integration-shopify", "integration-webhooks"} <= codes
    assert "users-1" not in {a["addOn"]["code"] for a in before["activeAddOns"]}
    # The add-ons it activated are My plan's, under the same ids.
    assert {a["id"] for a in result["activeAddOns"]} <= {a["id"] for a in my_plan["activeAddOns"]}
    assert len(my_plan["activeAddOns"]) == len(before["activeAddOns"]) + 3
    assert my_plan["effectiveLimits"] == {"users": 7, "integrations": 4}
    assert my_plan["monthlyTotal"] == eur("147.70")
    assert my_plan["monthlyTotal"] == result["order"]["newMonthlyTotal"]
    # And it is what myPlan answers afterwards.
    after = (await gql.post(MY_PLAN, as_=ADMIN))["data"]["myPlan"]
    assert {a["id"] for a in after["activeAddOns"]} == {a["id"] for a in my_plan["activeAddOns"]}


CANCEL = """
mutation($id: ID!) {
  cancelAddOn(activeAddOnId: $id) {
    __typename ... on Error { code } ... on CancelAddOnSuccess { activeAddOn { id status } }
  }
}
"""


async def test_order_line_names_the_active_add_on_that_cancel_add_on_takes(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1")
    result = await checkout(gql, "to-cancel")
    line = result["order"]["lines"][0]

    # Ids of other types are refused as unknown ones: an order's, its line's, the catalog add-on's.
    for other in (result["order"]["id"], line["id"], result["cart"]["id"]):
        refused = (await gql.post(CANCEL, {"id": other}, as_=ADMIN))["data"]["cancelAddOn"]
        assert refused == {"__typename": "NotFoundError", "code": "NOT_FOUND"}, other
    cancelled = (await gql.post(CANCEL, {"id": line["activeAddOn"]["id"]}, as_=ADMIN))["data"]["cancelAddOn"]

    assert line["activeAddOn"]["addOn"]["code"] == "users-1"
    assert cancelled["__typename"] == "CancelAddOnSuccess"
    assert cancelled["activeAddOn"]["id"] == line["activeAddOn"]["id"]
    assert len({result["order"]["id"], line["id"], line["activeAddOn"]["id"], result["cart"]["id"]}) == 4


async def test_replayed_checkout_queries_do_not_grow_with_the_order_lines(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    # Each count follows a replay not counted: the checkout's announcement of its new plan (Redis) comes
    # back to this instance too and may drop the plan its answer just cached, once; never in the count.
    await add(gql, "users-1")
    await checkout(gql, "one-line")
    await checkout(gql, "one-line")
    with count_queries() as one_line:
        assert (await checkout(gql, "one-line"))["replayed"] is True
    await fill_journey_cart(gql)
    await add(gql, "storage-500mb")
    await checkout(gql, "five-lines")
    await checkout(gql, "five-lines")
    with count_queries() as five_lines:
        replayed = await checkout(gql, "five-lines")

    assert len(replayed["order"]["lines"]) == 5
    assert five_lines.count == one_line.count


async def test_a_checkout_runs_the_same_statements_for_one_line_and_for_six(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    """Set-based per-line work (docs/design.md): the order lines, the subscriptions and the webhook
    events are one statement each, whatever the number of lines (a fresh checkout, not a replay)."""
    await add(gql, "users-1")
    with count_queries() as one_line:
        one = await checkout(gql, "fresh-one-line")
    for code in SIX_LINES:
        assert (await add(gql, code))["__typename"] == "AddToCartSuccess", code
    with count_queries() as six_lines:
        six = await checkout(gql, "fresh-six-lines")
    replayed = await checkout(gql, "fresh-six-lines")

    assert one["replayed"] is False
    assert six["replayed"] is False
    assert len(one["order"]["lines"]) == 1
    assert [line["addOnCode"] for line in six["order"]["lines"]] == list(SIX_LINES)
    assert len(six["activeAddOns"]) == 6
    assert six_lines.count == one_line.count
    # The answer built from the rows as written is the one read back from the database.
    assert {**replayed, "replayed": False} == six


SIX_LINES = (
    "users-1",
    "integration-shopify",
    "integration-webhooks",
    "storage-500mb",
    "report-abc-curve",
    "credits-1000",
)
