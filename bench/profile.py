"""Profile one scenario in-process with pyinstrument: where does a request's time go?

    .venv/bin/pip install pyinstrument   # not a dependency of the project
    .venv/bin/python -m bench.profile catalog --requests 200

The gateway is built as ``tollgate serve`` builds it, on a seeded SQLite file, and driven through
httpx's ASGI transport (no sockets), sequentially, after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import structlog
from tortoise import Tortoise

from app.db import tortoise_config
from app.main import create_app
from app.settings import Settings
from bench.scenarios import build_scenarios, new_run_id
from bench.seeding import seed_bench_data


def _split(raw: bytes) -> tuple[str, str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.decode().split("\r\n")
    method, path, _ = request_line.split(" ")
    headers = dict(line.split(": ", 1) for line in lines)
    headers.pop("content-length", None)
    return method, path, headers, body


async def profile(scenario_key: str, requests: int, tenants: int, top_lines: int = 40) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed: .venv/bin/pip install pyinstrument"
    workdir = Path(tempfile.mkdtemp(prefix="tollgate-profile-"))
    try:
        settings = Settings(
            database_url=f"sqlite://{workdir / 'profile.sqlite3'}", rate_limit_per_second=0, mail_dir=workdir
        )
        data = await seed_bench_data(settings, tenants=tenants, now=dt.datetime.now(dt.UTC))
        await Tortoise.init(config=tortoise_config(settings))
        logging.getLogger().setLevel(logging.WARNING)
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        app = create_app(settings, manage_orm=False, run_background_tasks=False)
        scenarios = {s.key: s for s in build_scenarios("profile", data.tenants, new_run_id(), connections=1)}
        scenario = scenarios[scenario_key]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://profile") as client:

            async def one(iteration: int) -> None:
                method, path, headers, body = _split(scenario.factory(0, iteration))
                response = await client.request(method, path, headers=headers, content=body)
                problem = scenario.check(response.content)
                if response.status_code != 200 or problem:
                    raise RuntimeError(f"wrong answer: {response.status_code} {problem}")

            for iteration in range(20):
                await one(iteration)
            profiler = Profiler(interval=0.0005, async_mode="enabled")
            with profiler:
                for iteration in range(20, 20 + requests):
                    await one(iteration)
        await Tortoise.close_connections()
        from pyinstrument.renderers import ConsoleRenderer

        tree = profiler.output_text(unicode=False, color=False, show_all=False)
        flat = profiler.output(
            ConsoleRenderer(unicode=False, color=False, flat=True, time="percent_of_total")
        )
        per_request = profiler.last_session.duration / requests * 1000 if profiler.last_session else 0.0
        top = "\n".join(flat.splitlines()[:top_lines])
        return f"{scenario_key}: {per_request:.2f} ms per request, in-process\n{tree}\nself time, top:\n{top}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument(
        "scenario", help="quota, start_process, report_usage, catalog, my_plan, cart_checkout..."
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=50)
    args = parser.parse_args()
    print(asyncio.run(profile(args.scenario, args.requests, args.tenants)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
