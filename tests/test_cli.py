"""The command line, run as an operator would: a real process on a fresh SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from websockets.exceptions import ConnectionClosed

from app.schema import schema
from tests.live import live_gateway, subscriber


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


def test_secrets_move_to_a_new_key_so_the_old_one_can_go(env: dict[str, str], tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = {**env, "TOLLGATE_ENCRYPTION_KEY": old}
    with live_gateway(env, tmp_path / "serve.log") as gateway:
        headers = {"Authorization": f"Bearer {gateway.token('admin@nova.test')}"}
        plan = httpx.post(
            f"{gateway.url}/graphql",
            headers=headers,
            timeout=10,
            json={"query": "{ myPlan { ... on MyPlan { activeAddOns { id addOn { code } } } } }"},
        ).json()["data"]["myPlan"]["activeAddOns"]
        target = next(a["id"] for a in plan if a["addOn"]["code"] == "integration-mercado-livre")
        configure = (
            "mutation C($id: ID!, $s: JSON!) "
            "{ configureIntegration(activeAddOnId: $id, settings: $s) { __typename } }"
        )
        settings = {"api_token": "tok-123", "shop_url": "https://shop.example"}
        answer = httpx.post(
            f"{gateway.url}/graphql",
            headers=headers,
            timeout=10,
            json={"query": configure, "variables": {"id": target, "s": settings}},
        ).json()
        assert answer["data"]["configureIntegration"]["__typename"] == "ConfigureIntegrationSuccess"

    rotated = tollgate("secrets", "reencrypt", env={**env, "TOLLGATE_ENCRYPTION_KEY": f"{new},{old}"})

    assert rotated.stdout.startswith("1 secrets re-encrypted")
    with sqlite3.connect(tmp_path / "cli.sqlite3") as database:
        (stored,) = database.execute(
            "SELECT configuration FROM add_on_subscription WHERE configuration_status = 'CONFIGURED'"
        ).fetchone()
    assert Fernet(new.encode()).decrypt(json.loads(stored)["api_token"]["fernet"].encode()) == b"tok-123"


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
def test_a_revoked_key_is_refused_at_once_by_a_running_gateway_sharing_redis(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TOLLGATE_DATABASE_URL": f"sqlite://{tmp_path / 'live.sqlite3'}",
        "TOLLGATE_MAIL_DIR": str(tmp_path / "mail"),
        "TOLLGATE_AUTH_CACHE_SECONDS": "300",  # the gateway would remember the key for 5 minutes
        "TOLLGATE_REDIS_CHANNEL_PREFIX": f"t-{os.getpid()}-{tmp_path.name}:",
    }
    viewer = {"query": "{ viewer { tenant { slug } } }"}
    with live_gateway(env, tmp_path / "gateway.log") as gateway, httpx.Client(base_url=gateway.url) as http:
        key = gateway.connector_key("acme")
        headers = {"Authorization": f"Bearer {key}"}
        assert http.post("/graphql", json=viewer, headers=headers).json()["data"]["viewer"]

        tollgate("apikey", "revoke", key.split("_")[1], env=env)

        refused = http.post("/graphql", json=viewer, headers=headers).json()
    assert refused["errors"][0]["extensions"]["reason"] == "API_KEY_REVOKED"


def test_a_user_is_disabled_and_enabled_by_email(env: dict[str, str], tmp_path: Path) -> None:
    tollgate("seed", "--demo", env=env)

    assert (
        "member@acme.test disabled"
        in tollgate("user", "disable", "--email", "member@acme.test", env=env).stdout
    )
    with sqlite3.connect(tmp_path / "cli.sqlite3") as database:
        (active,) = database.execute("SELECT is_active FROM user WHERE email = 'member@acme.test'").fetchone()
    assert not active
    tollgate("user", "enable", "--email", "Member@Acme.test", env=env)
    with sqlite3.connect(tmp_path / "cli.sqlite3") as database:
        (active,) = database.execute("SELECT is_active FROM user WHERE email = 'member@acme.test'").fetchone()
    assert active
    unknown = tollgate("user", "disable", "--email", "nobody@acme.test", env=env, check=False)
    assert unknown.returncode == 2
    assert "no user with e-mail" in unknown.stderr


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_a_disabled_user_loses_a_running_gateways_live_session_and_requests_at_once(
    tmp_path: Path,
) -> None:
    """`tollgate user disable` on a gateway sharing Redis: the session closes (4403) and the token is
    refused at once, though the gateway would remember the token for 5 minutes; enabled, it works again."""
    env = {
        **os.environ,
        "TOLLGATE_DATABASE_URL": f"sqlite://{tmp_path / 'live.sqlite3'}",
        "TOLLGATE_MAIL_DIR": str(tmp_path / "mail"),
        "TOLLGATE_AUTH_CACHE_SECONDS": "300",
        "TOLLGATE_REDIS_CHANNEL_PREFIX": f"t-{os.getpid()}-{tmp_path.name}:",
    }
    viewer = {"query": "{ viewer { role } }"}
    with live_gateway(env, tmp_path / "gateway.log") as gateway:
        token = gateway.token("admin@acme.test")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            assert (await http.post("/graphql", json=viewer, headers=headers)).json()["data"]["viewer"]
            async with subscriber(gateway.url, headers["Authorization"]) as socket:
                await asyncio.to_thread(tollgate, "user", "disable", "--email", "admin@acme.test", env=env)
                started = time.monotonic()

                with contextlib.suppress(ConnectionClosed):
                    async with asyncio.timeout(10):
                        while True:
                            await socket.recv()
                assert socket.close_code == 4403
                assert time.monotonic() - started < 3  # at once, not after the 300 s cache
            refused = (await http.post("/graphql", json=viewer, headers=headers)).json()
            assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

            await asyncio.to_thread(tollgate, "user", "enable", "--email", "admin@acme.test", env=env)
            assert (await http.post("/graphql", json=viewer, headers=headers)).json()["data"]["viewer"]


def test_operator_keys_are_created_listed_and_revoked_on_a_running_gateway(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The operator's first step (docs/operators.md): a key made by the command line opens
    /operator/graphql on a running gateway, is listed without its secret, and is refused once revoked."""
    who = {"query": "{ operatorKey { name prefix scopes } }"}
    with live_gateway(env, tmp_path / "serve.log") as gateway:
        created = tollgate(
            "operator-key", "create", "--scopes", "ops:read,tenants:write", "--name", "SaaS", env=env
        )
        key = created.stdout.strip()
        assert key.startswith("tgo_")
        assert "not shown again" in created.stderr
        prefix = key.split("_")[1]
        headers = {"Authorization": f"Bearer {key}"}
        answer = httpx.post(f"{gateway.url}/operator/graphql", json=who, headers=headers, timeout=5)
        assert answer.json()["data"]["operatorKey"] == {
            "name": "SaaS",
            "prefix": prefix,
            "scopes": ["ops:read", "tenants:write"],
        }
        listed = tollgate("operator-key", "list", env=env).stdout
        assert prefix in listed
        assert "active" in listed
        assert key not in listed

        tollgate("operator-key", "revoke", prefix, env=env)
        refused = httpx.post(f"{gateway.url}/operator/graphql", json=who, headers=headers, timeout=5)
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["reason"] == "OPERATOR_KEY_REVOKED"
        assert "revoked" in tollgate("operator-key", "list", env=env).stdout

    unknown = tollgate("operator-key", "create", "--scopes", "tenants:write,root", env=env, check=False)
    assert unknown.returncode == 2
    assert "unknown operator scopes ['root']" in unknown.stderr
    again = tollgate("operator-key", "revoke", prefix, env=env, check=False)
    assert again.returncode == 2
    assert "no active operator key" in again.stderr


def test_export_schema_prints_the_operator_sdl(env: dict[str, str]) -> None:
    from app.resolvers.operator.schema import operator_schema

    assert tollgate("export-schema", "--operator", env=env).stdout == operator_schema().as_str() + "\n"


def test_serve_demo_on_a_seeded_database_says_how_to_create_a_connector_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    with live_gateway(env, tmp_path / "first.log"):
        pass  # seeds the demo and prints its keys, once
    with live_gateway(env, tmp_path / "second.log") as gateway:
        output = gateway.output
        assert "connector key for" not in output
        assert "not seeded" in output
        printed = next(line for line in output.splitlines() if "tollgate apikey create" in line)
        command = shlex.split(printed.strip())
        assert command[:2] == ["tollgate", "apikey"]
        key = tollgate(*command[1:], env=env).stdout.strip()
        # The key it makes is a connector's: it reports usage and asks for quota.
        quota = httpx.post(
            f"{gateway.url}/graphql",
            json={"query": "{ quota(process: PRODUCT_SYNC) { allowed } }"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        ).json()
    assert quota["data"]["quota"]["allowed"] is True
    assert "tollgate token --email admin@acme.test" in output
