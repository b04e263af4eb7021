"""The invoice preview: plan, add-ons prorated by the days they were available, one-off orders of the
period, coupon discounts over their duration; the lines add up to the total.

acme (EUR, anchor 1) on 2026-11-23: storefront-m 79.00, storage-10gb 19.00 and the free dashboard
since before November, credits-1000 (25.00) since 2026-11-11 12:00 (20 of 30 days: 16.67).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.billing import AddOnSubscription
from app.models.coupons import Coupon
from app.models.enums import AddOnStatus
from app.models.tenancy import Tenant
from app.models.usage import TenantUsage
from app.resolvers.ids import global_id
from app.seed import SeedResult
from tests.api.test_checkout import checkout
from tests.api.test_store import ADMIN, add, apply, eur
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient

# The Start Pack is sold per ERP: acme buys it here as a bling environment (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("acme_runs_bling")

INVOICE = """
query($period: String) {
  invoicePreview(period: $period) {
    __typename
    ... on Error { code field }
    ... on InvoicePreview {
      id
      period { name start end }
      lines { kind code description quantity days unitPrice { amount currency } amount { amount currency } }
      subtotal { amount currency } discount { amount currency } total { amount currency }
    }
  }
}
"""


async def preview(gql: GraphQLClient, period: str | None = None, *, as_: str = ADMIN) -> dict[str, Any]:
    body = await gql.post(INVOICE, {"period": period}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["invoicePreview"]
    assert result["__typename"] == "InvoicePreview", result
    total = sum(Decimal(line["amount"]["amount"]) for line in result["lines"])
    assert str(total) == result["total"]["amount"], "the lines add up to the total"
    return result


async def preview_error(gql: GraphQLClient, period: str | None = None, *, as_: str = ADMIN) -> dict[str, Any]:
    """A failure is a member of ``InvoicePreviewResult``, not a top-level error."""
    body = await gql.post(INVOICE, {"period": period}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["invoicePreview"]
    return result


def amounts(invoice: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(line["kind"], line["code"], line["amount"]["amount"]) for line in invoice["lines"]]


async def test_current_period_by_default_prorates_an_add_on_contracted_mid_period(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    invoice = await preview(gql)

    assert invoice["period"] == {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"}
    assert amounts(invoice) == [
        ("PLAN", "storefront-m", "79.00"),
        ("ADD_ON", "storage-10gb", "19.00"),
        ("ADD_ON", "report-sales-dashboard", "0.00"),
        ("ADD_ON", "credits-1000", "16.67"),
    ]
    assert invoice["lines"][3]["days"] == 20
    assert invoice["total"] == eur("114.67")
    assert invoice["discount"] == eur("0.00")


async def test_purchase_appears_as_in_the_summary_with_its_coupon(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await add(gql, "users-1", 2)
    await add(gql, "start-pack")
    await apply(gql, "WELCOME10")
    order = (await checkout(gql, "inv-1"))["order"]

    invoice = await preview(gql, "2026-11")

    assert amounts(invoice)[4:] == [
        ("ADD_ON", "users-1", "2.61"),
        ("ONE_OFF", "start-pack", "490.00"),
        ("DISCOUNT", "WELCOME10", "-0.26"),  # a monthly-bill coupon: nothing off the one-off Start Pack
    ]
    assert invoice["discount"] == order["discount"]
    # The invoice is what was there before plus exactly what the order said.
    assert Decimal(invoice["total"]["amount"]) == Decimal("114.67") + Decimal(order["total"]["amount"])


@pytest.mark.parametrize(
    ("period", "discount"),
    [("2026-12", "-0.98"), ("2027-01", "-0.98"), ("2027-02", None)],
)
async def test_repeating_coupon_applies_to_monthly_lines_during_its_months(
    gql: GraphQLClient, demo: SeedResult, period: str, discount: str | None
) -> None:
    await add(gql, "users-1", 2)
    await add(gql, "start-pack")
    await apply(gql, "WELCOME10")
    await checkout(gql, "inv-2")

    invoice = await preview(gql, period)

    expected = [
        ("PLAN", "storefront-m", "79.00"),
        ("ADD_ON", "storage-10gb", "19.00"),
        ("ADD_ON", "report-sales-dashboard", "0.00"),
        ("ADD_ON", "credits-1000", "25.00"),
        ("ADD_ON", "users-1", "9.80"),
    ]
    if discount:
        expected.append(("DISCOUNT", "WELCOME10", discount))
    assert amounts(invoice) == expected  # the one-off Start Pack is billed once, in November


async def test_once_coupon_only_discounts_the_purchase_period(gql: GraphQLClient, demo: SeedResult) -> None:
    await add(gql, "users-1", 2)
    await apply(gql, "FIXED5")
    await checkout(gql, "inv-3")

    november = await preview(gql, "2026-11")
    december = await preview(gql, "2026-12")

    assert ("DISCOUNT", "FIXED5", "-2.61") in amounts(november)
    assert [kind for kind, _, _ in amounts(december)].count("DISCOUNT") == 0


async def test_cancelled_add_on_is_prorated_to_its_end(gql: GraphQLClient, demo: SeedResult) -> None:
    await AddOnSubscription.filter(add_on__code="credits-1000").update(
        status=AddOnStatus.CANCELLING, ends_at=dt.datetime(2026, 12, 15, tzinfo=dt.UTC)
    )
    await AddOnSubscription.filter(add_on__code="storage-10gb").update(
        status=AddOnStatus.CANCELLING, ends_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )

    december = await preview(gql, "2026-12")

    assert amounts(december)[1:] == [
        ("ADD_ON", "report-sales-dashboard", "0.00"),
        ("ADD_ON", "credits-1000", "11.29"),  # 25.00 x 14 / 31
    ]


async def test_nova_period_follows_its_anchor_day(gql: GraphQLClient, demo: SeedResult) -> None:
    invoice = await preview(gql, as_="admin@nova.test")

    assert invoice["period"] == {"name": "2026-11", "start": "2026-11-10", "end": "2026-12-10"}
    assert invoice["lines"][0] == {
        "kind": "PLAN",
        "code": "erp-pro",
        "description": "Plan ERP Pro",
        "quantity": 1,
        "days": 30,
        "unitPrice": {"amount": "349.90", "currency": "BRL"},
        "amount": {"amount": "349.90", "currency": "BRL"},
    }
    assert {line["amount"]["currency"] for line in invoice["lines"]} == {"BRL"}


@pytest.mark.parametrize("period", ["2026-13", "nov", "2026-1", "", "2026-11-01", "x" * 1000])
async def test_bad_period_is_a_typed_error(gql: GraphQLClient, demo: SeedResult, period: str) -> None:
    assert await preview_error(gql, period) == {
        "__typename": "InvalidPeriodError",
        "code": "INVALID_PERIOD",
        "field": "period",
    }


async def test_bad_period_beside_another_field_nulls_nothing(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(
        '{ viewer { user { email } } invoicePreview(period: "bad") { __typename ... on Error { code } } }',
        as_=ADMIN,
    )

    assert "errors" not in body
    assert body["data"]["viewer"] == {"user": {"email": ADMIN}}
    assert body["data"]["invoicePreview"] == {"__typename": "InvalidPeriodError", "code": "INVALID_PERIOD"}


async def test_invoice_preview_id_is_the_environments_and_the_periods(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    current = await preview(gql)
    named = await preview(gql, "2026-11")
    december = await preview(gql, "2026-12")
    nova = await preview(gql, "2026-11", as_="admin@nova.test")

    assert current["id"] == named["id"]  # the same invoice, however it is asked for
    assert len({named["id"], december["id"], nova["id"]}) == 3


async def test_period_with_surrounding_spaces_is_accepted(gql: GraphQLClient, demo: SeedResult) -> None:
    assert (await preview(gql, " 2026-11 "))["period"]["name"] == "2026-11"


async def test_only_admins_of_eligible_environments(gql: GraphQLClient, demo: SeedResult) -> None:
    member = await preview_error(gql, as_="member@acme.test")
    legacy = await preview_error(gql, as_="admin@legacy.test")
    body = await gql.post(INVOICE, {"period": None})

    assert (member["__typename"], member["code"]) == ("NotAdminError", "NOT_ADMIN")
    assert (legacy["__typename"], legacy["code"]) == ("NotEligibleError", "NOT_ELIGIBLE")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"] == {"invoicePreview": None}


async def test_storage_overage_is_billed_per_started_gb_over_the_effective_storage(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    # acme (OVERAGE plan): 10 GB included + a 10 GB pack = 20 GB; 21.5 GB used -> 2 started GB.
    acme = await Tenant.get(slug="acme")
    await TenantUsage.create(tenant=acme, storage_bytes=int(21.5 * 1024**3), measured_at=clock.now())

    invoice = await preview(gql)

    overage = invoice["lines"][-1]
    assert (overage["kind"], overage["quantity"]) == ("STORAGE_OVERAGE", 2)
    assert overage["unitPrice"] == eur("2.30")
    assert overage["amount"] == eur("4.60")
    assert invoice["total"] == eur("119.27")  # 114.67 + 4.60


async def test_no_overage_within_the_storage_or_on_a_hard_cap_plan(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    nova = await Tenant.get(slug="nova")  # erp-pro: HARD_CAP
    await TenantUsage.create(tenant=acme, storage_bytes=20 * 1024**3, measured_at=clock.now())
    await TenantUsage.create(tenant=nova, storage_bytes=50 * 1024**3, measured_at=clock.now())

    within = await preview(gql)
    hard_cap = await preview(gql, as_="admin@nova.test")

    assert "STORAGE_OVERAGE" not in [line["kind"] for line in within["lines"]]
    assert "STORAGE_OVERAGE" not in [line["kind"] for line in hard_cap["lines"]]


async def test_forever_coupon_keeps_discounting_later_periods(gql: GraphQLClient, demo: SeedResult) -> None:
    await Coupon.create(code="LOYAL", kind="PERCENT", percent_off=10, duration="FOREVER")
    await add(gql, "users-1", 2)
    await apply(gql, "LOYAL")
    await checkout(gql, "forever")

    later = await preview(gql, "2027-09")

    assert amounts(later)[-2:] == [("ADD_ON", "users-1", "9.80"), ("DISCOUNT", "LOYAL", "-0.98")]
    assert later["discount"] == eur("0.98")


async def test_next_period_bills_the_storage_overage_a_cancelled_storage_pack_will_cause(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    # acme: 10 GB included + the 10 GB pack = 20 GB, 15 GB used. The pack is cancelled: it counts until
    # the end of November, so December has 10 GB for 15 GB used: 5 started GB over.
    acme = await Tenant.get(slug="acme")
    await TenantUsage.create(tenant=acme, storage_bytes=15 * 1024**3, measured_at=clock.now())
    pack = await AddOnSubscription.get(tenant=acme, add_on__code="storage-10gb")
    cancelled = await gql.post(
        "mutation($id: ID!) { cancelAddOn(activeAddOnId: $id) { __typename ... on Error { code } } }",
        {"id": global_id("ActiveAddOn", pack.id)},
        as_=ADMIN,
    )
    assert cancelled["data"]["cancelAddOn"]["__typename"] == "CancelAddOnSuccess", cancelled

    november = await preview(gql, "2026-11")
    december = await preview(gql, "2026-12")

    assert "STORAGE_OVERAGE" not in [line["kind"] for line in november["lines"]]
    overage = december["lines"][-1]
    assert (overage["kind"], overage["quantity"], overage["amount"]) == ("STORAGE_OVERAGE", 5, eur("11.50"))
    assert "storage-10gb" not in [line["code"] for line in december["lines"]]


async def test_an_ended_period_bills_the_storage_in_force_at_its_end_not_a_later_report(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    # acme: 20 GB (10 included + the pack). 25 GB reported in November -> 5 started GB over in November;
    # in December the connector reports 12 GB: November's invoice keeps its 5 GB, December has none.
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), storageBytes=25 * 1024**3)
    clock.advance(dt.timedelta(days=9))  # 2026-12-02 12:00
    await report(gql, key, clock.now(), storageBytes=12 * 1024**3)

    november = await preview(gql, "2026-11")
    december = await preview(gql, "2026-12")

    overage = november["lines"][-1]
    assert (overage["kind"], overage["quantity"], overage["amount"]) == ("STORAGE_OVERAGE", 5, eur("11.50"))
    assert "STORAGE_OVERAGE" not in [line["kind"] for line in december["lines"]]
