"""The benchmarked server: the gateway as ``tollgate serve`` builds it, plus bench-only instruments.

Run by the bench runner as a child process (``python -m bench.server --port P --workers N``), with the
gateway's settings in ``TOLLGATE_*`` variables. Around the gateway it adds, in this process only:

- the Starlette baselines under ``/__bench/`` (``bench.baselines``);
- SQL statement counting: a request carrying ``x-bench-sql: 1`` is answered with an ``x-bench-sql``
  header holding the number of statements Tortoise logged on ``tortoise.db_client`` while serving
  it. The logger is switched to DEBUG only while such a request is in flight, so the load phases
  (which never send the header) pay nothing for it.
"""

from __future__ import annotations

import argparse
import contextvars
import logging
import os
import signal
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SQL_HEADER = b"x-bench-sql"
_STATEMENTS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
_counter: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("bench_sql", default=None)


class _StatementCounter(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        counter = _counter.get()
        if counter is not None:
            message = record.getMessage().lstrip()
            if message.split(" ", 1)[0].upper() in _STATEMENTS:
                counter[0] += 1


class BenchApp:
    """Dispatches ``/__bench/*`` to the baselines and everything else to the gateway."""

    def __init__(self, gateway: ASGIApp, baseline: ASGIApp) -> None:
        self.gateway = gateway
        self.baseline = baseline
        self.logger = logging.getLogger("tortoise.db_client")
        self.logger.addHandler(_StatementCounter(logging.DEBUG))
        self.counting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.baseline if scope.get("path", "").startswith("/__bench/") else self.gateway
        if scope["type"] != "http" or not any(name == SQL_HEADER for name, _ in scope["headers"]):
            await target(scope, receive, send)
            return
        counter = [0]
        token = _counter.set(counter)
        self.counting += 1
        self.logger.setLevel(logging.DEBUG)

        async def send_with_count(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (SQL_HEADER, str(counter[0]).encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await target(scope, receive, send_with_count)
        finally:
            self.counting -= 1
            if not self.counting:
                self.logger.setLevel(logging.WARNING)
            _counter.reset(token)


def create_bench_app() -> Any:
    """The uvicorn factory (each worker calls it): the gateway exactly as ``tollgate serve`` runs it."""
    from app.main import create_app
    from app.observability import configure_logging
    from app.settings import get_settings
    from bench.baselines import create_baseline_app

    settings = get_settings()
    configure_logging(json=settings.log_format == "json", level=logging.getLevelName(settings.log_level))
    logging.getLogger("tortoise.db_client").setLevel(logging.WARNING)
    return BenchApp(create_app(settings), create_baseline_app())


def _exit_with_parent() -> None:
    """The bench runner starts this server in a session of its own; if the runner dies without stopping
    it (killed by a timeout), stop the whole session rather than leave a server behind."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(os.getpgrp(), signal.SIGTERM)

    threading.Thread(target=watch, name="bench-parent-watch", daemon=True).start()


def main() -> None:
    import uvicorn

    from app.edge.live_sessions import uvicorn_websocket_options
    from app.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("TOLLGATE_LOG_FORMAT", "json")
    _exit_with_parent()
    uvicorn.run(
        "bench.server:create_bench_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        backlog=4096,
        **uvicorn_websocket_options(get_settings()),
    )


if __name__ == "__main__":
    main()
