"""The language of a request (saved choice > Accept-Language > environment default > en), ``setMyLocale``,
and what reads in it: catalog texts, conditions, price labels and formatted amounts, never mixed up by the
catalog's answer cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.catalog import AddOn, Plan
from app.models.tenancy import Tenant, User
from app.seed import SeedResult
from app.services import catalog_apply, catalog_file
from app.settings import Settings
from tests.conftest import GraphQLClient, client_for

NBSP = "\xa0"

VIEWER = "{ viewer { locale tenant { locale } user { email locale } } }"
SET = """
mutation Set($locale: Locale) {
  setMyLocale(locale: $locale) {
    __typename
    ... on SetMyLocaleSuccess { saved viewer { locale user { locale } } }
  }
}
"""
CATALOG = """
query Catalog($currency: String) {
  plans { code name description price(currency: $currency) { formatted } }
  addOns {
    code name description priceLabel(currency: $currency)
    conditions { summary }
  }
}
"""


def by_code(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["code"]: item for item in items}


async def viewer(gql: GraphQLClient, as_: str, locale: str | None = None, **kwargs: Any) -> dict[str, Any]:
    body = await gql.post(VIEWER, as_=as_, locale=locale, **kwargs)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["viewer"]
    return result


# --- Which language a request reads in --------------------------------------------------------------------


async def test_the_demo_users_read_their_own_languages(gql: GraphQLClient, demo: SeedResult) -> None:
    """Without Accept-Language: admins read their environment's default, member@acme its saved English."""
    assert (await viewer(gql, "admin@acme.test"))["locale"] == "ES"
    assert (await viewer(gql, "member@acme.test"))["locale"] == "EN"
    assert (await viewer(gql, "admin@nova.test"))["locale"] == "PT_BR"
    assert (await viewer(gql, "member@nova.test"))["locale"] == "PT_BR"
    acme_member = await viewer(gql, "member@acme.test")
    assert acme_member["tenant"] == {"locale": "ES"}
    assert acme_member["user"] == {"email": "member@acme.test", "locale": "EN"}
    assert (await viewer(gql, "admin@acme.test"))["user"]["locale"] is None


