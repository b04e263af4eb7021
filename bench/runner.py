"""Runs every scenario against the gateway served by uvicorn in a child process, and prints the table.

One "target" is a database and a number of workers: SQLite with one worker always; given a PostgreSQL
``TOLLGATE_DATABASE_URL``, PostgreSQL with one and with two workers (its own database, created and
dropped here; ``TOLLGATE_REDIS_URL`` is passed on so that two workers share alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import orjson
from cryptography.fernet import Fernet

from bench import websocket
from bench.loadgen import LoadResult, request_once, run_load
from bench.scenarios import REPORT_USAGE, HttpScenario, build_scenarios, graphql_request, new_run_id
from bench.seeding import BenchData, BenchTenant
from bench.seeding import load as load_bench_data

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
SQL_SAMPLES = 10
SAMPLE_ITERATION = 1_000_000  # sample requests use iterations far from the load's: no key collides
# The rows every run prints, in order (the quick-mode test checks one figure line for each).
FANOUT_KEY = "fanout"
COLD_START_KEY = "cold_start"
MEMORY_KEY = "ws_memory"
IDLE_PEAK_FACTOR = 10  # idle WebSockets are measured up to ten times the fan-out's subscribers (issue 17)
# Every row a run prints for each target, in order (the quick-mode test expects a figure or "skipped:").
ROW_KEYS = (
    "constant", "one_row", "hand_quota", "hand_start", "minimal_start", "minimal_start_one", "minimal_report",
    "minimal_checkout", "quota", "start_process", "start_one_tenant", "report_usage", "catalog", "my_plan",
    "cart_checkout", FANOUT_KEY, COLD_START_KEY, MEMORY_KEY,
)  # fmt: skip
HAND_WRITTEN = {"quota": "hand_quota", "start_process": "hand_start"}  # the rows compared with them
MINIMAL = {
    "start_process": "minimal_start",
    "start_one_tenant": "minimal_start_one",
    "report_usage": "minimal_report",
    "cart_checkout": "minimal_checkout",
}


@dataclass(frozen=True)
class Goal:
    """One of the issue's targets for a row: a ratio to another row's req/s, or a rate (no reference)."""

    reference: str | None
    minimum: float  # the ratio, or requests per second
    p99_ms: float | None = None  # and a p99 latency below this
    only_on: str = ""  # the databases it is set for, by the start of their name ("SQLite"); all when empty

    def verdict(self, result: LoadResult, rows: dict[str, Row]) -> str:
        """``>= 0.8x minimal_start: yes``, or ``: ?`` when the reference row did not run."""
        value: float | None = result.rps
        if self.reference is None:
            text = f">= {self.minimum:,.0f} req/s"
        else:
            text = f">= {self.minimum:g}x {self.reference}"
            reference = rows.get(self.reference)
            value = result.rps / reference.result.rps if reference and reference.result else None
        if self.p99_ms is not None:
            text += f", p99 < {self.p99_ms:g} ms"
        if value is None:
            return f"{text}: ?"
        met = value >= self.minimum and (self.p99_ms is None or result.percentile_ms(0.99) < self.p99_ms)
        return f"{text}: {'yes' if met else 'NO'}"


# The targets (printed, never asserted: the exit code says only whether every answer was right).
TARGETS: dict[str, tuple[Goal, ...]] = {
    "quota": (Goal("hand_quota", 1.0), Goal("constant", 0.33, p99_ms=5.0)),
    "start_process": (Goal("hand_start", 0.8), Goal("minimal_start", 0.8)),
    "start_one_tenant": (Goal("minimal_start_one", 0.8),),
    "report_usage": (Goal("minimal_report", 0.7),),
    "my_plan": (Goal(None, 2_500, only_on="SQLite"),),
    "cart_checkout": (Goal("minimal_checkout", 0.6),),
}


@dataclass(frozen=True)
class Options:
    quick: bool
    tenants: int
    connections: int
    duration: float
    warmup: float
    subscribers: int
    fanout_rounds: int
    postgres_url: str | None
    redis_url: str | None
    only: frozenset[str] = frozenset()
    keep: bool = False
    json_path: Path | None = None
    settings: tuple[tuple[str, str], ...] = ()  # TOLLGATE_* variables for the gateway (experiments)

    @classmethod
    def create(
        cls,
        *,
        quick: bool,
        only: frozenset[str] = frozenset(),
        keep: bool = False,
        json_path: Path | None = None,
        settings: tuple[tuple[str, str], ...] = (),
    ) -> Options:
        url = os.environ.get("TOLLGATE_DATABASE_URL", "")
        postgres = url if url.startswith(("postgres://", "postgresql://", "asyncpg://")) else None
        return cls(
            quick=quick,
            tenants=20 if quick else 1_000,
            connections=8 if quick else 32,
            duration=1.0 if quick else 10.0,
            warmup=0.3 if quick else 5.0,
            subscribers=50 if quick else 1_000,
            fanout_rounds=2 if quick else 5,
            postgres_url=postgres,
            redis_url=os.environ.get("TOLLGATE_REDIS_URL") or None,
            only=only,
            keep=keep,
            json_path=json_path,
            settings=settings,
        )


@dataclass(frozen=True)
class Target:
    name: str
    database_url: str
    workers: int
    redis_url: str | None


@dataclass
class Row:
    key: str
    label: str
    result: LoadResult | None = None
    sql: list[int] = field(default_factory=list)  # statements of each sampled request, caches cold
    sql_warm: list[int] = field(default_factory=list)  # the same, sampled after the load
    note: str = ""  # "skipped: ..." or a one-line figure for non-HTTP scenarios
    error: str | None = None


# -- the server process ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def fresh_secrets() -> dict[str, str]:
    """A JWT secret and an encryption key of the run's own (the servers run in production mode)."""
    return {
        "TOLLGATE_JWT_SECRET": secrets.token_urlsafe(48),
        "TOLLGATE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }


async def seed_data(tenants: int, env: dict[str, str], workdir: Path) -> BenchData:
    """``tenants`` tenants seeded by ``bench.seeding`` in the database of ``env``; their keys and tokens."""
    data_path = workdir / "tenants.json"
    seeder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.seeding", "--tenants", str(tenants), "--out", str(data_path),
        env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await seeder.communicate()
    if seeder.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{output.decode()[-3000:]}")
    return load_bench_data(data_path)


def server_environment(
    target: Target, secrets_env: dict[str, str], workdir: Path, settings: tuple[tuple[str, str], ...] = ()
) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TOLLGATE_")}
    env.update(secrets_env)
    env.update(
        {
            "TOLLGATE_DATABASE_URL": target.database_url,
            "TOLLGATE_ENV": "production",
            "TOLLGATE_METRICS_TOKEN": "bench-metrics-token",  # production refuses to start without one
            "TOLLGATE_RATE_LIMIT_PER_SECOND": "0",  # one load generator is many callers at once
            "TOLLGATE_MAIL_DIR": str(workdir / "mail"),
            "TOLLGATE_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO),
        }
    )
    if target.redis_url:
        env["TOLLGATE_REDIS_URL"] = target.redis_url
    env.update(settings)
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    cold_start: float

    def pids(self) -> list[int]:
        """The server process and its uvicorn workers."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:
                    children.append(int(stat.parent.name))
        return [self.process.pid, *children]

    def cpu_seconds(self) -> float:
        total = 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        for pid in self.pids():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total


@contextlib.asynccontextmanager
async def running_server(target: Target, env: dict[str, str], log: Path) -> AsyncIterator[Server]:
    port = free_port()
    probe = graphql_request(f"{HOST}:{port}", "query Probe { plans { code } }", {}, None)
    with log.open("ab") as output:
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: ASYNC220 (returns at once: the loop below polls it)
            [sys.executable, "-m", "bench.server", "--port", str(port), "--workers", str(target.workers)],
            env=env,
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = started + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
            try:
                response = await request_once(HOST, port, probe, wait=5)
                if response.status == 200 and b'"plans"' in response.body:
                    break
            except OSError:
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the server did not answer within 60 s; see {log}")
            await asyncio.sleep(0.01)
        yield Server(process, port, time.perf_counter() - started)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the server and its workers: our own session
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait)


# -- databases ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def postgres_database(base_url: str) -> AsyncIterator[str]:
    """A fresh database beside the one ``TOLLGATE_DATABASE_URL`` names, dropped afterwards."""
    base, _, _ = base_url.rpartition("/")
    name = f"tollgate_bench_{uuid.uuid4().hex[:10]}"
    admin_dsn = base.replace("postgres://", "postgresql://", 1).replace("asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(f"{admin_dsn}/postgres", timeout=10)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield f"{base}/{name}"
    finally:
        connection = await asyncpg.connect(f"{admin_dsn}/postgres", timeout=10)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept the server logs and the SQLite database in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# -- scenarios ------------------------------------------------------------------------------------


async def root_fields(port: int) -> set[str]:
    document = "{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }"  # noqa: E501
    response = await request_once(HOST, port, graphql_request(f"{HOST}:{port}", document, {}, None))
    schema = orjson.loads(response.body)["data"]["__schema"]
    names = set()
    for root, key in (
        ("Query", "queryType"),
        ("Mutation", "mutationType"),
        ("Subscription", "subscriptionType"),
    ):
        for field_ in (schema.get(key) or {}).get("fields", []):
            names.add(f"{root}.{field_['name']}")
    return names


def with_sql_header(raw: bytes) -> bytes:
    line_end = raw.index(b"\r\n")
    return raw[:line_end] + b"\r\nx-bench-sql: 1" + raw[line_end:]


async def sample_sql(scenario: HttpScenario, server: Server, first: int, counts: list[int]) -> str | None:
    """Sequential requests, each answer checked and its SQL statements counted in the server; the first
    wrong answer, or None."""
    for sample in range(first, first + SQL_SAMPLES):
        raw = with_sql_header(scenario.factory(0, SAMPLE_ITERATION + sample))
        response = await request_once(HOST, server.port, raw)
        problem = f"HTTP {response.status}" if response.status != 200 else scenario.check(response.body)
        if problem:
            return f"sample answer wrong: {problem}"
        counts.append(int(response.headers.get("x-bench-sql", "-1")))
    return None


async def run_http_scenario(scenario: HttpScenario, server: Server, options: Options) -> Row:
    row = Row(scenario.key, scenario.label)
    # Samples before the load (the caches cold) and after it (warm, as a running gateway serves).
    row.error = await sample_sql(scenario, server, 0, row.sql)
    if row.error:
        return row
    row.result = await run_load(
        HOST,
        server.port,
        scenario.factory,
        connections=options.connections,
        duration=options.duration,
        warmup=options.warmup,
        check=scenario.check,
    )
    if row.result.errors:
        row.error = f"{row.result.errors} wrong answers, first: {row.result.first_error}"
        return row
    row.error = await sample_sql(scenario, server, SQL_SAMPLES, row.sql_warm)
    return row


async def measure_generator_ceiling(scenario: HttpScenario, server: Server, options: Options) -> str:
    """The constant baseline with CPU accounting: is the load generator or the server saturated?"""
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    server_before = server.cpu_seconds()
    started = time.perf_counter()
    result = await run_load(
        HOST,
        server.port,
        scenario.factory,
        connections=options.connections,
        duration=options.duration,
        warmup=0.0,
        check=scenario.check,
    )
    wall = time.perf_counter() - started
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    own = (own_after.ru_utime - own_before.ru_utime) + (own_after.ru_stime - own_before.ru_stime)
    served = server.cpu_seconds() - server_before
    return (
        f"load generator ceiling: {result.rps:,.0f} req/s on the constant endpoint; the generator used "
        f"{own / wall:.0%} of one core, the server {served / wall:.0%} (of {os.cpu_count()} cores)"
    )


async def settled(server: Server, *, idle: float = 0.1, most: float = 30.0) -> None:
    """Wait until the server is nearly idle (under ``idle`` of a core over a quarter of a second), ``most``
    seconds at most: the work queued by thousands of WebSocket frames is done."""
    deadline = time.perf_counter() + most
    await asyncio.sleep(0.5)
    while time.perf_counter() < deadline:
        before = server.cpu_seconds()
        await asyncio.sleep(0.25)
        if server.cpu_seconds() - before < idle * 0.25:
            return


async def run_fanout(server: Server, tenant: BenchTenant, options: Options, memory: Row) -> Row:
    """Memory per idle connection (at the subscribers' number, then ten times as many), then the time from a
    usage report to the last subscriber's alert."""
    row = Row(FANOUT_KEY, f"7. alert fan-out ({options.subscribers} subscribers)")
    url = f"ws://{HOST}:{server.port}/graphql"
    # A first batch imports and builds what every later connection shares, and leaves the allocator a batch's
    # transient peak: neither is memory per connection.
    await websocket.close_all(await websocket.open_initialized(url, tenant.admin_token, 100))
    before = server.rss_bytes()
    connections = await websocket.open_initialized(url, tenant.admin_token, options.subscribers)
    await asyncio.sleep(1.0)
    at_first = server.rss_bytes()
    peak = options.subscribers * IDLE_PEAK_FACTOR
    others = await websocket.open_initialized(url, tenant.admin_token, peak - options.subscribers)
    await asyncio.sleep(1.0)
    at_peak = server.rss_bytes()
    await websocket.close_all(others)  # the fan-out below reaches the first ones only
    await settled(server)  # the server closes thousands of connections: let it finish before subscribing
    memory.note = (
        f"{(at_peak - before) / peak / 1024:.1f} KiB per idle connection at {peak:,} connections "
        f"({(at_first - before) / options.subscribers / 1024:.1f} at {options.subscribers:,}; server RSS "
        f"{before / 2**20:.0f} -> {at_first / 2**20:.0f} -> {at_peak / 2**20:.0f} MiB)"
    )
    await asyncio.sleep(1.0)
    subscribers = websocket.AlertSubscribers(connections)
    try:
        await subscribers.subscribe()
        await settled(server)  # every subscription registered (with 2 workers, on Redis) before the reports
        rounds: list[websocket.FanOutRound] = []
        # Alternately above 80% of the credit limit (TRIGGERED) and back below it (RESOLVED).
        for number in range(options.fanout_rounds * 2):
            state, percent = ("TRIGGERED", 85) if number % 2 == 0 else ("RESOLVED", 50)
            subscribers.reset()
            credits = tenant.credits_limit * percent // 100
            counts = {
                "variants": credits - 7,
                "customers": 0,
                "contacts": 0,
                "salesReps": 5,
                "adminUsers": 2,
                "storageBytes": 1024**3,
                "users": 2,
                "measuredAt": dt.datetime.now(dt.UTC).isoformat(),
            }
            raw = graphql_request(
                f"{HOST}:{server.port}", REPORT_USAGE, {"input": counts}, tenant.connector_key
            )
            cpu_before = server.cpu_seconds()
            sent = time.perf_counter()
            response = await request_once(HOST, server.port, raw)
            answered = time.perf_counter()
            if response.status != 200 or b'"ReportUsageSuccess"' not in response.body:
                row.error = f"reportUsage failed: {response.body[:300]!r}"
                return row
            if not await subscribers.wait_all(seconds=30):
                missing = sum(at is None for at in subscribers.received)
                row.error = subscribers.problem or f"{missing} of {len(connections)} subscribers got no alert"
                return row
            states = {payload["data"]["limitAlerts"]["state"] for payload in subscribers.payloads}
            if states != {state}:
                row.error = f"expected {state} alerts, got {states}"
                return row
            times = [at for at in subscribers.received if at is not None]
            rounds.append(
                websocket.FanOutRound(
                    state,
                    (answered - sent) * 1e3,
                    (min(times) - sent) * 1e3,
                    (max(times) - sent) * 1e3,
                    (server.cpu_seconds() - cpu_before) * 1e3,
                )
            )
        measured = rounds[1:]  # the first round also warms the subscription path up
        last = statistics.median(r.last_ms for r in measured)
        worst = max(r.last_ms for r in measured)
        report = statistics.median(r.report_ms for r in measured)
        first = statistics.median(r.first_ms for r in measured)
        row.note = (
            f"last delivery {last:.1f} ms median (worst {worst:.1f}) over {len(measured)} reports; "
            f"first {first:.1f} ms; the reportUsage answer {report:.1f} ms; server CPU "
            f"{statistics.mean(r.cpu_ms for r in measured):.0f} ms per report and its fan-out"
        )
    finally:
        subscribers.stop()
        await websocket.close_all(connections)
    return row


# -- a run ----------------------------------------------------------------------------------------


async def run_target(target: Target, options: Options, workdir: Path, out: list[str]) -> list[Row]:
    env = server_environment(target, fresh_secrets(), workdir, options.settings)
    seeding = time.perf_counter()
    data = await seed_data(options.tenants, env, workdir)
    emit(
        out,
        f"\n== {target.name}: {target.workers} worker(s), uvicorn + uvloop + httptools, "
        f"{options.connections} connections, {options.duration:g} s per scenario after {options.warmup:g} s "
        f"warm-up; {len(data.tenants)} tenants, {data.add_on_count} add-ons (seeded in "
        f"{time.perf_counter() - seeding:.1f} s)",
    )
    rows: list[Row] = []
    log = workdir / f"server-{target.name.split()[0].lower()}-{target.workers}.log"
    websocket.raise_open_files_limit()  # the server inherits it: one descriptor per idle WebSocket
    async with running_server(target, env, log) as server:
        cold = Row(COLD_START_KEY, "8. cold start to first answer", note=f"{server.cold_start:.2f} s")
        fields = await root_fields(server.port)
        scenarios = build_scenarios(
            f"{HOST}:{server.port}", data.tenants, new_run_id(), connections=options.connections
        )
        ceiling_note = ""
        for scenario in scenarios:
            if options.only and scenario.key not in options.only:
                continue
            missing = [name for name in scenario.needs if name not in fields]
            if missing:
                rows.append(
                    Row(scenario.key, scenario.label, note=f"skipped: {', '.join(missing)} not in the schema")
                )
                continue
            try:
                row = await run_http_scenario(scenario, server, options)
            except Exception as error:  # a scenario that crashes is reported, and the run goes on
                row = Row(scenario.key, scenario.label, error=f"{type(error).__name__}: {error}")
            rows.append(row)
            progress = row.error or (f"{row.result.rps:,.0f} req/s" if row.result else row.note)
            print(f"  .. {scenario.label}: {progress}", file=sys.stderr, flush=True)
            if scenario.key == "constant" and not row.error:
                ceiling_note = await measure_generator_ceiling(scenario, server, options)
        memory = Row(MEMORY_KEY, "8. memory per idle WebSocket")
        if options.only and FANOUT_KEY not in options.only:
            pass
        elif "Subscription.limitAlerts" not in fields or "Mutation.reportUsage" not in fields:
            rows.append(
                Row(
                    FANOUT_KEY,
                    "7. alert fan-out",
                    note="skipped: limitAlerts or reportUsage not in the schema",
                )
            )
        elif target.workers > 1 and not target.redis_url:
            rows.append(
                Row(
                    FANOUT_KEY,
                    "7. alert fan-out",
                    note="skipped: 2 workers share alerts only through Redis (TOLLGATE_REDIS_URL)",
                )
            )
        else:
            try:
                rows.append(await run_fanout(server, data.tenants[-1], options, memory))
            except Exception as error:
                rows.append(Row(FANOUT_KEY, "7. alert fan-out", error=f"{type(error).__name__}: {error}"))
        rows.append(cold)
        if memory.note:
            rows.append(memory)
        elif not options.only:
            memory.note = "skipped: needs the fan-out scenario's connections"
            rows.append(memory)
    print_table(rows, out, target.name)
    if ceiling_note:
        emit(out, ceiling_note)
    emit(out, f"(server log: {log.name}; the machine is shared, so absolute figures vary between runs)")
    return rows


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


def sql_range(counts: list[int]) -> str:
    if not counts:
        return "-"
    return f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"


def print_table(rows: list[Row], out: list[str], database: str) -> None:
    """The rows with the ratios to their baselines and the issue's targets met or not (``database``: the
    target's name, for targets set on one database only)."""
    by_key = {row.key: row for row in rows if row.result}

    def rps(key: str | None) -> float | None:
        found = by_key.get(key or "")
        return found.result.rps if found and found.result else None

    header = f"{'scenario':<36}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'SQL/req':>9}{'warm':>6}{'errors':>8}"
    emit(out, header + "  vs hand-written  vs minimal  vs constant  targets")
    for row in rows:
        if row.error:
            emit(out, f"{row.label:<36}ERROR: {row.error}")
        elif row.result is None:
            emit(out, f"{row.label:<36}{row.note}")
        else:
            result = row.result
            goals = [goal for goal in TARGETS.get(row.key, ()) if database.startswith(goal.only_on)]
            hand, minimal = rps(HAND_WRITTEN.get(row.key)), rps(MINIMAL.get(row.key))
            emit(
                out,
                f"{row.label:<36}{result.rps:>10,.0f}{result.percentile_ms(0.5):>9.2f}"
                f"{result.percentile_ms(0.99):>9.2f}{sql_range(row.sql):>9}{sql_range(row.sql_warm):>6}"
                f"{result.errors:>8}  {ratio(result.rps, hand):>15}  {ratio(result.rps, minimal):>10}"
                f"  {ratio(result.rps, rps('constant')):>11}"
                f"  {'; '.join(goal.verdict(result, by_key) for goal in goals)}".rstrip(),
            )


def emit(out: list[str], line: str) -> None:
    out.append(line)
    print(line, flush=True)


async def run(options: Options) -> int:
    out: list[str] = []
    failures = 0
    report: list[dict[str, object]] = []
    with workspace(options.keep) as workdir:
        targets: list[tuple[Target, bool]] = []
        if not (options.quick and options.postgres_url):  # CI runs quick mode once per database
            targets.append((Target("SQLite (file)", f"sqlite://{workdir / 'bench.sqlite3'}", 1, None), False))
        if options.postgres_url:
            workers = (1,) if options.quick else (1, 2)
            targets += [
                (Target("PostgreSQL", options.postgres_url, n, options.redis_url), True) for n in workers
            ]
        for target, on_postgres in targets:
            try:
                if on_postgres:
                    async with postgres_database(target.database_url) as url:
                        database = Target(target.name, url, target.workers, target.redis_url)
                        rows = await run_target(database, options, workdir, out)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        (workdir / "bench.sqlite3").unlink()
                    rows = await run_target(target, options, workdir, out)
            except Exception as error:  # the server or the seeding broke: report it, go on with the next
                rows = [
                    Row(
                        "run",
                        f"{target.name}, {target.workers} worker(s)",
                        error=f"{type(error).__name__}: {error}",
                    )
                ]
                emit(out, f"\n== {target.name}, {target.workers} worker(s): ERROR: {rows[0].error}")
            failures += sum(1 for row in rows if row.error)
            report += [row_json(target, row) for row in rows]
            if any(row.error for row in rows):
                for path in sorted(workdir.glob("server-*.log"), key=lambda p: p.stat().st_mtime)[-1:]:
                    errors = [line for line in path.read_text().splitlines() if '"exception"' in line]
                    emit(out, f"-- server errors logged in {path.name}: {len(errors)}")
                    for line in errors[:2]:
                        emit(out, str(orjson.loads(line).get("exception", line))[-2000:])
    emit(out, f"\n{failures} scenario(s) failed" if failures else "\nall scenarios ran")
    if options.json_path is not None:
        options.json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 1 if failures else 0


def row_json(target: Target, row: Row) -> dict[str, object]:
    result = row.result
    return {
        "target": f"{target.name}, {target.workers} worker(s)",
        "key": row.key,
        "label": row.label,
        "rps": round(result.rps, 1) if result else None,
        "p50_ms": round(result.percentile_ms(0.5), 3) if result else None,
        "p99_ms": round(result.percentile_ms(0.99), 3) if result else None,
        "sql_per_request": [min(row.sql), max(row.sql)] if row.sql else None,
        "sql_warm": [min(row.sql_warm), max(row.sql_warm)] if row.sql_warm else None,
        "errors": result.errors if result else None,
        "note": row.note,
        "error": row.error,
    }
