"""Failures read in the caller's language (issue: "every user-facing error message translated"): the saved
user preference, else ``Accept-Language``, else the environment's default; codes never change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from tortoise.context import TortoiseContext
from websockets.asyncio.client import connect

from app.auth.api_keys import generate_api_key
from app.clock import FrozenClock
from app.i18n import Locale, gettext
from app.main import create_app
from app.models.tenancy import ApiKey, Tenant, User
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import GraphQLClient
from tests.live import PROTOCOLS, WAIT, serving

ADMIN = "admin@acme.test"
APPLY = """
mutation Apply($code: String!) {
  applyCoupon(code: $code) { __typename ... on Error { code message field } }
}
"""


async def apply_unknown_coupon(gql: GraphQLClient, **options: Any) -> dict[str, Any]:
    body = await gql.post(APPLY, {"code": "NOPE"}, as_=ADMIN, **options)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["applyCoupon"]
    return result


async def key_with(scope: str, tenant: str = "acme") -> str:
    key = generate_api_key()
    await ApiKey.create(
        tenant=await Tenant.get(slug=tenant),
        name=scope,
        prefix=key.prefix,
        key_hash=key.key_hash,
        scopes=[scope],
    )
    return key.plaintext


async def test_a_union_error_member_reads_in_the_language_of_accept_language(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    english = await apply_unknown_coupon(gql)
    portuguese = await apply_unknown_coupon(gql, locale="pt-BR")
    spanish = await apply_unknown_coupon(gql, locale="es-ES,es;q=0.9")

    assert english["message"] == "There is no coupon 'NOPE'."
    assert portuguese["message"] == "Não há nenhum cupom 'NOPE'."
    assert spanish["message"] == "No hay ningún cupón 'NOPE'."
    # The code, the type and the field stay what they are in every language.
    for result in (english, portuguese, spanish):
        assert (result["__typename"], result["code"], result["field"]) == (
            "CouponNotFoundError",
            "COUPON_NOT_FOUND",
            "code",
        )


async def test_without_a_header_the_environments_default_language_answers(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await Tenant.filter(slug="acme").update(locale="es")
    await User.filter(email=ADMIN).update(locale=None)

    result = await apply_unknown_coupon(gql, locale=None)

    assert result["message"] == "No hay ningún cupón 'NOPE'."
    assert result["code"] == "COUPON_NOT_FOUND"


async def test_the_users_saved_language_beats_the_header_and_the_environment(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await Tenant.filter(slug="acme").update(locale="es")
    await User.filter(email=ADMIN).update(locale="pt-BR")

    result = await apply_unknown_coupon(gql, locale="es")

    assert result["message"] == "Não há nenhum cupom 'NOPE'."


async def test_a_header_for_a_language_we_do_not_have_falls_back_to_the_environments(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await Tenant.filter(slug="acme").update(locale="pt-BR")

    result = await apply_unknown_coupon(gql, locale="de-DE, fr;q=0.8")

    assert result["message"] == "Não há nenhum cupom 'NOPE'."


async def test_top_level_unauthenticated_and_forbidden_read_in_pt_br(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    query = "{ alerts(first: 5) { totalCount } }"
    bad_key = "tg_" + "x" * 40
    unknown_en = (await gql.post(query, key=bad_key))["errors"][0]
    unknown_pt = (await gql.post(query, key=bad_key, locale="pt-BR"))["errors"][0]
    key = await key_with("process:start")
    forbidden_en = (await gql.post(query, key=key))["errors"][0]
    forbidden_pt = (await gql.post(query, key=key, locale="pt-BR"))["errors"][0]

    assert unknown_en["extensions"]["code"] == unknown_pt["extensions"]["code"] == "UNAUTHENTICATED"
    assert unknown_pt["message"] == gettext(Locale.PT_BR, unknown_en["message"]) != unknown_en["message"]
    assert forbidden_en["extensions"] == forbidden_pt["extensions"]
    assert forbidden_pt["extensions"]["code"] == "FORBIDDEN"
    assert forbidden_en["message"].startswith("This field needs a user or an API key with the ")
    assert forbidden_pt["message"].startswith("Este campo precisa de um usuário ou de uma chave de API com o")
    # The scopes are joined the Portuguese way ("ou"), not the English one.
    assert " ou " in forbidden_pt["message"]
    assert " or " not in forbidden_pt["message"]


async def test_a_subscription_error_over_websocket_reads_in_the_sockets_language(
    db: TortoiseContext, demo: SeedResult, settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    await Tenant.filter(slug="acme").update(locale="en")
    key = await key_with("process:start")
    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False)
    async with (
        serving(app) as address,
        connect(
            f"ws://{address}/graphql", subprotocols=PROTOCOLS, additional_headers={"Accept-Language": "es"}
        ) as socket,
    ):
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        query = "subscription { limitAlerts { kind } }"
        await socket.send(json.dumps({"id": "a", "type": "subscribe", "payload": {"query": query}}))
        async with asyncio.timeout(WAIT):
            message = json.loads(await socket.recv())

    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert errors[0]["message"].startswith("Este campo necesita un usuario o una clave de API con el ámbito ")


async def test_a_429_body_reads_in_the_language_of_accept_language(
    db: TortoiseContext, demo: SeedResult, settings: Settings, clock: FrozenClock
) -> None:
    limited = settings.model_copy(update={"rate_limit_per_second": 0.001, "rate_limit_burst": 1})
    app = create_app(limited, clock=clock, manage_orm=False, run_background_tasks=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tollgate.test") as http,
    ):
        headers = {"Accept-Language": "es"}
        await http.post("/graphql", json={"query": "{ plans { code } }"}, headers=headers)
        response = await http.post("/graphql", json={"query": "{ plans { code } }"}, headers=headers)

    assert response.status_code == 429
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert (
        error["message"]
        == f"Demasiadas solicitudes: vuelva a intentarlo en {error['extensions']['retryAfter']} s."
    )


async def test_a_413_body_reads_in_the_language_of_accept_language(
    db: TortoiseContext, settings: Settings, clock: FrozenClock
) -> None:
    capped = settings.model_copy(update={"max_body_bytes": 1024})
    app = create_app(capped, clock=clock, manage_orm=False, run_background_tasks=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tollgate.test") as http,
    ):
        response = await http.post(
            "/graphql",
            json={"query": "{ plans { code } }" + " " * 2000},
            headers={"Accept-Language": "pt-BR"},
        )

    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert error["message"] == "O corpo da requisição é maior que 1024 bytes."
