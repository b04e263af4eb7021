"""Issue 16's journey on the demo data, as the clients see it (run with ``-s`` to read the answers):

1. Each demo user, without ``Accept-Language``, reads their language: acme's admin the environment's Spanish,
   acme's member the English they saved, nova's admin the environment's Portuguese.
2. nova's admin reads the add-on store in Portuguese: names, conditions, price labels, amounts.
3. acme's admin mistypes a coupon: the error comes back in Spanish, exactly as the client receives it.
4. nova's admin buys an add-on: the purchase e-mail is in Portuguese, with a text and an HTML part.
5. nova's admin switches to Spanish with ``setMyLocale``: the next answers are in Spanish.
"""

from __future__ import annotations

import json

from app.models.notifications import OutboxEmail
from app.seed import SeedResult
from tests.conftest import GraphQLClient

VIEWER = "{ viewer { locale user { email locale } tenant { slug locale } } }"
STORE = """
query Store {
  addOns(category: USERS) {
    code name priceLabel price { formatted } conditions { summary }
  }
  addOn(code: "start-pack") { name priceLabel conditions { summary } }
}
"""
COUPON = """
mutation Coupon($code: String!) {
  applyCoupon(code: $code) { __typename ... on Error { code message field } }
}
"""
ADD = """
mutation Add($code: String!) {
  addToCart(addOnCode: $code, quantity: 1) { __typename ... on Error { code message } }
}
"""
CHECKOUT = """
mutation Checkout($key: String!) {
  checkout(idempotencyKey: $key) {
    __typename ... on Error { code message }
    ... on CheckoutSuccess { order { total { formatted } } }
  }
}
"""
SET_LOCALE = """
mutation SetLocale($locale: Locale) {
  setMyLocale(locale: $locale) { ... on SetMyLocaleSuccess { saved viewer { locale } } }
}
"""


def show(title: str, value: object) -> None:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
    print(f"\n--- {title}\n{text}")


async def test_the_customers_read_their_languages(gql: GraphQLClient, demo: SeedResult) -> None:
    # 1. Which language each demo user reads, with no Accept-Language header.
    readers = {}
    for email in ("admin@acme.test", "member@acme.test", "admin@nova.test", "member@nova.test"):
        viewer = (await gql.post(VIEWER, as_=email, locale=None))["data"]["viewer"]
        readers[email] = viewer["locale"]
        show(email, viewer)
    assert readers == {
        "admin@acme.test": "ES",
        "member@acme.test": "EN",
        "admin@nova.test": "PT_BR",
        "member@nova.test": "PT_BR",
    }
    # Accept-Language decides when nothing is saved; a saved choice beats it.
    assert (await gql.post(VIEWER, as_="admin@acme.test", locale="pt-BR"))["data"]["viewer"][
        "locale"
    ] == "PT_BR"
    assert (await gql.post(VIEWER, as_="member@acme.test", locale="es"))["data"]["viewer"]["locale"] == "EN"

    # 2. The store in Portuguese.
    store = (await gql.post(STORE, as_="admin@nova.test", locale=None))["data"]
    show("nova's store (pt-BR)", store)
    assert store["addOns"][0]["priceLabel"].startswith("R$")
    assert store["addOns"][0]["priceLabel"].endswith("/mês")
    assert "," in store["addOns"][0]["price"]["formatted"]
    free = await gql.post('{ addOn(code: "report-sales-dashboard") { priceLabel } }', locale="pt-BR")
    assert free["data"]["addOn"]["priceLabel"] == "GRÁTIS"
    free = await gql.post('{ addOn(code: "report-sales-dashboard") { priceLabel } }', locale="es")
    assert free["data"]["addOn"]["priceLabel"] == "GRATIS"

    # 3. A typed error in Spanish, as acme's admin receives it.
    error = await gql.post(COUPON, {"code": "NOPE"}, as_="admin@acme.test", locale=None)
    show("applyCoupon('NOPE') as admin@acme.test, no Accept-Language", error)
    answer = error["data"]["applyCoupon"]
    assert (answer["__typename"], answer["code"], answer["field"]) == (
        "CouponNotFoundError",
        "COUPON_NOT_FOUND",
        "code",
    )
    assert "cupón" in answer["message"]

    # 4. A purchase e-mail in Portuguese.
    added = await gql.post(ADD, {"code": "users-1"}, as_="admin@nova.test", locale=None)
    assert added["data"]["addToCart"]["__typename"] == "AddToCartSuccess", added
    bought = await gql.post(CHECKOUT, {"key": "journey-16"}, as_="admin@nova.test", locale=None)
    show("checkout as admin@nova.test", bought)
    assert bought["data"]["checkout"]["__typename"] == "CheckoutSuccess", bought
    email = await OutboxEmail.get(to_address="admin@nova.test", kind="purchase")
    assert (email.locale, email.html_body is not None) == ("pt-BR", True)
    show(
        "the purchase e-mail's text part", f"Subject: {email.subject}\nTo: {email.to_address}\n\n{email.body}"
    )
    assert email.subject.startswith("Sua assinatura foi atualizada")

    # 5. A saved choice: nova's admin switches to Spanish.
    switched = await gql.post(SET_LOCALE, {"locale": "ES"}, as_="admin@nova.test", locale=None)
    show("setMyLocale(ES)", switched)
    assert switched["data"]["setMyLocale"] == {"saved": "ES", "viewer": {"locale": "ES"}}
    again = await gql.post(COUPON, {"code": "NOPE"}, as_="admin@nova.test", locale="pt-BR")
    assert "cupón" in again["data"]["applyCoupon"]["message"]
