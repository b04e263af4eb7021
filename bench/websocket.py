"""Scenarios over WebSocket (``graphql-transport-ws``): memory per idle connection and alert fan-out."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.scenarios import LIMIT_ALERTS

PROTOCOL = Subprotocol("graphql-transport-ws")


def raise_open_files_limit() -> None:
    """The soft limit on open files up to the hard one, for this process and the server it starts: ten
    thousand connections need as many descriptors on each side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def open_initialized(url: str, token: str, count: int, *, batch: int = 100) -> list[ClientConnection]:
    """``count`` connections, each acknowledged after ``connection_init`` with the token."""

    async def one() -> ClientConnection:
        connection = await connect(url, subprotocols=[PROTOCOL], ping_interval=None, open_timeout=30)
        await connection.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        reply = json.loads(await asyncio.wait_for(connection.recv(), 30))
        if reply.get("type") != "connection_ack":
            raise RuntimeError(f"connection_init refused: {reply}")
        return connection

    connections: list[ClientConnection] = []
    for first in range(0, count, batch):
        connections += await asyncio.gather(*(one() for _ in range(min(batch, count - first))))
    return connections


async def close_all(connections: list[ClientConnection]) -> None:
    await asyncio.gather(*(connection.close() for connection in connections), return_exceptions=True)


@dataclass
class FanOutRound:
    state: str
    report_ms: float  # the reportUsage request itself
    first_ms: float  # report sent -> first subscriber's delivery
    last_ms: float  # report sent -> last subscriber's delivery
    cpu_ms: float  # the server's CPU time from the report sent to the last delivery (less noisy than time)


class AlertSubscribers:
    """Subscribers of ``limitAlerts``; each records when it receives its next alert."""

    def __init__(self, connections: list[ClientConnection]) -> None:
        self.connections = connections
        self.received: list[float | None] = [None] * len(connections)
        self.payloads: list[Any] = [None] * len(connections)
        self.tasks: list[asyncio.Task[None]] = []
        self.problem: str | None = None

    async def subscribe(self) -> None:
        message = json.dumps({"id": "alerts", "type": "subscribe", "payload": {"query": LIMIT_ALERTS}})
        await asyncio.gather(*(connection.send(message) for connection in self.connections))
        self.tasks = [asyncio.create_task(self._listen(n, c)) for n, c in enumerate(self.connections)]

    async def _listen(self, index: int, connection: ClientConnection) -> None:
        async for raw in connection:
            received = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "next" and self.received[index] is None:
                self.received[index] = received
                self.payloads[index] = message["payload"]
            elif message.get("type") in ("error", "complete"):
                self.problem = self.problem or f"subscription ended: {message}"

    def reset(self) -> None:
        self.received = [None] * len(self.connections)
        self.payloads = [None] * len(self.connections)

    async def wait_all(self, seconds: float) -> bool:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            if all(at is not None for at in self.received) or self.problem:
                return self.problem is None
            await asyncio.sleep(0.002)
        return False

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
