"""``python -m bench.soak``: minutes of mixed traffic on two gateway instances, then the books are checked.

Not part of CI (issue 11, "Under load"). On PostgreSQL and Redis (``TOLLGATE_DATABASE_URL`` and
``TOLLGATE_REDIS_URL``, else the local ``postgres://postgres@127.0.0.1:5432/tollgate`` and
``redis://127.0.0.1:6379/0``): a fresh database beside the one named (dropped afterwards) seeded with
``--tenants`` tenants by ``bench.seeding``, two uvicorn server processes started by ``bench.server``
sharing it and Redis, and for ``--minutes``:

- closed loops of quota checks, process starts (fresh idempotency keys), usage reports (one in six
  crosses 80% of the credit limit and the next falls back: alerts) and admins' addToCart + checkout,
  half of the connections on each instance;
- ``--subscribers`` live ``limitAlerts`` subscriptions (graphql-transport-ws), two per tenant (one on
  each instance), spread over the tenants.

Then it checks, against the database: every successful start is one ``process_start`` row and one
count on the tenant's counter (no more, no less); every answered report is one ``usage_report`` row
and each tenant's usage is its last applied report; every confirmed checkout is one order whose
lines activated exactly their add-on subscriptions, and every unit added to a cart was ordered or is
still in the cart; every ``limit_alert`` row raised during the run reached every subscriber of its
tenant exactly once. It samples each instance's resident memory and the database's connections.
Each criterion ends with PASS or FAIL, and the exit code is 1 when one fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import sys
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.resolvers.ids import key_of
from bench import websocket
from bench.loadgen import open_connection
from bench.runner import (
    HOST,
    Server,
    Target,
    fresh_secrets,
    postgres_database,
    running_server,
    seed_data,
    server_environment,
    workspace,
)
from bench.scenarios import ADD_TO_CART, CART_ADD_ON, PROCESSES, QUOTA, graphql_request, new_run_id
from bench.seeding import BenchTenant

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/tollgate"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
INSTANCES = 2
TORTOISE_DEFAULT_POOL = 5  # tortoise's asyncpg client: ``maxsize`` of the URL, else 5
REQUEST_TIMEOUT = 30.0  # seconds; a request without an answer by then is an error
RSS_EVERY = 5.0  # seconds between memory samples
CONNECTIONS_EVERY = 1.0  # seconds between pg_stat_activity samples
SETTLE = 3.0  # seconds between the subscriptions and the traffic (and the alert baseline)
DRAIN = 30.0  # seconds the subscribers have after the traffic to receive the last alerts
MEMORY_GROWTH_LIMIT = 0.10
MIX = {"quota": 8, "start": 4, "report": 4, "checkout": 4}  # closed-loop connections per kind

START = """mutation SoakStart($process: ProcessKind!, $key: String!) {
  startProcess(process: $process, idempotencyKey: $key) {
    __typename
    ... on StartProcessSuccess { allowed reason ticket replayed processesUsed }
    ... on Error { code message field }
  }
}"""

REPORT = """mutation SoakReport($input: UsageReportInput!, $key: String) {
  reportUsage(input: $input, idempotencyKey: $key) {
    __typename
    ... on ReportUsageSuccess { report { id creditsUsed } applied replayed }
    ... on Error { code message field }
  }
}"""

CHECKOUT = """mutation SoakCheckout($key: String!) {
  checkout(idempotencyKey: $key) {
    __typename
    ... on CheckoutSuccess { replayed order { id lines { addOnCode quantity activeAddOn { id } } } }
    ... on Error { code message field }
  }
}"""

ALERTS = "subscription SoakAlerts { limitAlerts { id kind threshold state used limit at } }"


def row_key(global_id: str, type_name: str) -> str:
    """The database key of an id the gateway answered: the books compare answers with rows. Clients must
    not read ids; this harness checks the store behind them, so it does."""
    return key_of(global_id, type_name, field="id")


# -- what the load saw ----------------------------------------------------------------------------


@dataclass
class Stats:
    """One kind of request: how many, how fast, and what went wrong."""

    label: str
    requests: int = 0
    latencies_ns: list[int] = field(default_factory=list, repr=False)
    errors: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(f"{self.label}: {kind}", detail[:400])

    def refusal(self, kind: str, detail: str) -> None:
        self.refusals[kind] += 1
        self.examples.setdefault(f"{self.label}: refused {kind}", detail[:400])

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] / 1e6


class Client:
    """One keep-alive HTTP connection to one instance; reopened after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: Any = None

    async def call(self, raw: bytes, stats: Stats) -> dict[str, Any] | None:
        """The answer's ``data``, or None after recording why it is wrong (an error)."""
        if self.connection is not None and self.connection.closed.done():
            self.connection = None  # closed by the server between requests (keep-alive): not an error
        sent = time.perf_counter_ns()
        try:
            if self.connection is None:
                self.connection = await open_connection(HOST, self.port)
            response = await asyncio.wait_for(self.connection.request(raw), REQUEST_TIMEOUT)
        except (TimeoutError, ConnectionError, OSError) as error:
            stats.requests += 1
            kind = "timeout" if isinstance(error, TimeoutError) else "connection"
            stats.error(kind, f"{type(error).__name__}: {error}")
            if self.connection is not None:
                self.connection.close()
            self.connection = None
            return None
        stats.requests += 1
        stats.latencies_ns.append(time.perf_counter_ns() - sent)
        if response.status != 200:
            stats.error(f"HTTP {response.status}", repr(response.body[:400]))
            return None
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            stats.error("not JSON", repr(response.body[:400]))
            return None
        if payload.get("errors"):
            first = payload["errors"][0]
            code = (first.get("extensions") or {}).get("code") or first.get("message", "")[:60]
            stats.error(f"GraphQL error {code}", repr(response.body[:400]))
            return None
        data = payload.get("data")
        if not isinstance(data, dict):
            stats.error("no data", repr(response.body[:400]))
            return None
        return data

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


