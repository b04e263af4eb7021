"""``python -m bench.cluster``: the connector's cycle on several gateway instances behind nginx, and what
PostgreSQL alone does with the same transaction. The figures behind bench/README.md's "Scale on paper".

Every store's connector checks ``quota`` and then starts a process (``startProcess``, a fresh key each time):
each closed-loop connection plays connectors in turn, one pair of requests per store. Run on PostgreSQL and
Redis (``TOLLGATE_DATABASE_URL`` / ``TOLLGATE_REDIS_URL``, else the local defaults), in a fresh
``tollgate_bench_*`` database dropped afterwards, with the data set of ``bench/seeding.py``:

1. one instance, the load generator connected to it directly;
2. ``--instances`` instances behind nginx configured from ``docker/nginx.conf`` (the compose file's proxy),
   with only what Docker provides replaced: the replicas' addresses (an ``upstream`` of local ports instead
   of Docker's DNS name) and the listening address. As in compose, nginx opens a new connection to a
   gateway for each request (``proxy_pass`` to a variable, ``Connection: close`` on plain requests);
3. the same with keep-alive connections from nginx to the gateways (``keepalive`` in the upstream);
4. ``pgbench`` running the least SQL of a start (the INSERT of the start and the counter's conditional
   UPDATE, one transaction) on many stores, then on one store (one counter row): PostgreSQL's own ceiling
   for that transaction on this machine, without any gateway.

nginx is Debian's (``apt-get install nginx``), pgbench comes with PostgreSQL's client; a step whose program is
missing is skipped with a message. Everything shares this machine's cores (load generator, nginx, the
instances, PostgreSQL): the CPU seconds each used are printed beside the rates, so that a figure can be
turned into cores per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import uvloop

from bench.loadgen import LoadResult, run_load
from bench.runner import (
    HOST,
    REPO,
    Server,
    Target,
    free_port,
    fresh_secrets,
    postgres_database,
    running_server,
    seed_data,
    server_environment,
    workspace,
)
from bench.scenarios import PROCESSES, QUOTA, START_PROCESS, expect, graphql_request, new_run_id
from bench.seeding import BenchTenant
from bench.soak import DEFAULT_DATABASE, DEFAULT_REDIS


@dataclass(frozen=True)
class Options:
    instances: int
    tenants: int
    connections: int
    seconds: float
    warmup: float
    database_url: str
    redis_url: str


# -- nginx ----------------------------------------------------------------------------------------


def nginx_config(ports: list[int], listen: int, workdir: Path, *, keepalive: bool) -> str:
    """docker/nginx.conf with Docker's parts replaced by local ones (see the module docstring)."""
    server = (REPO / "docker" / "nginx.conf").read_text()
    server = "\n".join(line for line in server.splitlines() if not line.strip().startswith("resolver "))
    replacements = {
        "listen 8080;": f"listen {HOST}:{listen} backlog=4096;",
        "set $gateway http://gateway:8000;\n": "",
        "proxy_pass $gateway;": "proxy_pass http://gateways;",
    }
    for old, new in replacements.items():
        if old not in server:
            raise RuntimeError(f"docker/nginx.conf changed: {old!r} is gone; update bench/cluster.py")
        server = server.replace(old, new)
    if keepalive:  # an empty Connection header keeps the upstream connection open
        server = server.replace("''      close;", "''      '';")
    servers = "".join(f"    server {HOST}:{port};\n" for port in ports)
    upstream = f"upstream gateways {{\n{servers}" + ("    keepalive 64;\n" if keepalive else "") + "}\n"
    temp = "".join(
        f"{name}_temp_path {workdir / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"worker_processes 1;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'nginx-error.log'} warn;\n"
        "events { worker_connections 8192; }\n"
        f"http {{\naccess_log off;\n{temp}{upstream}{server}\n}}\n"
    )


@contextlib.asynccontextmanager
async def running_nginx(ports: list[int], workdir: Path, *, keepalive: bool) -> AsyncIterator[int]:
    listen = free_port()
    config = workdir / f"nginx-{'keepalive' if keepalive else 'compose'}.conf"
    config.write_text(nginx_config(ports, listen, workdir, keepalive=keepalive))
    process = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
        ["nginx", "-p", str(workdir), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(500):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(HOST, listen)
                writer.close()
                break
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited with {process.returncode}: {workdir / 'nginx-error.log'}")
            await asyncio.sleep(0.01)
        yield listen
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)


