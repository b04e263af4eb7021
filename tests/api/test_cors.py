"""CORS for the SPA: ``TOLLGATE_CORS_ALLOWED_ORIGINS`` opens ``/graphql`` (HTTP and WebSocket) to the pages of
the origins it lists, and nothing else."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.clock import FrozenClock, SystemClock
from app.main import create_app
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import client_for, production_changes
from tests.live import PROTOCOLS, serving

SPA = "https://backoffice.example"
OTHER = "https://evil.example"
PLANS = {"query": "{ plans { code } }"}


def preflight(origin: str, headers: str = "authorization,content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


async def test_a_preflight_from_a_listed_origin_is_answered(settings: Settings, clock: FrozenClock) -> None:
    async with client_for(settings, clock, cors_allowed_origins=(SPA,)) as client:
        response = await client.options(
            "/graphql", headers=preflight(SPA, "authorization,content-type,accept-language,x-request-id")
        )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA
    assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    allowed = {name.lower() for name in response.headers["access-control-allow-headers"].split(", ")}
    assert {"authorization", "content-type", "accept", "accept-language", "x-request-id"} <= allowed
    assert response.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in response.headers  # tokens go in Authorization


async def test_a_listed_origin_reads_the_answer_and_its_exposed_headers(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    async with client_for(settings, clock, cors_allowed_origins=(SPA,)) as client:
        response = await client.post("/graphql", json=PLANS, headers={"Origin": SPA})

    assert response.status_code == 200
    assert response.json()["data"]["plans"]
    assert response.headers["access-control-allow-origin"] == SPA
    exposed = {name.lower() for name in response.headers["access-control-expose-headers"].split(", ")}
    assert {"retry-after", "x-request-id"} <= exposed
    assert "origin" in response.headers["vary"].lower()


async def test_an_unlisted_origin_gets_no_cors_headers(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    async with client_for(settings, clock, cors_allowed_origins=(SPA,)) as client:
        refused = await client.options("/graphql", headers=preflight(OTHER))
        answered = await client.post("/graphql", json=PLANS, headers={"Origin": OTHER})

    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # Served (a server cannot tell a browser from curl), but the browser does not let the page read it.
    assert answered.status_code == 200
    assert "access-control-allow-origin" not in answered.headers


async def test_without_a_list_no_origin_is_opened(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    async with client_for(settings, clock) as client:
        refused = await client.options("/graphql", headers=preflight(SPA))
        answered = await client.post("/graphql", json=PLANS, headers={"Origin": SPA})

    assert refused.status_code == 405
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in answered.headers


@pytest.mark.parametrize("path", ["/operator/graphql", "/metrics", "/healthz", "/invoices/X-1.pdf"])
async def test_only_the_graphql_endpoint_is_opened(settings: Settings, clock: FrozenClock, path: str) -> None:
    async with client_for(settings, clock, cors_allowed_origins=(SPA,)) as client:
        refused = await client.options(path, headers=preflight(SPA))
        answered = await client.get(path, headers={"Origin": SPA})

    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in answered.headers


async def test_the_edge_refusals_are_readable_by_a_listed_page(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    changes: dict[str, Any] = {"cors_allowed_origins": (SPA,), "max_body_bytes": 1024}
    async with client_for(settings, clock, **changes) as client:
        too_large = await client.post(
            "/graphql",
            content=json.dumps({"query": "{ plans { code } }", "x": "y" * 2048}),
            headers={"Origin": SPA, "Content-Type": "application/json"},
        )
        not_json = await client.post(
            "/graphql", content="{ plans { code } }", headers={"Origin": SPA, "Content-Type": "text/plain"}
        )
    async with client_for(
        settings, clock, cors_allowed_origins=(SPA,), rate_limit_per_second=0.001, rate_limit_burst=1
    ) as client:
        await client.post("/graphql", json=PLANS, headers={"Origin": SPA})
        limited = await client.post("/graphql", json=PLANS, headers={"Origin": SPA})
        # A preflight is not a request of the API: never rate limited.
        again = await client.options("/graphql", headers=preflight(SPA))

    assert too_large.status_code == 413
    assert not_json.status_code == 415
    assert limited.status_code == 429
    assert "retry-after" in limited.headers
    for response in (too_large, not_json, limited):
        assert response.headers["access-control-allow-origin"] == SPA
    assert again.status_code == 200


def test_the_origins_are_kept_as_browsers_send_them() -> None:
    settings = Settings(cors_allowed_origins=" https://App.Example.com:443 ,http://localhost:5173,,")

    assert settings.cors_allowed_origins == ("https://app.example.com", "http://localhost:5173")


@pytest.mark.parametrize(
    "value",
    [
        "https://backoffice.example/",  # a trailing slash never matches an Origin header
        "https://backoffice.example/app",
        "backoffice.example",
        "ftp://backoffice.example",
        "https://user@backoffice.example",
        "https://backoffice.example:99999",
        "*,https://backoffice.example",
    ],
)
def test_what_is_not_an_origin_is_refused_at_startup(value: str) -> None:
    with pytest.raises(ValueError, match="TOLLGATE_CORS_ALLOWED_ORIGINS"):
        Settings(cors_allowed_origins=value)


def test_any_origin_is_refused_in_production_only() -> None:
    assert Settings(cors_allowed_origins="*").cors_allowed_origins == ("*",)
    with pytest.raises(ValueError, match="refused when TOLLGATE_ENV=production"):
        Settings(cors_allowed_origins="*", **production_changes())


def test_the_websocket_variable_is_an_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOLLGATE_CORS_ALLOWED_ORIGINS", raising=False)
    monkeypatch.setenv("TOLLGATE_WEBSOCKET_ALLOWED_ORIGINS", "https://old.example")
    assert Settings().cors_allowed_origins == ("https://old.example",)

    monkeypatch.setenv("TOLLGATE_CORS_ALLOWED_ORIGINS", SPA)  # both set: the new name wins
    assert Settings().cors_allowed_origins == (SPA,)


async def test_the_alias_variable_governs_websocket_origins(
    settings: Settings, demo: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOLLGATE_CORS_ALLOWED_ORIGINS", raising=False)
    monkeypatch.setenv("TOLLGATE_WEBSOCKET_ALLOWED_ORIGINS", SPA)
    origins = Settings().cors_allowed_origins
    app = create_app(
        settings.model_copy(update={"cors_allowed_origins": origins}),
        clock=SystemClock(),
        manage_orm=False,
        run_background_tasks=False,
    )
    async with serving(app) as address:
        url = f"ws://{address}/graphql"
        async with connect(url, subprotocols=PROTOCOLS, origin=SPA) as socket:  # type: ignore[arg-type]
            key = demo.connector_keys["acme"]
            await socket.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
            )
            assert json.loads(await socket.recv())["type"] == "connection_ack"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=PROTOCOLS, origin=OTHER):  # type: ignore[arg-type]
                pass
        # CORS is for HTTP: the handshake of a listed origin is not a CORS request and needs no headers.
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            assert (await http.options("/graphql", headers=preflight(SPA))).status_code == 200

    assert refused.value.response.status_code == 403