@dataclass
class Books:
    """What the answers promised, to compare with the database at the end."""

    tickets: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))  # tenant -> tickets
    uncertain_start_keys: set[str] = field(default_factory=set)  # no answer: counted or not
    # report id -> tenant, measuredAt, credits
    reports: dict[str, tuple[int, dt.datetime, int]] = field(default_factory=dict)
    reports_not_applied: int = 0
    uncertain_report_keys: set[str] = field(default_factory=set)
    uncertain_report_tenants: set[int] = field(default_factory=set)
    added: Counter[int] = field(default_factory=Counter)  # tenant -> units added to the admin's cart
    uncertain_added: Counter[int] = field(default_factory=Counter)
    orders: dict[str, tuple[int, int]] = field(default_factory=dict)  # order id -> tenant, units
    uncertain_checkout_keys: set[str] = field(default_factory=set)


# -- the traffic ----------------------------------------------------------------------------------


@dataclass
class Traffic:
    tenants: list[BenchTenant]
    ports: list[int]
    run_id: str
    stop_at: float
    mix: dict[str, int]
    books: Books = field(default_factory=Books)
    stats: dict[str, Stats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, label in (
            ("quota", "quota check"),
            ("start", "startProcess"),
            ("report", "reportUsage"),
            ("add", "addToCart"),
            ("checkout", "checkout"),
        ):
            self.stats[key] = Stats(label)
        self.host = f"{HOST}:{self.ports[0]}"  # the Host header: any value does

    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    def pick(self, index: int, iteration: int) -> int:
        return (index * 7919 + iteration) % len(self.tenants)

    async def quota(self, index: int, port: int) -> None:
        client, stats = Client(port), self.stats["quota"]
        requests = [
            graphql_request(
                self.host, QUOTA, {"process": PROCESSES[n % len(PROCESSES)]}, tenant.connector_key
            )
            for n, tenant in enumerate(self.tenants)
        ]
        iteration = 0
        while self.running():
            data = await client.call(requests[self.pick(index, iteration)], stats)
            iteration += 1
            if data is None:
                continue
            quota = data.get("quota") or {}
            if quota.get("allowed") is not True:
                stats.refusal(f"not allowed: {quota.get('reason')}", repr(data)[:400])
        client.close()

    async def start(self, index: int, port: int) -> None:
        client, stats = Client(port), self.stats["start"]
        iteration = 0
        while self.running():
            number = self.pick(index, iteration)
            key = f"{self.run_id}-s{index}-{iteration}"
            variables = {"process": PROCESSES[iteration % len(PROCESSES)], "key": key}
            raw = graphql_request(self.host, START, variables, self.tenants[number].connector_key)
            data = await client.call(raw, stats)
            iteration += 1
            if data is None:
                self.books.uncertain_start_keys.add(key)
                continue
            answer = data.get("startProcess") or {}
            if answer.get("__typename") != "StartProcessSuccess":
                stats.refusal(str(answer.get("code")), repr(answer))
            elif answer.get("replayed"):
                stats.error("replayed a fresh key", repr(answer))
            elif not answer.get("allowed") or not answer.get("ticket"):
                stats.refusal(f"not allowed: {answer.get('reason')}", repr(answer))
            else:
                self.books.tickets[number].append(str(answer["ticket"]))

    async def report(self, index: int, port: int) -> None:
        """Sequential reports for the tenants this loop owns, each measured later: every one applies."""
        client, stats = Client(port), self.stats["report"]
        owned = range(index, len(self.tenants), self.mix["report"])
        last = dt.datetime.now(dt.UTC)
        iteration = 0
        while self.running() and owned:
            number = owned[iteration % len(owned)]
            sequence = iteration // len(owned)
            tenant = self.tenants[number]
            last = max(dt.datetime.now(dt.UTC), last + dt.timedelta(microseconds=1))
            # Mostly 40-69% of the limit; a tenant's 2nd, 8th, 14th... report at 85% (an 80% alert) and the
            # next back down (re-armed): alerts for the subscribers, as a connector's real data raises them.
            percent = 85 if sequence % 6 == 1 else 40 + (number + sequence * 7) % 30
            credits = tenant.credits_limit * percent // 100
            variants, customers = credits // 4, credits // 3
            key = f"{self.run_id}-r{index}-{iteration}"
            counts = {
                "variants": variants,
                "customers": customers,
                "contacts": credits - variants - customers - 7,
                "salesReps": 5,
                "adminUsers": 2,
                "storageBytes": 3 * 1024**3,
                "users": 2,
                "measuredAt": last.isoformat(),
            }
            raw = graphql_request(self.host, REPORT, {"input": counts, "key": key}, tenant.connector_key)
            data = await client.call(raw, stats)
            iteration += 1
            if data is None:
                self.books.uncertain_report_keys.add(key)
                self.books.uncertain_report_tenants.add(number)
                continue
            answer = data.get("reportUsage") or {}
            if answer.get("__typename") != "ReportUsageSuccess":
                stats.refusal(str(answer.get("code")), repr(answer))
            elif answer.get("replayed"):
                stats.error("replayed a fresh key", repr(answer))
            else:
                if not answer.get("applied"):
                    # Each tenant's reports come from this loop alone, each measured later: all apply.
                    stats.error("not applied", repr(answer))
                    self.books.reports_not_applied += 1
                self.books.reports[row_key(answer["report"]["id"], "UsageReport")] = (number, last, credits)

    async def checkout(self, index: int, port: int) -> None:
        """An admin of each tenant this loop owns adds an add-on to the cart, then checks out."""
        client = Client(port)
        add_stats, checkout_stats = self.stats["add"], self.stats["checkout"]
        owned = range(index, len(self.tenants), self.mix["checkout"])
        pending: Counter[int] = Counter()  # units in each owned admin's open cart, as far as we know
        iteration = 0
        while self.running() and owned:
            number = owned[iteration % len(owned)]
            iteration += 1
            token = self.tenants[number].admin_token
            raw = graphql_request(self.host, ADD_TO_CART, {"code": CART_ADD_ON, "quantity": 1}, token)
            data = await client.call(raw, add_stats)
            if data is None:
                self.books.uncertain_added[number] += 1
            else:
                answer = data.get("addToCart") or {}
                if answer.get("__typename") == "AddToCartSuccess":
                    self.books.added[number] += 1
                    pending[number] += 1
                else:
                    add_stats.refusal(str(answer.get("code")), repr(answer))
            if not pending[number] or not self.running():
                continue
            key = f"{self.run_id}-c{index}-{iteration}"
            data = await client.call(
                graphql_request(self.host, CHECKOUT, {"key": key}, token), checkout_stats
            )
            if data is None:
                self.books.uncertain_checkout_keys.add(key)
                continue
            answer = data.get("checkout") or {}
            if answer.get("__typename") != "CheckoutSuccess":
                checkout_stats.refusal(str(answer.get("code")), repr(answer))
            elif answer.get("replayed"):
                checkout_stats.error("replayed a fresh key", repr(answer))
            else:
                order = answer["order"]
                units = sum(line["quantity"] for line in order["lines"])
                self.books.orders[row_key(order["id"], "Order")] = (number, units)
                pending[number] = 0
        client.close()

    def tasks(self) -> list[Awaitable[None]]:
        loops: dict[str, Callable[[int, int], Awaitable[None]]] = {
            "quota": self.quota,
            "start": self.start,
            "report": self.report,
            "checkout": self.checkout,
        }
        kinds = [(kind, index) for kind, count in self.mix.items() for index in range(count)]
        # Alternate the instances over all the loops, so that each instance gets half of every kind
        # (within one loop) whatever the counts.
        return [loops[kind](index, self.ports[n % INSTANCES]) for n, (kind, index) in enumerate(kinds)]


# -- the subscribers ------------------------------------------------------------------------------


class Subscriber:
    """One ``limitAlerts`` subscription; records every alert id it receives (duplicates too)."""

    def __init__(self, tenant: int, instance: int, connection: ClientConnection) -> None:
        self.tenant = tenant
        self.instance = instance
        self.connection = connection
        self.received: Counter[str] = Counter()
        self.problem: str | None = None
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        message = {"id": "alerts", "type": "subscribe", "payload": {"query": ALERTS}}
        await self.connection.send(orjson.dumps(message).decode())
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        try:
            async for raw in self.connection:
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message.get("payload") or {}
                    if payload.get("errors"):
                        self.problem = self.problem or f"error in an event: {payload['errors']}"[:400]
                    else:
                        self.received[row_key(payload["data"]["limitAlerts"]["id"], "LimitAlert")] += 1
                elif kind == "ping":
                    await self.connection.send('{"type":"pong"}')
                elif kind in ("error", "complete"):
                    self.problem = self.problem or f"subscription ended: {message}"[:400]
        except ConnectionClosed:
            pass
        except Exception as error:  # a malformed message: as wrong as a disconnection
            self.problem = self.problem or f"{type(error).__name__}: {error}"
        if not self.stopping:
            self.problem = self.problem or (
                f"disconnected (close code {self.connection.close_code}, {self.connection.close_reason!r})"
            )

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
        with contextlib.suppress(Exception):
            await self.connection.close()


async def open_subscribers(tenants: list[BenchTenant], ports: list[int], count: int) -> list[Subscriber]:
    """``count`` subscriptions, two per tenant (one on each instance), over tenants spread evenly."""
    per_tenant = INSTANCES
    chosen = max(1, -(-count // per_tenant))
    step = max(1, len(tenants) // chosen)
    slots = [
        (number, n % INSTANCES) for number in range(0, len(tenants), step)[:chosen] for n in range(per_tenant)
    ]
    slots = slots[:count]

    async def one(number: int, instance: int) -> Subscriber:
        url = f"ws://{HOST}:{ports[instance]}/graphql"
        [connection] = await websocket.open_initialized(url, tenants[number].admin_token, 1)
        subscriber = Subscriber(number, instance, connection)
        await subscriber.start()
        return subscriber

    subscribers: list[Subscriber] = []
    for first in range(0, len(slots), 50):
        subscribers += await asyncio.gather(*(one(*slot) for slot in slots[first : first + 50]))
    return subscribers


# -- sampling -------------------------------------------------------------------------------------


@dataclass
class Samples:
    rss: list[tuple[float, list[int]]] = field(default_factory=list)  # seconds into the traffic, bytes
    connections: list[int] = field(default_factory=list)


async def sample_rss(servers: list[Server], started: float, samples: Samples, stop: asyncio.Event) -> None:
    while not stop.is_set():
        sizes = await asyncio.to_thread(lambda: [server.rss_bytes() for server in servers])
        samples.rss.append((time.monotonic() - started, sizes))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RSS_EVERY)


async def sample_connections(dsn: str, database: str, samples: Samples, stop: asyncio.Event) -> None:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        while not stop.is_set():
            count = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            samples.connections.append(int(count))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CONNECTIONS_EVERY)
    finally:
        await connection.close()


def pool_bound(database_url: str) -> int:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(database_url).query)
    return int(query.get("maxsize", [TORTOISE_DEFAULT_POOL])[0])


# -- the verdict ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    lines: list[str] = field(default_factory=list)
    criteria: list[tuple[str, bool, str]] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.criteria.append((name, passed, detail))

    @property
    def passed(self) -> bool:
        return all(passed for _, passed, _ in self.criteria)


async def check_books(
    dsn: str, traffic: Traffic, before: dict[str, Any], tenant_ids: list[str], verdict: Verdict
) -> None:
    books, run_id = traffic.books, traffic.run_id
    number_of = {tenant_id: number for number, tenant_id in enumerate(tenant_ids)}
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        # Process starts: answered tickets = process_start rows = counts on the counters.
        rows = await connection.fetch(
            "SELECT id::text AS id, tenant_id::text AS tenant_id, idempotency_key FROM process_start "
            "WHERE idempotency_key LIKE $1",
            f"{run_id}-s%",
        )
        counters = dict(
            await connection.fetch(
                "SELECT tenant_id::text, sum(used) FROM process_counter GROUP BY tenant_id"
            )
        )
        answered = [ticket for tickets in books.tickets.values() for ticket in tickets]
        row_ids = {row["id"] for row in rows}
        certain_rows = {row["id"] for row in rows if row["idempotency_key"] not in books.uncertain_start_keys}
        problems: list[str] = []
        if len(set(answered)) != len(answered):
            problems.append(f"{len(answered) - len(set(answered))} tickets answered twice")
        lost = set(answered) - row_ids
        extra = certain_rows - set(answered)
        if lost:
            problems.append(f"{len(lost)} answered tickets without a process_start row")
        if extra:
            problems.append(f"{len(extra)} process_start rows no answer announced")
        tenant_of_row = {row["id"]: row["tenant_id"] for row in rows}
        misplaced = [
            ticket
            for number, tickets in books.tickets.items()
            for ticket in tickets
            if ticket in tenant_of_row and tenant_of_row[ticket] != tenant_ids[number]
        ]
        if misplaced:
            problems.append(f"{len(misplaced)} tickets stored for another tenant")
        rows_per_tenant = Counter(row["tenant_id"] for row in rows)
        wrong_counters = []
        for tenant_id in tenant_ids:
            delta = int(counters.get(tenant_id, 0)) - int(before["counters"].get(tenant_id, 0))
            if delta != rows_per_tenant.get(tenant_id, 0):
                wrong_counters.append(
                    f"{tenant_id}: counter +{delta}, rows {rows_per_tenant.get(tenant_id, 0)}"
                )
        if wrong_counters:
            problems.append(
                f"{len(wrong_counters)} counters differ from their starts, e.g. {wrong_counters[0]}"
            )
        counted = sum(int(v) for v in counters.values()) - sum(int(v) for v in before["counters"].values())
        verdict.say(
            f"starts: {len(answered):,} tickets answered, {len(rows):,} process_start rows "
            f"({len(row_ids - certain_rows)} of {len(books.uncertain_start_keys)} unanswered starts "
            "counted), "
            f"counters +{counted:,}"
        )
        verdict.check("starts counted once", not problems, "; ".join(problems) or "tickets = rows = counters")

        # Usage reports: answered ids = rows, applied as answered; each tenant's usage is its last report.
        rows = await connection.fetch(
            "SELECT id::text AS id, tenant_id::text AS tenant_id, applied, idempotency_key FROM usage_report "
            "WHERE idempotency_key LIKE $1",
            f"{run_id}-r%",
        )
        problems = []
        by_id = {row["id"]: row for row in rows}
        lost = set(books.reports) - set(by_id)
        extra = {r["id"] for r in rows if r["idempotency_key"] not in books.uncertain_report_keys} - set(
            books.reports
        )
        applied_rows = sum(1 for row in rows if row["applied"])
        applied_answers = len(books.reports) - books.reports_not_applied
        if lost:
            problems.append(f"{len(lost)} answered reports without a row")
        if extra:
            problems.append(f"{len(extra)} usage_report rows no answer announced")
        wrong_tenant = [
            i
            for i, (n, _, _) in books.reports.items()
            if i in by_id and by_id[i]["tenant_id"] != tenant_ids[n]
        ]
        if wrong_tenant:
            problems.append(f"{len(wrong_tenant)} reports stored for another tenant")
        last: dict[int, tuple[dt.datetime, int]] = {}
        for number, at, credits in books.reports.values():
            if number not in last or at > last[number][0]:
                last[number] = (at, credits)
        usage = {
            row["tenant_id"]: (row["measured_at"], int(row["credits"]))
            for row in await connection.fetch(
                "SELECT tenant_id::text AS tenant_id, measured_at, credits FROM tenant_usage"
            )
        }
        stale = [
            f"{tenant_ids[n]}: {usage.get(tenant_ids[n])} vs last answered ({at.isoformat()}, {credits})"
            for n, (at, credits) in last.items()
            if n not in books.uncertain_report_tenants  # an unanswered later report may have applied
            and (
                usage.get(tenant_ids[n], (None, None))[1] != credits
                or abs((usage[tenant_ids[n]][0] - at).total_seconds()) > 1e-3
            )
        ]
        if stale:
            problems.append(f"{len(stale)} tenants' usage is not their last report, e.g. {stale[0]}")
        verdict.say(
            f"reports: {len(books.reports):,} answered ({applied_answers:,} applied), {len(rows):,} "
            f"usage_report rows ({applied_rows:,} applied); {len(last) - len(stale)} of {len(last)} tenants "
            "hold their last report"
        )
        if applied_rows < applied_answers:
            problems.append(f"{applied_answers - applied_rows} applied answers stored as not applied")
        verdict.check(
            "reports stored once", not problems, "; ".join(problems) or "answers = rows; usage = last report"
        )

        # Checkouts: confirmed orders = rows; their lines activated exactly their subscriptions; units kept.
        orders = await connection.fetch(
            "SELECT id::text AS id, tenant_id::text AS tenant_id, idempotency_key FROM store_order "
            "WHERE idempotency_key LIKE $1",
            f"{run_id}-c%",
        )
        lines = await connection.fetch(
            "SELECT l.order_id::text AS order_id, l.quantity, l.subscription_id::text AS subscription_id, "
            "s.quantity AS subscribed FROM store_order_line l JOIN store_order o ON o.id = l.order_id "
            "LEFT JOIN add_on_subscription s ON s.id = l.subscription_id WHERE o.idempotency_key LIKE $1",
            f"{run_id}-c%",
        )
        new_subscriptions = await connection.fetchval(
            "SELECT count(*) FROM add_on_subscription s JOIN add_on a ON a.id = s.add_on_id "
            "WHERE a.code = $1 AND s.contracted_at >= $2",
            CART_ADD_ON,
            before["started"],
        )
        open_units = {
            row["tenant_id"]: int(row["units"])
            for row in await connection.fetch(
                "SELECT c.tenant_id::text AS tenant_id, sum(l.quantity) AS units FROM cart c "
                "JOIN cart_line l ON l.cart_id = c.id WHERE c.status = 'OPEN' GROUP BY c.tenant_id"
            )
        }
        problems = []
        order_ids = {row["id"] for row in orders}
        lost = set(books.orders) - order_ids
        extra = {r["id"] for r in orders if r["idempotency_key"] not in books.uncertain_checkout_keys} - set(
            books.orders
        )
        if lost:
            problems.append(f"{len(lost)} confirmed orders without a row")
        if extra:
            problems.append(f"{len(extra)} orders no answer announced")
        bad_lines = [
            line
            for line in lines
            if line["subscription_id"] is None or line["subscribed"] != line["quantity"]
        ]
        if bad_lines:
            problems.append(f"{len(bad_lines)} order lines without their subscription's quantity")
        if new_subscriptions != len(lines):
            problems.append(
                f"{new_subscriptions} {CART_ADD_ON} subscriptions activated for {len(lines)} order lines"
            )
        tenant_of_order = {row["id"]: row["tenant_id"] for row in orders}
        ordered_units: Counter[int] = Counter()
        for row in lines:
            ordered_units[number_of[tenant_of_order[row["order_id"]]]] += int(row["quantity"])
        answered_units = sum(units for _, units in books.orders.values())
        unbalanced = []
        for number in set(books.added) | set(books.uncertain_added) | set(ordered_units):
            kept = ordered_units[number] + open_units.get(tenant_ids[number], 0)
            if not books.added[number] <= kept <= books.added[number] + books.uncertain_added[number]:
                unbalanced.append(
                    f"{tenant_ids[number]}: added {books.added[number]}, ordered + in cart {kept}"
                )
        if unbalanced:
            problems.append(
                f"{len(unbalanced)} tenants' units added != ordered + in cart, e.g. {unbalanced[0]}"
            )
        verdict.say(
            f"checkouts: {len(books.orders):,} confirmed ({answered_units:,} units), {len(orders):,} orders, "
            f"{sum(ordered_units.values()):,} units ordered, {new_subscriptions:,} subscriptions activated; "
            f"{sum(books.added.values()):,} units added to carts, {sum(open_units.values()):,} still in carts"
        )
        verdict.check(
            "checkouts once", not problems, "; ".join(problems) or "orders = answers; units conserved"
        )
    finally:
        await connection.close()


async def alert_rows(dsn: str, baseline: int) -> dict[str, list[str]]:
    """tenant id -> ids of the alerts raised after the baseline."""
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT id::text AS id, tenant_id::text AS tenant_id FROM limit_alert WHERE id > $1 ORDER BY id",
            baseline,
        )
    finally:
        await connection.close()
    out: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        out[row["tenant_id"]].append(row["id"])
    return out


