"""``python -m bench`` (the full suite) and ``python -m bench --quick`` (small, for CI)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

from bench.runner import Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the gateway: requests per second, p50, p99 and SQL queries per request.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small data set and short runs; fails only when a scenario errors",
    )
    parser.add_argument("--only", default="", help="comma-separated scenario keys (e.g. constant,quota)")
    parser.add_argument("--keep", action="store_true", help="keep the server logs and the SQLite database")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TOLLGATE_NAME=VALUE",
        help="a gateway setting for this run (an experiment: e.g. TOLLGATE_LOG_LEVEL=WARNING)",
    )
    args = parser.parse_args(argv)
    only = frozenset(key.strip() for key in args.only.split(",") if key.strip())
    settings = []
    for item in args.set:
        name, equals, value = item.partition("=")
        if not name.startswith("TOLLGATE_") or not equals:
            parser.error(f"--set takes TOLLGATE_NAME=VALUE, not {item!r}")
        settings.append((name, value))
    options = Options.create(
        quick=args.quick, only=only, keep=args.keep, json_path=args.json, settings=tuple(settings)
    )
    return uvloop.run(run(options))


if __name__ == "__main__":
    sys.exit(main())
