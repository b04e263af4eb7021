"""A closed-loop HTTP/1.1 load generator on raw asyncio keep-alive connections (no HTTP client library).

Each of ``connections`` virtual clients sends one request, waits for the whole response, records its
latency, and sends the next one on the same connection. Requests are prebuilt bytes; the response
parser only reads the status line, ``content-length`` and the body, so one core drives well over ten
thousand requests per second (``python -m bench`` prints the ceiling it reaches on the constant
baseline, which shows it is not the bottleneck).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# (connection index, iteration on that connection) -> the request's raw bytes
RequestFactory = Callable[[int, int], bytes]
# The response body -> an error description, or None when the answer is right
BodyCheck = Callable[[bytes], str | None]


def build_request(
    path: str, body: bytes, *, host: str, headers: dict[str, str] | None = None, method: str = "POST"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
    if body:
        lines.append("content-type: application/json")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class _HttpConnection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection closed: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._try_complete()

    def _try_complete(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.waiter.set_result(Response(int(status_line.split(" ", 2)[1]), headers, body))

    async def request(self, raw: bytes) -> Response:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_connection(host: str, port: int) -> _HttpConnection:
    _transport, protocol = await asyncio.get_running_loop().create_connection(_HttpConnection, host, port)
    return protocol


async def request_once(host: str, port: int, raw: bytes, wait: float = 30.0) -> Response:
    connection = await open_connection(host, port)
    try:
        return await asyncio.wait_for(connection.request(raw), wait)
    finally:
        connection.close()


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ns: list[int] = field(repr=False)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] / 1e6


async def run_load(
    host: str,
    port: int,
    factory: RequestFactory,
    *,
    connections: int,
    duration: float,
    warmup: float,
    check: BodyCheck | None = None,
) -> LoadResult:
    """Drive ``connections`` closed loops for ``warmup`` + ``duration`` seconds; only the last
    ``duration`` seconds are counted. A non-200 status or a failed ``check`` counts as an error."""
    clients = [await open_connection(host, port) for _ in range(connections)]
    latencies: list[int] = []
    counted = 0
    errors = 0
    first_error: str | None = None
    start = time.perf_counter_ns()
    measure_from = start + int(warmup * 1e9)
    stop_at = measure_from + int(duration * 1e9)

    async def loop(index: int, client: _HttpConnection) -> None:
        nonlocal counted, errors, first_error
        iteration = 0
        while True:
            raw = factory(index, iteration)
            sent = time.perf_counter_ns()
            if sent >= stop_at:
                return
            try:
                response = await client.request(raw)
            except ConnectionError as error:
                errors += 1
                first_error = first_error or str(error)
                return
            done = time.perf_counter_ns()
            iteration += 1
            problem = None
            if response.status != 200:
                problem = f"HTTP {response.status}: {response.body[:300]!r}"
            elif check is not None:
                problem = check(response.body)
            if sent >= measure_from and done <= stop_at:
                counted += 1
                latencies.append(done - sent)
            if problem:  # warm-up answers are checked too
                errors += 1
                first_error = first_error or problem

    try:
        await asyncio.gather(*(loop(index, client) for index, client in enumerate(clients)))
    finally:
        for client in clients:
            client.close()
    return LoadResult(counted, errors, duration, latencies, first_error)