def delivery(
    subscribers: list[Subscriber], rows: dict[str, list[str]], tenant_ids: list[str]
) -> tuple[int, int, int, int]:
    """Expected deliveries, missing ones, duplicates, phantoms (ids not raised for that tenant)."""
    expected = missing = duplicates = phantoms = 0
    for subscriber in subscribers:
        own = set(rows.get(tenant_ids[subscriber.tenant], ()))
        expected += len(own)
        missing += len(own - set(subscriber.received))
        duplicates += sum(count - 1 for count in subscriber.received.values())
        phantoms += len(set(subscriber.received) - own)
    return expected, missing, duplicates, phantoms


async def tamper(
    dsn: str,
    traffic: Traffic,
    subscribers: list[Subscriber],
    rows: dict[str, list[str]],
    tenant_ids: list[str],
) -> list[str]:
    """Corrupt what the checks read, as a defect would: each books criterion must then fail."""
    done: list[str] = []
    books = traffic.books
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        number = next(iter(books.tickets), None)
        if number is not None:
            await connection.execute(
                "UPDATE process_counter SET used = used + 1 WHERE id = "
                "(SELECT id FROM process_counter WHERE tenant_id = $1::uuid LIMIT 1)",
                tenant_ids[number],
            )
            done.append(f"one more process counted for tenant {tenant_ids[number]}")
        report = next(iter(books.reports), None)
        if report is not None:
            await connection.execute("DELETE FROM usage_report WHERE id = $1::uuid", report)
            done.append(f"usage report {report} deleted")
        order = next(iter(books.orders), None)
        if order is not None:
            await connection.execute(
                "UPDATE add_on_subscription SET quantity = quantity + 1 WHERE id IN "
                "(SELECT subscription_id FROM store_order_line WHERE order_id = $1::uuid)",
                order,
            )
            done.append(f"the add-on subscription of order {order} doubled")
    finally:
        await connection.close()
    receivers = [s for s in subscribers if s.received]
    if receivers:
        del receivers[0].received[next(iter(receivers[0].received))]
        done.append(f"one alert of subscriber of tenant {receivers[0].tenant} lost")
        receivers[-1].received[next(iter(receivers[-1].received))] += 1
        done.append(f"one alert of subscriber of tenant {receivers[-1].tenant} doubled")
    return done


