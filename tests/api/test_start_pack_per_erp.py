"""The Start Pack per ERP (issue 14; seed 002: "precios y disponibilidad por ERP"), and requestQuote.

Demo data: the Start Pack is sold for bling (BRL 2490.00 / EUR 490.00) and tiny (BRL 1990.00 / EUR 390.00)
only. nova (BRL, erp-pro) runs bling: it buys it. acme (EUR, storefront-m) runs holded: quote-only there.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from app.models.audit import AuditEntry
from app.models.catalog import AddOn
from app.models.enums import Role
from app.models.notifications import OutboxEmail
from app.models.quotes import QUOTE_MESSAGE_MAX_LENGTH, QuoteRequest
from app.models.tenancy import Tenant, User
from app.resolvers.ids import key_of
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import GraphQLClient
from tests.emails import language_of, says

ACME = "admin@acme.test"
NOVA = "admin@nova.test"
MONEY = "{ amount currency }"
ERROR = "__typename ... on Error { code message field }"
ADD = f"""
mutation($code: String!) {{
  addToCart(addOnCode: $code) {{
    {ERROR}
    ... on NotSoldForErpError {{ addOnCode erp soldForErps }}
    ... on AddToCartSuccess {{ cart {{ lines {{ addOnCode unitPrice {MONEY} }} }} }}
  }}
}}
"""
CHECKOUT = f"""
mutation($key: String!) {{
  checkout(idempotencyKey: $key) {{
    {ERROR}
    ... on NotSoldForErpError {{ addOnCode erp soldForErps }}
    ... on CheckoutSuccess {{ order {{ total {MONEY} lines {{ addOnCode unitPrice {MONEY} }} }} }}
  }}
}}
"""
START_PACK = f"""
{{
  addOn(code: "start-pack") {{
    soldForErps price {MONEY} prices {MONEY} erpPrices {{ erp prices {MONEY} }}
    availability {{ status reason message erp }}
  }}
}}
"""
REQUEST = f"""
mutation($code: String!, $message: String!, $key: String) {{
  requestQuote(addOnCode: $code, message: $message, idempotencyKey: $key) {{
    {ERROR}
    ... on RequestQuoteSuccess {{ quoteRequest {{ id addOnCode message createdAt status }} }}
  }}
}}
"""


async def request(
    gql: GraphQLClient,
    message: str = "",
    *,
    key: str | None = None,
    code: str = "start-pack",
    as_: str = ACME,
) -> dict[str, Any]:
    body = await gql.post(REQUEST, {"code": code, "message": message, "key": key}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["requestQuote"]
    return result


async def start_pack(gql: GraphQLClient, as_: str | None) -> dict[str, Any]:
    body = await gql.post(START_PACK, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["addOn"]
    return result


# --- The store -------------------------------------------------------------------------------------------


async def test_nova_buys_the_start_pack_at_the_bling_price(gql: GraphQLClient, demo: SeedResult) -> None:
    await Tenant.filter(slug="nova").update(erp="tiny")  # the tiny price first: prices follow the ERP
    tiny = (await gql.post(ADD, {"code": "start-pack"}, as_=NOVA))["data"]["addToCart"]
    assert tiny["cart"]["lines"][-1]["unitPrice"] == {"amount": "1990.00", "currency": "BRL"}
    await gql.post('mutation { removeFromCart(addOnCode: "start-pack") { __typename } }', as_=NOVA)
    await Tenant.filter(slug="nova").update(erp="bling")

    added = (await gql.post(ADD, {"code": "start-pack"}, as_=NOVA))["data"]["addToCart"]
    result = (await gql.post(CHECKOUT, {"key": "pack-1"}, as_=NOVA))["data"]["checkout"]

    assert added["__typename"] == "AddToCartSuccess"
    assert added["cart"]["lines"] == [
        {"addOnCode": "start-pack", "unitPrice": {"amount": "2490.00", "currency": "BRL"}}
    ]
    assert result["__typename"] == "CheckoutSuccess", result
    assert result["order"]["lines"] == added["cart"]["lines"]
    assert result["order"]["total"] == {"amount": "2490.00", "currency": "BRL"}


async def test_acme_cannot_add_the_start_pack_for_its_erp(gql: GraphQLClient, demo: SeedResult) -> None:
    refused = (await gql.post(ADD, {"code": "start-pack"}, as_=ACME))["data"]["addToCart"]

    assert refused["__typename"] == "NotSoldForErpError"
    assert (refused["code"], refused["field"]) == ("NOT_SOLD_FOR_ERP", "addOnCode")
    assert (refused["addOnCode"], refused["erp"], refused["soldForErps"]) == (
        "start-pack",
        "holded",
        ["bling", "tiny"],
    )
    assert "requestQuote" in refused["message"]


async def test_an_environment_without_an_erp_cannot_buy_it_either(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await Tenant.filter(slug="nova").update(erp=None)

    refused = (await gql.post(ADD, {"code": "start-pack"}, as_=NOVA))["data"]["addToCart"]

    assert (refused["code"], refused["erp"]) == ("NOT_SOLD_FOR_ERP", None)


async def test_checkout_refuses_it_when_the_erp_changed_after_adding_it(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    added = (await gql.post(ADD, {"code": "start-pack"}, as_=NOVA))["data"]["addToCart"]
    assert added["__typename"] == "AddToCartSuccess"
    await Tenant.filter(slug="nova").update(erp="holded")

    refused = (await gql.post(CHECKOUT, {"key": "pack-2"}, as_=NOVA))["data"]["checkout"]

    assert (refused["__typename"], refused["erp"]) == ("NotSoldForErpError", "holded")
    assert not await QuoteRequest.exists()


async def test_the_listing_says_where_it_is_sold_and_whether_the_caller_can_buy_it(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    anonymous = await start_pack(gql, None)
    acme = await start_pack(gql, ACME)
    nova = await start_pack(gql, NOVA)

    assert anonymous["soldForErps"] == ["bling", "tiny"]
    assert anonymous["erpPrices"] == [
        {
            "erp": "bling",
            "prices": [{"amount": "2490.00", "currency": "BRL"}, {"amount": "490.00", "currency": "EUR"}],
        },
        {
            "erp": "tiny",
            "prices": [{"amount": "1990.00", "currency": "BRL"}, {"amount": "390.00", "currency": "EUR"}],
        },
    ]
    assert (anonymous["availability"], anonymous["price"]) == (None, {"amount": "490.00", "currency": "EUR"})
    assert acme["availability"]["status"] == "QUOTE_ONLY"
    assert (acme["availability"]["reason"], acme["availability"]["erp"]) == ("NOT_SOLD_FOR_ERP", "holded")
    assert acme["price"] is None  # contact us for prices
    assert nova["availability"] == {"status": "PURCHASABLE", "reason": None, "message": None, "erp": "bling"}
    assert nova["price"] == {"amount": "2490.00", "currency": "BRL"}
    # An add-on sold for every ERP says so with an empty list.
    users = (await gql.post('{ addOn(code: "users-1") { soldForErps erpPrices { erp } } }'))["data"]["addOn"]
    assert users == {"soldForErps": [], "erpPrices": []}


# --- requestQuote ----------------------------------------------------------------------------------------


async def test_acme_asks_for_a_quote(gql: GraphQLClient, demo: SeedResult, settings: Settings) -> None:
    result = await request(gql, "  We run Holded with 3 warehouses.\nCall us on Monday.  ")

    assert result["__typename"] == "RequestQuoteSuccess", result
    quote = result["quoteRequest"]
    assert (quote["addOnCode"], quote["status"]) == ("start-pack", "WAITING")
    assert quote["message"] == "We run Holded with 3 warehouses.\nCall us on Monday."
    assert quote["createdAt"].startswith("2026-11-23T12:00:00")
    row = await QuoteRequest.get(id=key_of(quote["id"], "QuoteRequest", field="id"))
    acme = await Tenant.get(slug="acme")
    assert (row.tenant_id, row.requested_by, row.handled_at) == (acme.id, ACME, None)
    mails = {mail.to_address: mail for mail in await OutboxEmail.all()}
    assert set(mails) == {settings.ops_email, ACME}
    vendor = mails[settings.ops_email]
    assert (vendor.kind, vendor.locale) == ("quote_request", "en")  # vendor-facing, in English
    for text in ("acme", "holded", "start-pack", ACME, "3 warehouses"):
        assert text in vendor.body
        assert text in str(vendor.html_body)
    customer = mails[ACME]
    assert customer.kind == "quote_received"
    locale = language_of(customer)
    contact = "Its price and availability depend on your ERP: our team will contact you shortly."
    assert says(locale, contact) in customer.body
    assert "holded" not in customer.body
    assert all(mail.tenant_id == acme.id for mail in mails.values())
    audit = await AuditEntry.get(action="quote.request")
    assert (audit.tenant_id, audit.actor, audit.subject_id) == (acme.id, ACME, str(row.id))
    assert (audit.details["add_on_code"], audit.details["erp"]) == ("start-pack", "holded")


async def test_the_same_key_replays_the_request_without_a_second_email(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    first = await request(gql, "Please call", key="quote-1")
    again = await request(gql, "Please call", key="quote-1")
    other = await request(gql, "Please call", key="quote-2")

    assert again == first
    assert other["quoteRequest"]["id"] != first["quoteRequest"]["id"]
    assert await QuoteRequest.all().count() == 2
    assert await OutboxEmail.all().count() == 4  # ops and acme's admin, twice
    assert await AuditEntry.filter(action="quote.request").count() == 2


async def test_the_same_key_for_another_request_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    await request(gql, "Please call", key="quote-1")

    other_message = await request(gql, "Something else", key="quote-1")

    assert (other_message["code"], other_message["field"]) == ("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
    assert await QuoteRequest.all().count() == 1


async def test_a_different_add_on_under_the_same_key_is_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    await AddOn.filter(code="credits-5000").update(erp_prices={"bling": {"EUR": "99.00", "BRL": "495.00"}})
    await request(gql, key="quote-1")

    refused = await request(gql, key="quote-1", code="credits-5000")

    assert refused["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await QuoteRequest.all().count() == 1


async def test_no_quote_is_needed_where_it_is_sold(gql: GraphQLClient, demo: SeedResult) -> None:
    sold_for_bling = await request(gql, as_=NOVA)
    sold_everywhere = await request(gql, code="users-1")

    assert (sold_for_bling["code"], sold_for_bling["field"]) == ("QUOTE_NOT_NEEDED", "addOnCode")
    assert sold_everywhere["code"] == "QUOTE_NOT_NEEDED"
    assert not await QuoteRequest.exists()
    assert not await OutboxEmail.exists()


async def test_unknown_and_withdrawn_add_ons(gql: GraphQLClient, demo: SeedResult) -> None:
    await AddOn.filter(code="report-abc-curve").update(is_active=False)

    for code in ("nope", "x" * 10_000, "start-pack\x00", ""):
        assert (await request(gql, code=code))["code"] == "NOT_FOUND"
    assert (await request(gql, code="report-abc-curve"))["code"] == "ADD_ON_UNAVAILABLE"
    assert not await QuoteRequest.exists()


async def test_hostile_and_long_messages_are_refused(gql: GraphQLClient, demo: SeedResult) -> None:
    longest = "é" * QUOTE_MESSAGE_MAX_LENGTH
    for message in (
        "x" * (QUOTE_MESSAGE_MAX_LENGTH + 1),
        "nul\x00byte",
        "bell\x07",
        "esc\x1b[31m",
        "del\x7f",
    ):
        refused = await request(gql, message)
        assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "message"), message
    assert not await QuoteRequest.exists()

    kept = await request(gql, f"  {longest}  ")
    script = await request(gql, "<script>alert(1)</script>'; DROP TABLE quote_request; --\ttab")

    assert kept["quoteRequest"]["message"] == longest
    assert (
        script["quoteRequest"]["message"] == "<script>alert(1)</script>'; DROP TABLE quote_request; --\ttab"
    )
    assert await QuoteRequest.all().count() == 2


async def test_a_bad_idempotency_key_is_invalid_input(gql: GraphQLClient, demo: SeedResult) -> None:
    for key in ("", "with space", "k" * 129):
        refused = await request(gql, key=key)
        assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "idempotencyKey")


async def test_members_and_anonymous_callers_cannot_ask(gql: GraphQLClient, demo: SeedResult) -> None:
    member = await request(gql, as_="member@acme.test")
    anonymous = await gql.post(REQUEST, {"code": "start-pack", "message": ""})

    assert member["code"] == "NOT_ADMIN"
    assert anonymous["data"]["requestQuote"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not await QuoteRequest.exists()


async def test_two_admins_with_the_same_key_at_once_make_one_request(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    acme = await Tenant.get(slug="acme")
    await User.create(tenant=acme, email="second@acme.test", name="Second", role=Role.ADMIN)
    callers = [ACME, "second@acme.test"] * 3
    for caller in set(callers):
        await gql.token_for(caller)

    results = await asyncio.gather(*(request(gql, "Call us", key="same", as_=caller) for caller in callers))

    assert Counter(result["__typename"] for result in results) == {"RequestQuoteSuccess": len(callers)}
    assert len({result["quoteRequest"]["id"] for result in results}) == 1
    assert await QuoteRequest.all().count() == 1
    assert await OutboxEmail.all().count() == 3  # ops and acme's two admins, once
    assert await AuditEntry.filter(action="quote.request").count() == 1
