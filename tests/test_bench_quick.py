"""The benchmark suite's quick mode runs end to end (CI): every scenario answers right and prints a figure.

Speed is never asserted here (the machine is shared); only that each scenario ran without a wrong answer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.runner import ROW_KEYS

REPO = Path(__file__).resolve().parent.parent
FIGURE = re.compile(r"\d")


def test_quick_benchmark_prints_a_figure_for_every_scenario(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(report_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    rows = json.loads(report_path.read_text())
    targets = {row["target"] for row in rows}
    assert targets, output[-2000:]
    for target in targets:
        keys = [row["key"] for row in rows if row["target"] == target]
        assert keys == list(ROW_KEYS), (target, keys)
    for row in rows:
        assert row["error"] is None, row
        if row["note"].startswith("skipped:"):
            continue
        if row["rps"] is not None:
            assert row["rps"] > 0, row
            assert row["errors"] == 0, row
            assert row["p50_ms"] <= row["p99_ms"], row
            assert row["sql_per_request"] is not None, row
            assert row["sql_per_request"][0] >= 0, row
            assert row["sql_warm"] is not None, row
            assert row["sql_warm"][0] >= 0, row
        else:
            assert FIGURE.search(row["note"]), row
        printed = [line for line in completed.stdout.splitlines() if line.startswith(row["label"])]
        assert printed, (row["label"], output[-3000:])
        assert FIGURE.search(printed[0].removeprefix(row["label"])), printed[0]


def test_scenario_checks_count_a_wrong_answer_as_an_error(tmp_path: Path) -> None:
    """A wrong answer is an error, not a figure: the catalog needs all 200 add-ons, a start its success."""
    from bench.scenarios import build_scenarios
    from bench.seeding import BenchTenant

    tenant = BenchTenant("t", "tg_key", "token", 1000)
    catalog = next(s for s in build_scenarios("h:1", [tenant], "run", connections=1) if s.key == "catalog")
    assert catalog.check(b'{"data":{"plans":[],"addOns":[' + b'{"isFree":false},' * 3 + b"]}}") is not None
    good = b'{"data":{"plans":[],"addOns":[' + b",".join([b'{"isFree":false}'] * 200) + b"]}}"
    assert catalog.check(good) is None
    start = next(
        s for s in build_scenarios("h:1", [tenant], "run", connections=1) if s.key == "start_process"
    )
    typed_error = b'{"data":{"startProcess":{"__typename":"InvalidInputError","code":"INVALID_INPUT"}}}'
    assert start.check(typed_error) is not None


def test_minimal_baselines_count_a_wrong_answer_as_an_error() -> None:
    """The minimal endpoints' answers are checked as the gateway's are: a denial, a replay of a fresh key,
    a report not applied or crossing a threshold, a refused checkout are errors."""
    from bench.scenarios import build_scenarios
    from bench.seeding import BenchTenant

    tenant = BenchTenant("t", "tg_key", "token", 1000)
    scenarios = {s.key: s for s in build_scenarios("h:1", [tenant], "run", connections=1)}
    for key in ("minimal_start", "minimal_start_one"):
        check = scenarios[key].check
        assert check(b'{"allowed":true,"ticket":"t1","count":12}') is None
        assert check(b'{"allowed":false,"reason":"DENIED"}') is not None
        assert check(b'{"allowed":true,"ticket":"t1","replayed":true}') is not None
    report = scenarios["minimal_report"].check
    assert report(b'{"applied":true,"credits":500,"crossed":0}') is None
    assert report(b'{"applied":false}') is not None
    assert report(b'{"applied":true,"credits":900,"crossed":1}') is not None
    cart = scenarios["minimal_checkout"].check
    assert cart(b'{"added":true,"cart":"c1","quantity":1}') is None
    assert cart(b'{"order":"o1","lines":1,"total":"7.90"}') is None
    assert cart(b'{"error":"EMPTY_CART"}') is not None
    assert cart(b'{"order":"o1","replayed":true}') is not None
    assert cart(b'{"error":"unavailable"}') is not None
