"""Real servers for end-to-end tests: ``tollgate serve --demo`` as a process on a free local port, or an
app served by uvicorn in the test's event loop; and a graphql-transport-ws subscriber of either."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from tests.smtp import free_port

WAIT = 10.0  # seconds: generous for a loaded CI machine; a server starts in milliseconds
ALERTS = "subscription { limitAlerts { kind threshold state used limit period { name } at } }"
PROTOCOLS: Any = ["graphql-transport-ws"]


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """A real uvicorn server for ``app`` on a free port (its lifespan running); yields ``host:port``."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(WAIT):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def subscriber(
    address: str, authorization: str, query: str = ALERTS
) -> AsyncIterator[ClientConnection]:
    """A client of ``address`` (``host:port`` or ``http://host:port``) with an acknowledged connection and
    an active subscription ``query`` (``limitAlerts`` by default), under id ``alerts``."""
    host = address.removeprefix("http://")
    async with connect(f"ws://{host}/graphql", subprotocols=PROTOCOLS) as socket:
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": authorization}})
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "alerts", "type": "subscribe", "payload": {"query": query}}))
        yield socket


@dataclass
class LiveGateway:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def output(self) -> str:
        """Everything the process printed so far (demo keys, JSON logs)."""
        return self.log.read_text()

    def connector_key(self, slug: str) -> str:
        """The connector key ``serve --demo`` printed for ``slug`` (shown once, as to an operator)."""
        match = re.search(rf"connector key for {slug}: (tg_\S+)", self.output)
        assert match, f"no connector key printed for {slug}"
        return match.group(1)

    def token(self, email: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "app", "token", "--email", email],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()


def gateway_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A fresh SQLite file and mail folder; ``extra`` may point it elsewhere."""
    return {
        **os.environ,
        "TOLLGATE_DATABASE_URL": f"sqlite://{tmp_path / 'live.sqlite3'}",
        "TOLLGATE_MAIL_DIR": str(tmp_path / "mail"),
        **extra,
    }


@contextmanager
def live_gateway(env: dict[str, str], log: Path, *, demo: bool = True) -> Iterator[LiveGateway]:
    """Starts the gateway as an operator would, and waits until ``/readyz`` answers."""
    port = free_port()
    args = [sys.executable, "-m", "app", "serve", "--port", str(port), *(["--demo"] if demo else [])]
    with log.open("wb") as sink:
        process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)
    gateway = LiveGateway(url=f"http://127.0.0.1:{port}", env=env, process=process, log=log)
    try:
        _wait_until_ready(gateway)
        yield gateway
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait_until_ready(gateway: LiveGateway) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=gateway.url, timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if gateway.process.poll() is not None:
                raise AssertionError(f"the gateway exited:\n{gateway.output}")
            time.sleep(0.1)
    raise AssertionError(f"the gateway was not ready within 60 s:\n{gateway.output}")