# -- a run ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoakOptions:
    minutes: float
    tenants: int
    subscribers: int
    mix: dict[str, int]
    database_url: str
    redis_url: str
    keep: bool
    strict_duplicates: bool
    tamper: bool = False


def dsn_of(url: str) -> str:
    return (
        url.replace("postgres://", "postgresql://", 1).replace("asyncpg://", "postgresql://", 1).split("?")[0]
    )


async def run_soak(options: SoakOptions) -> int:
    verdict = Verdict()
    with workspace(options.keep) as workdir:
        async with postgres_database(options.database_url) as url:
            return await soak(options, url, workdir, verdict)


async def soak(options: SoakOptions, url: str, workdir: Path, verdict: Verdict) -> int:
    run_id = new_run_id()
    dsn = dsn_of(url)
    database = urllib.parse.urlsplit(dsn).path.lstrip("/")
    target = Target("PostgreSQL", url, 1, options.redis_url)
    secrets_env = {
        **fresh_secrets(),
        # Channels of this run only: other runs on the same Redis neither see nor disturb its alerts.
        "TOLLGATE_REDIS_CHANNEL_PREFIX": f"tollgate-soak-{run_id}:",
    }
    env = server_environment(target, secrets_env, workdir)
    seeding = time.perf_counter()
    tenants = (await seed_data(options.tenants, env, workdir)).tenants
    seeded_in = time.perf_counter() - seeding
    logs = [workdir / f"server-soak-{n + 1}.log" for n in range(INSTANCES)]
    duration = options.minutes * 60
    async with contextlib.AsyncExitStack() as stack:
        try:
            servers = [await stack.enter_async_context(running_server(target, env, log)) for log in logs]
        except RuntimeError:  # the server did not start: its log says why (the workspace goes away)
            for log in logs:
                if log.exists():
                    print(
                        f"-- {log.name}:\n" + "\n".join(log.read_text().splitlines()[-15:]), file=sys.stderr
                    )
            raise
        ports = [server.port for server in servers]
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            by_slug = dict(await connection.fetch("SELECT slug, id::text FROM tenant"))
            tenant_ids = [by_slug[tenant.slug] for tenant in tenants]
            counters = dict(
                await connection.fetch(
                    "SELECT tenant_id::text, sum(used) FROM process_counter GROUP BY tenant_id"
                )
            )
        finally:
            await connection.close()
        print(
            f"seeded {len(tenants):,} tenants in {seeded_in:.1f} s; 2 instances on ports {ports} "
            f"(cold starts {', '.join(f'{s.cold_start:.2f} s' for s in servers)}); opening "
            f"{options.subscribers} subscriptions...",
            file=sys.stderr,
            flush=True,
        )
        subscribers = await open_subscribers(tenants, ports, options.subscribers)
        await asyncio.sleep(SETTLE)
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            baseline = int(await connection.fetchval("SELECT coalesce(max(id), 0) FROM limit_alert"))
            started_at = await connection.fetchval("SELECT now()")
        finally:
            await connection.close()
        before = {"counters": counters, "started": started_at}
        print(f"traffic for {options.minutes:g} min ...", file=sys.stderr, flush=True)

        samples, stop = Samples(), asyncio.Event()
        started = time.monotonic()
        traffic = Traffic(tenants, ports, run_id, started + duration, options.mix)
        samplers = [
            asyncio.create_task(sample_rss(servers, started, samples, stop)),
            asyncio.create_task(sample_connections(dsn, database, samples, stop)),
        ]
        per_minute: list[int] = []
        progress = asyncio.create_task(report_progress(traffic, started, duration, per_minute))
        await asyncio.gather(*traffic.tasks())
        elapsed = time.monotonic() - started
        progress.cancel()
        final_rss = [server.rss_bytes() for server in servers]

        # Let the last alerts arrive, then compare every subscriber's with the database's.
        drained = time.monotonic()
        while True:
            rows = await alert_rows(dsn, baseline)
            expected, missing, duplicates, phantoms = delivery(subscribers, rows, tenant_ids)
            if not missing or time.monotonic() - drained > DRAIN:
                break
            await asyncio.sleep(0.5)
        drain_seconds = time.monotonic() - drained
        stop.set()
        await asyncio.gather(*samplers, return_exceptions=True)
        disconnected = [s for s in subscribers if s.problem]
        if options.tamper:
            for line in await tamper(dsn, traffic, subscribers, rows, tenant_ids):
                verdict.say(f"TAMPERED (self-test of the checks): {line}")
            expected, missing, duplicates, phantoms = delivery(subscribers, rows, tenant_ids)
        await asyncio.gather(*(subscriber.stop() for subscriber in subscribers))
        alive = [server.process.poll() is None for server in servers]

        verdict.say(
            f"\n== Soak: {INSTANCES} gateway instances (uvicorn + uvloop + httptools, 1 process each) on "
            f"PostgreSQL + Redis, {elapsed / 60:.1f} min of mixed traffic; {len(tenants):,} tenants; "
            f"{len(subscribers)} limitAlerts subscribers on {len({s.tenant for s in subscribers})} tenants "
            f"(half on each instance); closed loops: "
            + ", ".join(f"{kind} {count}" for kind, count in options.mix.items())
        )
        print_load(traffic, elapsed, verdict)
        if per_minute:
            verdict.say("req/s in each minute: " + ", ".join(f"{count / 60:,.0f}" for count in per_minute))
        errors = sum(sum(stats.errors.values()) for stats in traffic.stats.values())
        refusals = sum(sum(stats.refusals.values()) for stats in traffic.stats.values())
        verdict.check(
            "zero errors",
            errors == 0 and all(alive),
            f"{errors} errors" + ("" if all(alive) else f"; an instance exited: alive {alive}"),
        )
        verdict.check(
            "zero typed refusals (none expected in this workload)", refusals == 0, f"{refusals} refusals"
        )
        verdict.check(
            "zero WebSocket disconnections",
            not disconnected,
            f"{len(disconnected)} of {len(subscribers)} subscriptions ended"
            + (f", first: {disconnected[0].problem}" if disconnected else ""),
        )
        await check_books(dsn, traffic, before, tenant_ids, verdict)

        raised = sum(len(ids) for ids in rows.values())
        subscribed_tenants = {tenant_ids[s.tenant] for s in subscribers}
        for_subscribed = sum(len(rows.get(t, ())) for t in subscribed_tenants)
        verdict.say(
            f"alerts: {raised:,} limit_alert rows raised during the run ({for_subscribed:,} "
            f"for subscribed tenants); {expected:,} deliveries expected, {expected - missing:,} received "
            f"(within {drain_seconds:.1f} s after the traffic), {missing:,} lost, {duplicates:,} duplicates, "
            f"{phantoms:,} phantoms"
        )
        verdict.check(
            "every alert delivered to every subscriber of its tenant",
            missing == 0 and phantoms == 0 and expected > 0,
            f"{missing} lost, {phantoms} phantoms, {expected} expected"
            + (" (no alert raised for a subscribed tenant: nothing was tested)" if not expected else ""),
        )
        verdict.check(
            "no alert delivered twice"
            + ("" if options.strict_duplicates else " (at-least-once: reported only)"),
            duplicates == 0 or not options.strict_duplicates,
            f"{duplicates} duplicates",
        )
        check_memory(samples, final_rss, duration, verdict)
        bound = INSTANCES * pool_bound(url)
        most = max(samples.connections, default=0)
        verdict.say(
            f"database connections (pg_stat_activity, every {CONNECTIONS_EVERY:g} s, "
            f"{len(samples.connections)} samples): max {most}, median "
            f"{statistics.median(samples.connections or [0]):.0f}; configured bound "
            f"{bound} ({INSTANCES} instances x pool maxsize {pool_bound(url)})"
        )
        verdict.check("database connections bounded", 0 < most <= bound, f"max {most} <= {bound}")
        examples = {key: value for stats in traffic.stats.values() for key, value in stats.examples.items()}
        for key, example in list(examples.items())[:10]:
            verdict.say(f"  first {key}: {example}")
        for subscriber in disconnected[:3]:
            verdict.say(
                f"  subscriber of tenant {subscriber.tenant} on instance {subscriber.instance + 1}: "
                f"{subscriber.problem}"
            )
    # The servers are stopped: their logs are complete.
    for log in logs:
        bad, warnings = [], 0
        with log.open(errors="replace") as lines:
            for line in lines:
                if '"exception"' in line or '"level":"error"' in line or '"level":"critical"' in line:
                    bad.append(line)
                elif '"level":"warning"' in line:
                    warnings += 1
        verdict.say(f"server log {log.name}: {len(bad)} errors or exceptions, {warnings} warnings")
        for line in bad[:2]:
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                line = f"{record.get('event')}: {record.get('exception', '')}"
            verdict.say("  " + line.strip()[-1500:])
        verdict.check(f"no error logged by instance {log.stem[-1]}", not bad, f"{len(bad)} logged")
    verdict.say("")
    width = max(len(name) for name, _, _ in verdict.criteria)
    for name, passed, detail in verdict.criteria:
        verdict.say(f"{'PASS' if passed else 'FAIL'}  {name:<{width}}  {detail}")
    verdict.say(f"\nsoak {'PASSED' if verdict.passed else 'FAILED'}")
    return 0 if verdict.passed else 1