async def test_saved_choice_beats_accept_language_which_beats_the_default(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    assert (await viewer(gql, "member@acme.test", "pt-BR"))["locale"] == "EN"  # saved wins
    assert (await viewer(gql, "admin@acme.test", "pt-BR,es;q=0.5"))["locale"] == "PT_BR"  # header
    assert (await viewer(gql, "admin@acme.test", "fr, de;q=0.9"))["locale"] == "ES"  # none we speak
    await Tenant.filter(slug="acme").update(locale="fr")  # a default we do not speak: English
    assert (await viewer(gql, "admin@acme.test"))["locale"] == "EN"
    assert (await viewer(gql, "admin@acme.test"))["tenant"]["locale"] == "EN"


async def test_an_api_key_reads_the_header_else_the_environment_default(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    query = "{ viewer { kind locale user { locale } } }"
    key = demo.connector_keys["nova"]
    assert (await gql.post(query, key=key, locale=None))["data"]["viewer"] == {
        "kind": "API_KEY",
        "locale": "PT_BR",
        "user": None,
    }
    assert (await gql.post(query, key=key, locale="es-ES"))["data"]["viewer"]["locale"] == "ES"


@pytest.mark.parametrize(
    "header",
    [
        "x" * 10_240,
        ("es;q=0.5," * 1200)[:10_240],
        "pt-BR;q=NaN, es;q=inf, en;q=-1, *;q=1",
        ";;;,,,===" * 1000,
        "\t pt-BR \t",
        "%F0%9F%99%82, -;q=0.9, pt-;q=, -BR",
    ],
)
async def test_a_hostile_accept_language_is_harmless(
    gql: GraphQLClient, demo: SeedResult, header: str
) -> None:
    anonymous = await gql.post('{ plans { name } addOn(code: "users-1") { name } }', locale=header)
    assert "errors" not in anonymous
    assert anonymous["data"]["addOn"]["name"] in {
        "1 extra user",
        "1 usuário adicional",
        "1 usuario adicional",
    }
    signed_in = await viewer(gql, "admin@nova.test", header)
    assert signed_in["locale"] in {"PT_BR", "ES", "EN"}


# --- setMyLocale -------------------------------------------------------------------------------------------


async def test_set_my_locale_saves_it_and_the_response_already_reads_in_it(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await gql.post(SET, {"locale": "ES"}, as_="admin@nova.test", locale="pt-BR")

    assert body["data"]["setMyLocale"] == {
        "__typename": "SetMyLocaleSuccess",
        "saved": "ES",
        "viewer": {"locale": "ES", "user": {"locale": "ES"}},
    }
    assert (await User.get(email="admin@nova.test")).locale == "es"
    assert (await viewer(gql, "admin@nova.test", "pt-BR"))["locale"] == "ES"  # beats the header now
    assert (await viewer(gql, "member@nova.test"))["locale"] == "PT_BR"  # only the caller changed


async def test_set_my_locale_null_clears_the_choice(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(SET, {"locale": None}, as_="member@acme.test", locale="pt-BR")

    assert body["data"]["setMyLocale"]["saved"] is None
    assert body["data"]["setMyLocale"]["viewer"] == {"locale": "PT_BR", "user": {"locale": None}}
    assert (await User.get(email="member@acme.test")).locale is None
    assert (await viewer(gql, "member@acme.test"))["locale"] == "ES"  # the environment's default
    omitted = await gql.post("mutation { setMyLocale { __typename } }", as_="member@acme.test")
    assert omitted["data"]["setMyLocale"] == {"__typename": "SetMyLocaleSuccess"}


async def test_set_my_locale_is_for_users_not_api_keys(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(SET, {"locale": "EN"}, key=demo.connector_keys["acme"])

    assert body["data"] == {"setMyLocale": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["setMyLocale"]
    anonymous = await gql.post(SET, {"locale": "EN"})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("value", ["FR", "pt-BR", "", 3])
async def test_set_my_locale_takes_only_the_enum(gql: GraphQLClient, demo: SeedResult, value: Any) -> None:
    body = await gql.post(SET, {"locale": value}, as_="admin@acme.test")

    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await User.get(email="admin@acme.test")).locale is None


async def test_the_cached_credential_reads_the_new_choice_at_once(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    async with client_for(settings, clock, auth_cache_seconds=60) as http:
        cached = GraphQLClient(http, settings, clock)
        assert (await viewer(cached, "admin@acme.test"))["locale"] == "ES"  # now in the credential cache
        await cached.post(SET, {"locale": "PT_BR"}, as_="admin@acme.test")
        assert (await viewer(cached, "admin@acme.test"))["locale"] == "PT_BR"
        await cached.post(SET, {"locale": None}, as_="admin@acme.test")
        assert (await viewer(cached, "admin@acme.test"))["locale"] == "ES"


# --- What reads in it -------------------------------------------------------------------------------------


async def catalog(gql: GraphQLClient, locale: str, currency: str | None = None, **kwargs: Any) -> Any:
    body = await gql.post(CATALOG, {"currency": currency}, locale=locale, **kwargs)
    assert "errors" not in body, body
    return by_code(body["data"]["plans"]), by_code(body["data"]["addOns"])


async def test_catalog_names_and_descriptions_per_locale(gql: GraphQLClient, demo: SeedResult) -> None:
    plans_pt, add_ons_pt = await catalog(gql, "pt-BR")
    plans_es, add_ons_es = await catalog(gql, "es")
    plans_en, add_ons_en = await catalog(gql, "en")

    assert [plans["storefront-m"]["name"] for plans in (plans_pt, plans_es, plans_en)] == [
        "Loja Virtual M",
        "Tienda Online M",
        "Storefront M",
    ]
    assert plans_pt["erp-start"]["description"].startswith("O ERP para uma primeira equipe")
    assert add_ons_es["integration-mercado-livre"]["name"] == "Integración Mercado Libre"
    assert add_ons_pt["start-pack"]["description"].startswith("Sessões de implantação")
    assert add_ons_en["start-pack"]["name"] == "Start Pack"


async def test_a_missing_translation_falls_back_to_english_then_the_column(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await AddOn.filter(code="users-1").update(names={"en": "One more user"})
    await Plan.filter(code="erp-pro").update(names={}, descriptions={}, name="ERP Pro (col)")

    plans, add_ons = await catalog(gql, "es")

    assert add_ons["users-1"]["name"] == "One more user"
    assert plans["erp-pro"]["name"] == "ERP Pro (col)"


async def test_conditions_summary_own_text_or_composed_per_locale(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    _, add_ons_pt = await catalog(gql, "pt-BR")
    _, add_ons_es = await catalog(gql, "es")
    _, add_ons_en = await catalog(gql, "en")

    assert add_ons_pt["start-pack"]["conditions"]["summary"].startswith("Um por ambiente")
    assert add_ons_es["integration-mercado-livre"]["conditions"]["summary"].startswith("Requiere una cuenta")
    assert add_ons_en["make-to-order"]["conditions"]["summary"] == (
        "Plans ERP Pro only; at most 1; requires Fiscal bookkeeping (SPED Fiscal)."
    )
    assert add_ons_pt["make-to-order"]["conditions"]["summary"] == (
        "Somente os planos ERP Pro; no máximo 1; requer Escrituração fiscal (SPED Fiscal)."
    )
    assert add_ons_es["extra-tax-id"]["conditions"]["summary"] == (
        "Solo los planes ERP Start y ERP Pro; como máximo 10."
    )
    assert add_ons_es["users-1"]["conditions"]["summary"] == "Cualquier plan; como máximo 20."
    assert add_ons_pt["integration-shopify"]["conditions"]["summary"] == (
        "Qualquer plano; sem limite de quantidade; requer configuração após a compra."
    )


async def test_price_labels_per_locale(gql: GraphQLClient, demo: SeedResult) -> None:
    _, pt = await catalog(gql, "pt-BR", "BRL")
    _, es = await catalog(gql, "es")
    _, en = await catalog(gql, "en")

    assert [add_ons["report-sales-dashboard"]["priceLabel"] for add_ons in (pt, es, en)] == [
        "GRÁTIS",
        "GRATIS",
        "FREE",
    ]
    assert pt["users-1"]["priceLabel"] == f"R${NBSP}24,90/mês"
    assert es["users-1"]["priceLabel"] == f"4,90{NBSP}€/mes"
    assert en["users-1"]["priceLabel"] == "€4.90/month"
    assert pt["start-pack"]["priceLabel"] == f"R${NBSP}2.490,00 (pagamento único)"
    assert es["start-pack"]["priceLabel"] == f"490,00{NBSP}€ (pago único)"
    assert en["start-pack"]["priceLabel"] == "€490.00 once"


async def test_a_price_label_is_null_where_there_is_no_price(gql: GraphQLClient, demo: SeedResult) -> None:
    query = '{ addOn(code: "users-1") { usd: priceLabel(currency: "USD") brl: priceLabel(currency: "brl") } }'
    assert (await gql.post(query, locale="pt-BR"))["data"]["addOn"] == {
        "usd": None,
        "brl": f"R${NBSP}24,90/mês",
    }
    # The Start Pack is quote-only for acme's ERP (holded): no price, no label; free stays free.
    acme = await gql.post(
        '{ a: addOn(code: "start-pack") { priceLabel } b: addOn(code: "report-sales-dashboard") '
        '{ priceLabel(currency: "USD") } }',
        as_="admin@acme.test",
        locale=None,
    )
    assert acme["data"] == {"a": {"priceLabel": None}, "b": {"priceLabel": "GRATIS"}}


async def test_money_formatted_per_locale(gql: GraphQLClient, demo: SeedResult) -> None:
    await Plan.filter(code="storefront-m").update(prices={"EUR": "1234.56", "BRL": "1234.56"})
    query = """{ plans { code brl: price(currency: "BRL") { amount formatted }
                 eur: price(currency: "EUR") { formatted } } }"""

    def m(body: dict[str, Any]) -> dict[str, Any]:
        return by_code(body["data"]["plans"])["storefront-m"]

    pt = m(await gql.post(query, locale="pt-BR"))
    es = m(await gql.post(query, locale="es"))
    en = m(await gql.post(query, locale="en"))

    assert pt["brl"] == {"amount": "1234.56", "formatted": f"R${NBSP}1.234,56"}
    assert es["eur"]["formatted"] == f"1.234,56{NBSP}€"
    assert en["eur"]["formatted"] == "€1,234.56"


async def test_my_plan_reads_in_the_callers_language(gql: GraphQLClient, demo: SeedResult) -> None:
    query = "{ myPlan { ... on MyPlan { plan { name } monthlyTotal { formatted } activeAddOns { name } } } }"

    body = await gql.post(query, as_="admin@nova.test", locale=None)

    my_plan = body["data"]["myPlan"]
    assert my_plan["plan"]["name"] == "ERP Pro"
    assert "Integração Mercado Livre" in [add_on["name"] for add_on in my_plan["activeAddOns"]]
    assert my_plan["monthlyTotal"]["formatted"].startswith(f"R${NBSP}")


# --- The catalog's answer cache keeps languages apart -----------------------------------------------------


@pytest.fixture
async def cached(settings: Settings, clock: FrozenClock, demo: SeedResult) -> AsyncIterator[GraphQLClient]:
    async with client_for(settings, clock, catalog_cache_seconds=60) as http:
        yield GraphQLClient(http, settings, clock)


async def test_the_catalog_cache_answers_each_language_with_its_own_texts(cached: GraphQLClient) -> None:
    answers = {}
    for _ in range(2):  # the second round is served from the cache
        for locale in ("pt-BR", "es", "en", "pt-BR;q=0.1, es"):
            _, add_ons = await catalog(cached, locale)
            answers.setdefault(locale, []).append(add_ons["report-sales-dashboard"])

    assert answers["pt-BR"] == [{**answers["pt-BR"][0]}] * 2
    assert answers["pt-BR"][1]["name"] == "Painel de vendas"
    assert answers["pt-BR"][1]["priceLabel"] == "GRÁTIS"
    assert answers["es"][1]["name"] == "Panel de ventas"
    assert answers["es"][1]["priceLabel"] == "GRATIS"
    assert answers["pt-BR;q=0.1, es"][1]["priceLabel"] == "GRATIS"
    assert answers["en"][1]["priceLabel"] == "FREE"
    assert answers["en"][1]["conditions"]["summary"] == "Any plan; at most 1."


async def test_the_catalog_cache_keeps_a_saved_choice_apart(cached: GraphQLClient) -> None:
    query = '{ addOn(code: "report-sales-dashboard") { priceLabel } }'
    # Same environment, same header, two users: admin@acme reads Spanish, member@acme saved English.
    admin = await cached.post(query, as_="admin@acme.test", locale=None)
    member = await cached.post(query, as_="member@acme.test", locale=None)
    assert admin["data"]["addOn"]["priceLabel"] == "GRATIS"
    assert member["data"]["addOn"]["priceLabel"] == "FREE"


# --- Conditions in the catalog file -----------------------------------------------------------------------


async def test_catalog_file_conditions_are_applied_diffed_and_exported(
    demo: SeedResult, clock: FrozenClock
) -> None:
    exported = await catalog_apply.export_text()
    document = catalog_file.parse(exported)
    start_pack = next(add_on for add_on in document.add_ons if add_on.code == "start-pack")
    assert start_pack.conditions["es"].startswith("Uno por entorno")
    assert (await catalog_apply.diff(document, now=clock.now())).empty

    changed = exported.replace("Uno por entorno", "Una unidad por entorno")
    planned = await catalog_apply.apply(catalog_file.parse(changed), now=clock.now(), dry_run=True)
    lines = planned.lines()
    assert any(line.startswith("~ add-on start-pack: conditions:") for line in lines), lines
    assert (await AddOn.get(code="start-pack")).conditions["es"].startswith("Uno por entorno")  # dry run

    await catalog_apply.apply(catalog_file.parse(changed), now=clock.now())
    assert (await AddOn.get(code="start-pack")).conditions["es"].startswith("Una unidad por entorno")


async def test_a_user_disabled_while_their_token_is_cached_saves_nothing(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    async with client_for(settings, clock, auth_cache_seconds=30) as http:
        gql = GraphQLClient(http=http, settings=settings, clock=clock)
        assert (await viewer(gql, "admin@nova.test"))["locale"] == "PT_BR"  # the credential is cached now
        await User.filter(email="admin@nova.test").update(is_active=False)  # not announced to the cache

        body = await gql.post(SET, {"locale": "ES"}, as_="admin@nova.test")

    assert body["data"]["setMyLocale"]["__typename"] == "NotFoundError"
    assert (await User.get(email="admin@nova.test")).locale is None


async def test_cart_lines_and_plan_change_previews_name_items_in_the_callers_language(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    added = await gql.post(
        'mutation { addToCart(addOnCode: "users-1", quantity: 1) '
        "{ ... on AddToCartSuccess { cart { lines { name } } } } }",
        as_="admin@nova.test",
        locale=None,
    )
    assert added["data"]["addToCart"]["cart"]["lines"] == [{"name": "1 usuário adicional"}]
    preview = await gql.post(
        '{ planChangePreview(planCode: "storefront-l") '
        "{ ... on PlanChangePreview { currentPlan { name } newPlan { name } } } }",
        as_="admin@acme.test",
        locale=None,
    )
    assert preview["data"]["planChangePreview"] == {
        "currentPlan": {"name": "Tienda Online M"},
        "newPlan": {"name": "Tienda Online L"},
    }
