"""Metrics (Prometheus), structured logs (structlog, JSON) and the request id that ties them together.

Every HTTP request and WebSocket connection gets a request id: the caller's ``X-Request-ID`` when it
is sane, else a new one. It is bound to every log line of the request, returned in the
``X-Request-ID`` response header, and carried by masked errors so support can find the trace.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import hmac
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import structlog
from graphql import GraphQLError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# One registry for the process: exposed on /metrics.
REGISTRY = CollectorRegistry(auto_describe=True)
GRAPHQL_OPERATIONS = Counter(
    "tollgate_graphql_operations_total",
    "GraphQL operations by name, type and outcome.",
    ["operation", "type", "outcome"],
    registry=REGISTRY,
)
GRAPHQL_LATENCY = Histogram(
    "tollgate_graphql_operation_seconds",
    "GraphQL operation latency by name.",
    ["operation", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "tollgate_http_requests_total",
    "HTTP requests by route and status.",
    ["path", "status"],
    registry=REGISTRY,
)
QUOTA_DECISIONS = Counter(
    "tollgate_quota_decisions_total", "Quota checks by decision.", ["decision", "reason"], registry=REGISTRY
)
PROCESSES_STARTED = Counter(
    "tollgate_processes_started_total", "Process starts counted, by kind.", ["process"], registry=REGISTRY
)
ALERTS_RAISED = Counter(
    "tollgate_alerts_raised_total",
    "Limit alerts by kind, threshold and state.",
    ["kind", "threshold", "state"],
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge("tollgate_outbox_backlog", "E-mails waiting in the outbox.", registry=REGISTRY)
OUTBOX_DEAD = Gauge("tollgate_outbox_dead", "E-mails given up after every retry.", registry=REGISTRY)
OUTBOX_DELIVERIES = Counter(
    "tollgate_outbox_deliveries_total", "Outbox delivery attempts by outcome.", ["outcome"], registry=REGISTRY
)
WEBSOCKET_CONNECTIONS = Gauge(
    "tollgate_websocket_connections", "Open GraphQL WebSocket connections.", registry=REGISTRY
)


def current_request_id() -> str | None:
    return request_id_var.get()


class _JsonAccessLog:
    """Writes the access line that structlog's JSON chain renders (same fields, same order, same stream,
    through structlog's own ``BytesLogger``) without running the chain: copying the context, merging its
    variables and the processors cost as much as the rest of a cached quota check's logging. The one
    context variable bound during a request is the request id (``RequestContextMiddleware``)."""

    def __init__(self) -> None:
        self.logger = structlog.BytesLogger(sys.stdout.buffer)

    def __call__(self, method: str, path: str, status: int, duration_ms: float, request_id: str) -> None:
        event = {
            "logger": "tollgate.access",
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "event": "request",
            "request_id": request_id,
            "level": "info",
            "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        self.logger.msg(_orjson_bytes(event))


# Set by configure_logging when the access line is JSON at level INFO or below; else structlog writes it.
_json_access_log: _JsonAccessLog | None = None


def configure_logging(*, json: bool = True, level: int = logging.INFO) -> None:
    """JSON lines (or console lines in development) for structlog's access log and stdlib loggers.

    In JSON mode the access log, one line per request, is rendered by structlog alone and written as
    bytes (no stdlib ``LogRecord`` on the hot path); stdlib loggers (uvicorn, Tortoise, ours) go through
    the same processors in a ``ProcessorFormatter``, so every line has the same shape.
    """
    global _json_access_log
    _json_access_log = _JsonAccessLog() if json and level <= logging.INFO else None
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        structlog.configure(
            processors=[*shared, structlog.processors.JSONRenderer(serializer=_orjson_bytes)],
            logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
            wrapper_class=structlog.make_filtering_bound_logger(level),
            cache_logger_on_first_use=True,
        )
    else:
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_line)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # ExtraAdder: what a stdlib call passes in ``extra`` (a rejected document's hash...) is in the line.
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # uvicorn's access log duplicates ours; its error log goes through the same formatter.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = name != "uvicorn.access"


def _orjson_bytes(event: Any, **_: Any) -> bytes:
    return orjson.dumps(event, default=str)


def _orjson_line(event: Any, **_: Any) -> str:
    return _orjson_bytes(event).decode()


class RequestContextMiddleware:
    """Pure ASGI: assigns the request id, binds it to logs, returns it, counts HTTP requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Bound when Starlette builds its middleware (on the first request): after configure_logging.
        self.access_log = structlog.get_logger().bind(logger="tollgate.access")
        self.json_access_log = _json_access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        token = request_id_var.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status_code = 500
        started = time.perf_counter()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if scope["type"] == "websocket":
                with _count_websocket():
                    await self.app(scope, receive, send)
            else:
                await self.app(scope, receive, send_with_request_id)
        finally:
            if scope["type"] == "http":
                path = scope.get("path", "")
                labelled(HTTP_REQUESTS, route_of(path), str(status_code)).inc()
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                if self.json_access_log is not None:
                    self.json_access_log(scope["method"], path, status_code, duration_ms, request_id)
                else:
                    self.access_log.info(
                        "request",
                        method=scope.get("method"),
                        path=path,
                        status=status_code,
                        duration_ms=duration_ms,
                    )
            structlog.contextvars.unbind_contextvars("request_id")
            request_id_var.reset(token)