async def report_progress(traffic: Traffic, started: float, duration: float, minutes: list[int]) -> None:
    """Progress on stderr every 30 s; ``minutes`` gets the requests answered in each whole minute."""
    ticks = 0
    while True:
        await asyncio.sleep(max(0.0, started + 30 * (ticks + 1) - time.monotonic()))
        ticks += 1
        done = sum(stats.requests for stats in traffic.stats.values())
        if ticks % 2 == 0:
            minutes.append(done - sum(minutes))
        errors = sum(sum(stats.errors.values()) for stats in traffic.stats.values())
        print(
            f"  .. {time.monotonic() - started:.0f} of {duration:.0f} s: {done:,} requests, {errors} errors",
            file=sys.stderr,
            flush=True,
        )


def print_load(traffic: Traffic, elapsed: float, verdict: Verdict) -> None:
    verdict.say(
        f"{'requests':<16}{'count':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'refusals':>10}"
    )
    total = Stats("total")
    for stats in traffic.stats.values():
        total.requests += stats.requests
        total.latencies_ns += stats.latencies_ns
        total.errors += stats.errors
        total.refusals += stats.refusals
    for stats in [*traffic.stats.values(), total]:
        verdict.say(
            f"{stats.label:<16}{stats.requests:>10,}{stats.requests / elapsed:>9,.0f}"
            f"{stats.percentile_ms(0.5):>9.2f}{stats.percentile_ms(0.99):>9.2f}"
            f"{sum(stats.errors.values()):>8}{sum(stats.refusals.values()):>10}"
        )
    for stats in traffic.stats.values():
        for kind, count in [
            *stats.errors.items(),
            *((f"refused: {k}", c) for k, c in stats.refusals.items()),
        ]:
            verdict.say(f"  {stats.label}: {count} x {kind}")


