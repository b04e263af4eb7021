"""The command line, run as an operator would: a real process on a fresh SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.schema import schema
from tests.live import live_gateway


def tollgate(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TOLLGATE_DATABASE_URL": f"sqlite://{tmp_path / 'cli.sqlite3'}",
        "TOLLGATE_MAIL_DIR": str(tmp_path / "mail"),
    }


def test_migrate_seed_token_and_api_keys(env: dict[str, str]) -> None:
    tollgate("migrate", env=env)
    tollgate("migrate", env=env)  # idempotent

    seeded = tollgate("seed", "--demo", env=env)
    assert "connector key for acme: tg_" in seeded.stdout
    assert "tollgate token --email admin@acme.test" in seeded.stdout
    again = tollgate("seed", "--demo", env=env)
    assert "not seeded" in again.stdout

    token = tollgate("token", "--email", "admin@acme.test", env=env).stdout.strip()
    assert token.count(".") == 2

    created = tollgate(
        "apikey", "create", "--tenant", "nova", "--scopes", "quota:check,usage:report", env=env
    )
    key = created.stdout.strip()
    assert key.startswith("tg_")
    assert "not shown again" in created.stderr
    prefix = key.split("_")[1]
    assert f"{prefix} revoked" in tollgate("apikey", "revoke", prefix, env=env).stdout
    assert tollgate("apikey", "revoke", prefix, env=env, check=False).returncode == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "--email", "nobody@nowhere.test"), "no user"),
        (("apikey", "create", "--tenant", "nope", "--scopes", "quota:check"), "no tenant"),
        (("apikey", "create", "--tenant", "acme", "--scopes", "root:all"), "unknown scopes"),
    ],
)
def test_operator_mistakes_are_reported_plainly(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    tollgate("seed", "--demo", env=env)
    result = tollgate(*args, env=env, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_export_schema_prints_the_sdl(env: dict[str, str]) -> None:
    assert tollgate("export-schema", env=env).stdout == schema.as_str() + "\n"


def test_serve_demo_answers_graphql(env: dict[str, str], tmp_path: Path) -> None:
    with live_gateway(env, tmp_path / "serve.log") as gateway:
        response = httpx.post(f"{gateway.url}/graphql", json={"query": "{ plans { code } }"}, timeout=5)
        assert "storefront-m" in [plan["code"] for plan in response.json()["data"]["plans"]]
    output = gateway.output
    assert "connector key for acme" in output
    assert "tollgate token --email admin@acme.test" in output
    # Structured JSON logs, with the request id also returned to the client.
    access = [
        json.loads(line) for line in output.splitlines() if line.startswith("{") and '"request"' in line
    ]
    graphql_lines = [line for line in access if line["path"] == "/graphql"]
    assert graphql_lines[0]["request_id"] == response.headers["x-request-id"]
    assert graphql_lines[0]["status"] == 200
