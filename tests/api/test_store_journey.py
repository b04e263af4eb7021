"""The seed's purchase journey end to end, one add-on kind at a time, with and without each demo coupon:
add to cart -> summary ("finalizar compra") -> coupon -> checkout ("confirmar compra"), then the order,
My plan, the effective limits, the audit log and the e-mails received by a real SMTP server.

The clock is 2026-11-23 12:00 UTC. acme (EUR, anchor day 1): 8 of the 30 days of November are left,
today included. nova (BRL, anchor day 10) buys the free add-on.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.audit import AuditEntry
from app.models.catalog import AddOn
from app.models.coupons import Coupon
from app.models.enums import Role
from app.models.store import CouponRedemption, Order
from app.models.tenancy import Tenant, User
from app.resolvers.ids import global_id
from app.seed import SeedResult
from tests.api.test_checkout import checkout
from tests.api.test_store import CART, add, apply
from tests.conftest import GraphQLClient
from tests.emails import html_of, language_of, opening, says, subject_of, text_of
from tests.emails import money as formatted
from tests.smtp import SmtpServer

# The Start Pack is sold per ERP: acme buys it here as a bling environment (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("acme_runs_bling")

MY_PLAN = """
{ myPlan { ... on MyPlan {
  effectiveLimits { storageBytes users integrations credits }
  features
  monthlyTotal { amount currency }
  activeAddOns { id name quantity status contractedAt configurationStatus monthlyPrice { amount currency }
           addOn { code } }
} } }
"""


@dataclass(frozen=True)
class Kind:
    """One add-on of the journey and what buying it changes."""

    tenant: str
    code: str
    name: str
    currency: str
    cadence: str
    line_total: str  # unit x quantity, per month or once
    amount_due: str  # on the next invoice (prorated by day for monthly items)
    limits_delta: dict[str, int]
    in_my_plan: bool  # a subscription row (monthly, or raising a limit / granting a feature)
    configuration: str | None = None  # the configurationStatus it shows in My plan
    feature: str | None = None


KINDS = {
    # 19.90 x 8 / 30 = 5.3067 -> 5.31
    "monthly": Kind(
        "acme", "users-5", "5 extra users", "EUR", "MONTHLY", "19.90", "5.31", {"users": 5},
        in_my_plan=True, configuration="NOT_REQUIRED",
    ),
    # 14.90 x 8 / 30 = 3.9733 -> 3.97
    "integration": Kind(
        "acme", "integration-shopify", "Shopify integration", "EUR", "MONTHLY", "14.90", "3.97",
        {"integrations": 1}, in_my_plan=True, configuration="PENDING",
    ),
    "one-off": Kind(
        "acme", "start-pack", "Start Pack", "EUR", "ONE_OFF", "490.00", "490.00", {}, in_my_plan=False
    ),
    "free": Kind(
        "nova", "report-sales-dashboard", "Sales dashboard", "BRL", "MONTHLY", "0.00", "0.00", {},
        in_my_plan=True, configuration="NOT_REQUIRED", feature="report:sales-dashboard",
    ),
}  # fmt: skip

# The discount of each (kind, coupon), or the error that refuses the coupon (the purchase then goes on
# without it). WELCOME10 is 10%, FIXED5 5.00 (never beyond the line), ONEUSE 15%, EXPIRED expired.
OUTCOMES: dict[tuple[str, str], str] = {
    ("monthly", "WELCOME10"): "0.53",  # 0.531
    ("monthly", "FIXED5"): "5.00",
    ("monthly", "ONEUSE"): "0.80",  # 0.7965
    ("integration", "WELCOME10"): "0.40",  # 0.397
    ("integration", "FIXED5"): "3.97",  # all of it, not 5.00
    ("integration", "ONEUSE"): "0.60",  # 0.5955
    ("one-off", "WELCOME10"): "COUPON_NOT_APPLICABLE",  # a monthly-bill coupon: nothing off a one-off
    ("one-off", "FIXED5"): "5.00",
    ("one-off", "ONEUSE"): "73.50",
    ("free", "WELCOME10"): "COUPON_NOT_APPLICABLE",
    ("free", "FIXED5"): "COUPON_NOT_APPLICABLE",
    ("free", "ONEUSE"): "COUPON_NOT_APPLICABLE",
}
for _kind in KINDS:
    OUTCOMES[(_kind, "EXPIRED")] = "COUPON_EXPIRED"

CASES = [
    pytest.param(kind, coupon, id=f"{kind}-{coupon or 'no-coupon'}")
    for kind in KINDS
    for coupon in (None, "WELCOME10", "FIXED5", "EXPIRED", "ONEUSE")
]


def money(amount: str | Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(amount), "currency": currency}


async def my_plan(gql: GraphQLClient, admin: str) -> dict[str, Any]:
    body = await gql.post(MY_PLAN, as_=admin)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["myPlan"]
    return result


@pytest.mark.parametrize(("kind_name", "coupon"), CASES)
async def test_purchase_journey_of_one_add_on(
    gql: GraphQLClient,
    demo: SeedResult,
    clock: FrozenClock,
    smtp_server: SmtpServer,
    kind_name: str,
    coupon: str | None,
) -> None:
    kind = KINDS[kind_name]
    admin = f"admin@{kind.tenant}.test"
    tenant = await Tenant.get(slug=kind.tenant)
    await User.create(tenant=tenant, email=f"owner@{kind.tenant}.test", name="Owner", role=Role.ADMIN)
    before = await my_plan(gql, admin)

    # 1. Add to cart: the line, priced as the summary shows it.
    added = await add(gql, kind.code, as_=admin)
    assert added["__typename"] == "AddToCartSuccess", added
    line = added["cart"]["lines"][0]
    assert (line["addOnCode"], line["quantity"], line["cadence"]) == (kind.code, 1, kind.cadence)
    assert line["isFree"] is (kind.line_total == "0.00")
    assert line["lineTotal"] == money(kind.line_total, kind.currency)
    assert line["amountDue"] == money(kind.amount_due, kind.currency)

    # 2. The optional coupon: a discount at once, or a rejection that says why and changes nothing.
    outcome = OUTCOMES[(kind_name, coupon)] if coupon else "0.00"
    if coupon:
        applied = await apply(gql, coupon, as_=admin)
        if outcome.startswith("COUPON_"):
            assert (applied["code"], applied["field"]) == (outcome, "code")
        else:
            assert applied["cart"]["coupon"]["code"] == coupon
            assert applied["cart"]["summary"]["discount"] == money(outcome, kind.currency)
    discount = Decimal("0.00") if outcome.startswith("COUPON_") else Decimal(outcome)
    coupon_used = coupon if discount else None
    total = Decimal(kind.amount_due) - discount

    # 3. The summary the admin confirms.
    summary = (await gql.post(CART, as_=admin))["data"]["cart"]["summary"]
    monthly = kind.line_total if kind.cadence == "MONTHLY" else "0.00"
    assert summary["subtotal"] == money(kind.amount_due, kind.currency)
    assert summary["discount"] == money(discount, kind.currency)
    assert summary["total"] == money(total, kind.currency)
    assert summary["monthlyIncrease"] == money(monthly, kind.currency)
    assert summary["dueOnNextInvoice"] == money(
        kind.amount_due if monthly != "0.00" else "0.00", kind.currency
    )
    assert summary["oneOffTotal"] == money(
        "0.00" if kind.cadence == "MONTHLY" else kind.amount_due, kind.currency
    )
    before_total = Decimal(before["monthlyTotal"]["amount"])
    assert summary["newMonthlyTotal"] == money(before_total + Decimal(monthly), kind.currency)

    # 4. Checkout: the order is a snapshot of that summary.
    result = await checkout(gql, f"journey-{kind_name}", as_=admin)
    assert result["__typename"] == "CheckoutSuccess", result
    order = result["order"]
    for field in ("subtotal", "discount", "total", "monthlyIncrease", "dueOnNextInvoice", "oneOffTotal",
                  "newMonthlyTotal"):  # fmt: skip
        assert order[field] == summary[field], field
    assert order["couponCode"] == coupon_used
    [order_line] = order["lines"]
    assert (order_line["addOnCode"], order_line["name"], order_line["quantity"]) == (kind.code, kind.name, 1)
    assert order_line["discount"] == money(discount, kind.currency)
    assert order_line["total"] == money(total, kind.currency)
    assert (order_line["activeAddOn"] is not None) is kind.in_my_plan

    # 5. My plan: active at once, effective limits raised at once.
    after = await my_plan(gql, admin)
    expected_limits = {
        name: value + kind.limits_delta.get(name, 0) for name, value in before["effectiveLimits"].items()
    }
    assert after["effectiveLimits"] == expected_limits
    assert after["monthlyTotal"] == summary["newMonthlyTotal"]
    new = [a for a in after["activeAddOns"] if a["id"] not in {b["id"] for b in before["activeAddOns"]}]
    if kind.in_my_plan:
        [active] = new
        assert active["addOn"]["code"] == kind.code
        assert (active["status"], active["contractedAt"]) == ("ACTIVE", "2026-11-23T12:00:00+00:00")
        assert active["configurationStatus"] == kind.configuration
        assert active["monthlyPrice"] == money(monthly, kind.currency)
        assert [a["id"] for a in result["activeAddOns"]] == [active["id"]]
        assert order_line["activeAddOn"]["id"] == active["id"]
    else:
        assert new == []
        assert result["activeAddOns"] == []
    if kind.feature:
        assert kind.feature in after["features"]
        assert kind.feature not in before["features"]

    # 6. The coupon is redeemed once, only when it discounted the purchase.
    redeemed = await CouponRedemption.filter(coupon__code=coupon or "").count()
    assert redeemed == (1 if coupon_used else 0)
    if coupon:
        assert (await Coupon.get(code=coupon)).times_redeemed == redeemed

    # 7. Who bought what is audited.
    [entry] = await AuditEntry.filter(action="checkout")
    assert (entry.actor, global_id("Order", entry.subject_id)) == (admin, order["id"])
    assert entry.details["lines"] == [
        {"add_on": kind.code, "quantity": 1, "unit_price": kind.line_total, "total": str(total)}
    ]
    assert entry.details["coupon"] == coupon_used

    # 8. Every admin of the tenant receives the e-mail, once, over SMTP.
    dispatcher = smtp_server.dispatcher(clock)
    assert await dispatcher.run_once() == 2
    assert await dispatcher.run_once() == 0
    inbox = smtp_server.inbox
    assert sorted(str(m["To"]) for m in inbox.messages) == [admin, f"owner@{kind.tenant}.test"]
    add_on = await AddOn.get(code=kind.code)
    for message in inbox.messages:
        body, locale = text_of(message), language_of(message)
        assert html_of(message)
        name = add_on.names.get(locale.value) or add_on.name
        if kind.line_total == "0.00":
            assert says(locale, "%(name)s x %(quantity)s: free", name=name, quantity="1") in body
        else:
            assert f"- {name} x 1: {formatted(kind.line_total, kind.currency, locale)}" in body
        assert (
            says(
                locale,
                "Total of this purchase: %(amount)s",
                amount=formatted(str(total), kind.currency, locale),
            )
            in body
        )
        assert (f"{coupon_used}: -" in body) is bool(coupon_used)
        assert f"{admin}" in body
        assert ("(API token, Store URL)" in body) is (kind.configuration == "PENDING")
        assert subject_of(message).startswith(
            opening(locale, "Your subscription was updated: order %(order_ref)s")
        )
    assert await Order.filter(tenant_id=tenant.id).count() == 1