def check_memory(samples: Samples, final_rss: list[int], duration: float, verdict: Verdict) -> None:
    """Growth from the first minute's end (a quarter of a shorter run) to the end, per instance."""
    mark = 60.0 if duration >= 120 else duration / 4
    first = next((sizes for at, sizes in samples.rss if at >= mark), None)
    if first is None:
        verdict.check("memory growth < 10% after the first minute", False, "no memory sample")
        return
    growths = []
    for n in range(INSTANCES):
        peak = max(sizes[n] for _, sizes in samples.rss)
        growth = (final_rss[n] - first[n]) / first[n]
        growths.append(growth)
        verdict.say(
            f"RSS instance {n + 1}: {first[n] / 2**20:.1f} MiB after {mark:.0f} s, "
            f"final {final_rss[n] / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB, growth {growth:+.1%} "
            f"({len(samples.rss)} samples, every {RSS_EVERY:g} s)"
        )
    verdict.check(
        f"memory growth < {MEMORY_GROWTH_LIMIT:.0%} after the first {mark:.0f} s",
        all(growth < MEMORY_GROWTH_LIMIT for growth in growths),
        ", ".join(f"instance {n + 1} {growth:+.1%}" for n, growth in enumerate(growths)),
    )


def parse_mix(text: str) -> dict[str, int]:
    mix = dict(MIX)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition("=")
        if name not in MIX or not count.isdigit():
            raise ValueError(f"--mix takes {','.join(f'{k}=N' for k in MIX)}, not {item!r}")
        mix[name] = int(count)
    return mix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Soak two gateway instances on PostgreSQL + Redis with mixed traffic; check the books.",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="of traffic (default 10)")
    parser.add_argument("--tenants", type=int, default=1_000, help="seeded tenants (default 1,000)")
    parser.add_argument(
        "--subscribers", type=int, default=500, help="limitAlerts subscriptions (default 500)"
    )
    parser.add_argument(
        "--mix",
        default="",
        help="closed-loop connections per kind, e.g. quota=8,start=4,report=4,checkout=4 (the default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the server logs (the database is dropped)")
    parser.add_argument(
        "--strict-duplicates", action="store_true", help="fail when a subscriber receives an alert twice"
    )
    parser.add_argument(
        "--tamper",
        action="store_true",
        help="a self-test of the checks: corrupt the books after the traffic (a count doubled, a row lost "
        "and an alert lost, one doubled): the count and alert criteria must then FAIL",
    )
    args = parser.parse_args(argv)
    try:
        mix = parse_mix(args.mix)
    except ValueError as error:
        parser.error(str(error))
    if args.tenants < max(mix.values()) or args.tenants < 1:
        parser.error("--tenants must be at least the largest loop count")
    url = os.environ.get("TOLLGATE_DATABASE_URL", "")
    options = SoakOptions(
        minutes=args.minutes,
        tenants=args.tenants,
        subscribers=args.subscribers,
        mix=mix,
        database_url=url
        if url.startswith(("postgres://", "postgresql://", "asyncpg://"))
        else DEFAULT_DATABASE,
        redis_url=os.environ.get("TOLLGATE_REDIS_URL") or DEFAULT_REDIS,
        keep=args.keep,
        strict_duplicates=args.strict_duplicates,
        tamper=args.tamper,
    )
    return uvloop.run(run_soak(options))


if __name__ == "__main__":
    sys.exit(main())