# The routes of app.main, by which requests are counted: never the raw path, or every invoice number and every
# probed URL would add a time series for the life of the process.
_ROUTES = frozenset(("/graphql", "/operator/graphql", "/healthz", "/readyz", "/metrics", "/graphiql"))


def route_of(path: str) -> str:
    """The metrics label of a request's path: its route, ``other`` for a path no route serves."""
    if path in _ROUTES:
        return path
    if path.startswith("/invoices/") and path.endswith(".pdf") and path.count("/") == 2:
        return "/invoices/{number}.pdf"
    if path.startswith("/graphiql/assets/") and path.count("/") == 3:
        return "/graphiql/assets/{name}"
    return "other"


def _request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


class _count_websocket:  # noqa: N801 (used as a context manager)
    def __enter__(self) -> None:
        WEBSOCKET_CONNECTIONS.inc()

    def __exit__(self, *exc: object) -> None:
        WEBSOCKET_CONNECTIONS.dec()


MAX_OPERATION_LABELS = 500
_operation_labels: set[str] = set()
_OPERATION_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")


def operation_label(name: str | None) -> str:
    """The operation's name as a metric label, bounded: clients choose names, and each is a time series."""
    if not name:
        return "anonymous"
    if name in _operation_labels:
        return name
    if len(_operation_labels) >= MAX_OPERATION_LABELS or not _OPERATION_NAME.match(name):
        return "other"
    _operation_labels.add(name)
    return name


class OperationMetrics(SchemaExtension):
    """Counts and times every GraphQL operation by its name (``anonymous`` without one)."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        try:
            operation_type = context.operation_type.value
        except Exception:  # the document did not parse: there is no operation type
            operation_type = "invalid"
        result = context.result
        outcome = "error" if context.pre_execution_errors or (result is not None and result.errors) else "ok"
        record_operation(context.operation_name, operation_type, outcome, started)


def record_operation(name: str | None, operation_type: str, outcome: str, started: float) -> None:
    """Counts and times one GraphQL operation (``started`` from ``time.perf_counter()``)."""
    label = operation_label(name)
    labelled(GRAPHQL_OPERATIONS, label, operation_type, outcome).inc()
    labelled(GRAPHQL_LATENCY, label, operation_type).observe(time.perf_counter() - started)


@functools.lru_cache(maxsize=4096)
def labelled(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: ``labels`` checks and locks on every call, a measurable share
    of a cached quota check; the label values of the hot metrics are few (operations are bounded above)."""
    return metric.labels(*values)


_graphql_log = logging.getLogger("tollgate.graphql")


def log_rejected_document(errors: list[GraphQLError], execution_context: Any) -> list[GraphQLError]:
    """Logs a refused document (syntax, validation, variables: errors without a path) by its operation name
    and the SHA-256 of its text, and returns the other errors, for the error log.

    Such errors are the caller's, not incidents, and their messages quote the document's literal values and
    variables (a secret inlined by mistake would land in the log): neither the messages nor the document are
    logged. The hash finds the document in the caller's code or in a persisted-query manifest.
    """
    rejected = [error for error in errors if not error.path]
    if not rejected:
        return errors
    document = getattr(execution_context, "query", None) or ""
    try:
        operation = getattr(execution_context, "operation_name", None)
    except Exception:  # the name is read from the document, which may not parse
        operation = None
    _graphql_log.info(
        "rejected document",
        extra={
            "operation": operation if isinstance(operation, str) else None,
            "document_sha256": hashlib.sha256(document.encode()).hexdigest(),
            "errors": len(rejected),
        },
    )
    return [error for error in errors if error.path]


def metrics_endpoint_for(token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """``/metrics``, behind ``Authorization: Bearer <token>`` when a token is set (always in production)."""
    if not token:
        return metrics_endpoint
    expected = f"Bearer {token}".encode()

    async def guarded_metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, expected):
            return Response(
                "Unauthorized", status_code=401, headers={"www-authenticate": 'Bearer realm="metrics"'}
            )
        return await metrics_endpoint(request)

    return guarded_metrics


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus scrape; the outbox gauges are read from the database at scrape time."""
    from app.models.enums import OutboxStatus
    from app.models.notifications import OutboxEmail

    try:
        OUTBOX_BACKLOG.set(await OutboxEmail.filter(status=OutboxStatus.PENDING).count())
        OUTBOX_DEAD.set(await OutboxEmail.filter(status=OutboxStatus.DEAD).count())
    except Exception:  # a scrape must not fail because the database is away; the gauges keep their value
        logging.getLogger("tollgate.metrics").warning("outbox gauges not refreshed", exc_info=True)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
