"""The graphql-transport-ws protocol as its spec says, against a real server socket (issue 6)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live import LiveGateway, gateway_env, live_gateway

PROTOCOL = "graphql-transport-ws"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp_path = tmp_path_factory.mktemp("ws")
    env = gateway_env(
        tmp_path,
        TOLLGATE_WEBSOCKET_ALLOWED_ORIGINS="https://backoffice.example",
        TOLLGATE_WEBSOCKET_INIT_TIMEOUT_SECONDS="1",
    )
    with live_gateway(env, tmp_path / "gateway.log") as running:
        yield running


def ws_url(gateway: LiveGateway) -> str:
    return gateway.url.replace("http://", "ws://") + "/graphql"


async def closed_with(connection: ClientConnection) -> int:
    async def drain() -> None:
        while True:
            await connection.recv()

    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(drain(), timeout=5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def send(connection: ClientConnection, message: dict[str, Any]) -> None:
    await connection.send(json.dumps(message))


async def receive(connection: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        frame = await connection.recv()
    assert isinstance(frame, str), "graphql-transport-ws messages are text frames"
    message: dict[str, Any] = json.loads(frame)
    return message


async def test_a_foreign_origin_is_refused_at_the_handshake(gateway: LiveGateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(gateway), subprotocols=[PROTOCOL], origin="https://evil.test"):  # type: ignore[arg-type]
            pass

    assert refused.value.response.status_code == 403


async def test_a_configured_origin_may_connect(gateway: LiveGateway) -> None:
    token = gateway.token("admin@acme.test")
    async with connect(
        ws_url(gateway),
        subprotocols=[PROTOCOL],
        origin="https://backoffice.example",  # type: ignore[arg-type]
    ) as connection:
        await send(connection, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert (await receive(connection))["type"] == "connection_ack"


async def test_the_legacy_protocol_is_not_spoken(gateway: LiveGateway) -> None:
    async with connect(ws_url(gateway), subprotocols=["graphql-ws"]) as connection:  # type: ignore[list-item]
        assert await closed_with(connection) == 4406


@pytest.mark.parametrize(
    "payload", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}]
)
async def test_connection_init_without_valid_credentials_closes_with_4403(
    gateway: LiveGateway, payload: dict[str, str]
) -> None:
    async with connect(ws_url(gateway), subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        await send(connection, {"type": "connection_init", "payload": payload})
        assert await closed_with(connection) == 4403


async def test_subscribing_before_connection_init_closes_with_4401(gateway: LiveGateway) -> None:
    async with connect(ws_url(gateway), subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        await send(connection, {"id": "1", "type": "subscribe", "payload": {"query": "{ plans { code } }"}})
        assert await closed_with(connection) == 4401


async def test_no_connection_init_in_time_closes_with_4408(gateway: LiveGateway) -> None:
    async with connect(ws_url(gateway), subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        assert await closed_with(connection) == 4408


async def test_an_authenticated_connection_runs_operations(gateway: LiveGateway) -> None:
    key = gateway.connector_key("nova")
    async with connect(ws_url(gateway), subprotocols=[PROTOCOL]) as connection:  # type: ignore[list-item]
        await send(connection, {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        assert (await receive(connection))["type"] == "connection_ack"
        query = "{ viewer { kind tenant { slug } } }"
        await send(connection, {"id": "q1", "type": "subscribe", "payload": {"query": query}})
        result = await receive(connection)
        complete = await receive(connection)

    assert result["type"] == "next"
    assert result["payload"]["data"]["viewer"]["tenant"]["slug"] == "nova"
    assert complete == {"id": "q1", "type": "complete"}