# -- measuring ------------------------------------------------------------------------------------


def cpu_seconds(name: str) -> float:
    """CPU seconds used so far by every process whose command is ``name`` (nginx, postgres)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if text[text.index("(") + 1 : text.rindex(")")] == name:
                fields = text.rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def sample_connections(database_url: str, peak: list[int], stop: asyncio.Event) -> None:
    """The most connections the bench database had open at once (the sampler's own excluded)."""
    dsn = database_url.replace("postgres://", "postgresql://", 1)
    name = dsn.rsplit("/", 1)[1].split("?")[0]
    connection = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            count = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name
            )
            peak[0] = max(peak[0], int(count))
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


def connector_cycle(host: str, tenants: list[BenchTenant], run_id: str) -> Callable[[int, int], bytes]:
    """Each connection plays store after store: ``quota``, then ``startProcess`` with a fresh key."""

    def request(index: int, iteration: int) -> bytes:
        tenant = tenants[(index * 7919 + iteration // 2) % len(tenants)]
        process = PROCESSES[(iteration // 2) % len(PROCESSES)]
        if iteration % 2 == 0:
            return graphql_request(host, QUOTA, {"process": process}, tenant.connector_key)
        variables = {"process": process, "key": f"{run_id}-{index}-{iteration}"}
        return graphql_request(host, START_PROCESS, variables, tenant.connector_key)

    return request


def check(body: bytes) -> str | None:
    return expect(b'"allowed":true', forbidden=(b'"errors"', b'"code"'))(body)


@dataclass
class Figures:
    label: str
    result: LoadResult
    gateway_cpu: float
    nginx_cpu: float
    postgres_cpu: float
    connections: int

    def line(self) -> str:
        result = self.result
        rate = result.requests / result.seconds
        latencies = sorted(result.latencies_ns) or [0]
        p50 = statistics.median(latencies) / 1e6
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e6
        per = 1000 / rate if rate else 0.0  # ms of CPU per request, for each CPU second per second
        gateways, nginx, postgres = (
            seconds / result.seconds * per
            for seconds in (self.gateway_cpu, self.nginx_cpu, self.postgres_cpu)
        )
        cpu = f"cpu ms/req: gateways {gateways:.2f}, nginx {nginx:.2f}, postgres {postgres:.2f}"
        return (
            f"{self.label:<38} {rate:>8,.0f} {rate / 2:>8,.0f} {p50:>8.2f} {p99:>8.2f} {result.errors:>6}"
            f" {self.connections:>5}   {cpu}"
        )


async def measure(
    label: str, port: int, servers: list[Server], options: Options, tenants: list[BenchTenant], url: str
) -> Figures:
    factory = connector_cycle(f"{HOST}:{port}", tenants, new_run_id())
    peak, stop = [0], asyncio.Event()
    sampler = asyncio.create_task(sample_connections(url, peak, stop))
    # CPU is read around the measured seconds only: the warm-up runs first, on its own.
    await run_load(HOST, port, factory, connections=options.connections, duration=options.warmup, warmup=0)
    before = (sum(s.cpu_seconds() for s in servers), cpu_seconds("nginx"), cpu_seconds("postgres"))
    result = await run_load(
        HOST, port, factory, connections=options.connections, duration=options.seconds, warmup=0, check=check
    )
    after = (sum(s.cpu_seconds() for s in servers), cpu_seconds("nginx"), cpu_seconds("postgres"))
    stop.set()
    await sampler
    gateways, nginx, postgres = (b - a for a, b in zip(before, after, strict=True))
    return Figures(label, result, gateways, nginx, postgres, connections=peak[0])


# -- PostgreSQL alone -----------------------------------------------------------------------------

PGBENCH_START = """\\set n random(1, :stores)
BEGIN;
INSERT INTO process_start (id, tenant_id, idempotency_key, process, period, started_at)
  SELECT gen_random_uuid(), id, gen_random_uuid()::text, 'PRODUCT_SYNC', period, now()
  FROM bench_store WHERE n = :n;
UPDATE process_counter SET used = used + 1, product_sync = product_sync + 1
  WHERE (tenant_id, period) = (SELECT id, period FROM bench_store WHERE n = :n) RETURNING used;
COMMIT;
"""


async def pgbench(url: str, workdir: Path, options: Options, stores: int) -> str:
    """pgbench's transactions per second on the least SQL of a start, over ``stores`` stores."""
    if shutil.which("pgbench") is None:
        return "skipped: pgbench is not installed"
    dsn = url.replace("postgres://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "DROP TABLE IF EXISTS bench_store;"
            " CREATE TABLE bench_store AS SELECT row_number() OVER (ORDER BY tenant_id) AS n,"
            " tenant_id AS id, max(period) AS period FROM process_counter GROUP BY tenant_id;"
            " CREATE UNIQUE INDEX ON bench_store (n)"
        )
    finally:
        await connection.close()
    script = workdir / "start.sql"
    script.write_text(PGBENCH_START)
    completed = await asyncio.to_thread(
        subprocess.run,
        ["pgbench", "-n", "-M", "prepared", "-f", str(script), "-c", str(options.connections), "-j", "2",
         "-T", str(int(options.seconds)), "-D", f"stores={stores}", dsn],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        return f"pgbench failed: {completed.stderr.strip()[-300:]}"
    tps = [line for line in completed.stdout.splitlines() if line.startswith("tps")]
    latency = [line for line in completed.stdout.splitlines() if line.startswith("latency average")]
    return f"{tps[0] if tps else completed.stdout[-200:]}; {latency[0] if latency else ''}".strip("; ")


# -- the run --------------------------------------------------------------------------------------


def show(figures: Figures) -> bool:
    """Print the row; True when some answer was wrong."""
    print(figures.line(), flush=True)
    if figures.result.first_error:
        print(f"  first error: {figures.result.first_error}")
    return figures.result.errors > 0


async def run(options: Options) -> int:
    header = (
        f"{'connector cycle (quota + startProcess)':<38} {'req/s':>8} {'pairs/s':>8} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'errors':>6} {'PG cx':>5}"
    )
    failed = False
    with workspace(keep=False) as workdir:
        async with postgres_database(options.database_url) as url:
            secrets_env = fresh_secrets()
            target = Target("PostgreSQL", url, 1, options.redis_url)
            env = server_environment(target, secrets_env, workdir)
            env["TOLLGATE_REDIS_CHANNEL_PREFIX"] = f"tollgate-cluster-{new_run_id()}:"
            env["TOLLGATE_TRUSTED_PROXIES"] = HOST
            data = await seed_data(options.tenants, env, workdir)
            print(
                f"== {options.instances} instances (1 uvicorn process each) on PostgreSQL + Redis, "
                f"{options.connections} connections, {options.seconds:.0f} s measured"
                f" after {options.warmup:.0f} s; "
                f"{len(data.tenants):,} stores, {os.cpu_count()} cores shared by everything"
            )
            print(header)
            common = (options, data.tenants, url)
            async with contextlib.AsyncExitStack() as stack:
                servers = [
                    await stack.enter_async_context(
                        running_server(target, env, workdir / f"server-{n + 1}.log")
                    )
                    for n in range(options.instances)
                ]
                failed |= show(await measure("1 instance, direct", servers[0].port, servers[:1], *common))
                if shutil.which("nginx") is None:
                    print("nginx: skipped (apt-get install nginx)")
                else:
                    for keepalive in (False, True):
                        ports = [server.port for server in servers]
                        async with running_nginx(ports, workdir, keepalive=keepalive) as listen:
                            how = "keep-alive upstream" if keepalive else "as compose"
                            label = f"{options.instances} behind nginx ({how})"
                            failed |= show(await measure(label, listen, servers, *common))
            print("PostgreSQL alone (pgbench, the least SQL of a start, one transaction):")
            stores = len(data.tenants)
            print(f"  {stores:,} stores: {await pgbench(url, workdir, options, stores)}")
            print(f"  1 store (one counter row): {await pgbench(url, workdir, options, 1)}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=5)
    args = parser.parse_args()
    options = Options(
        instances=args.instances,
        tenants=args.tenants,
        connections=args.connections,
        seconds=args.seconds,
        warmup=args.warmup,
        database_url=os.environ.get("TOLLGATE_DATABASE_URL", DEFAULT_DATABASE),
        redis_url=os.environ.get("TOLLGATE_REDIS_URL", DEFAULT_REDIS),
    )
    if not options.database_url.startswith(("postgres://", "postgresql://")):
        print("bench.cluster needs PostgreSQL (TOLLGATE_DATABASE_URL)", file=sys.stderr)
        return 2
    return uvloop.run(run(options))


if __name__ == "__main__":
    sys.exit(main())
