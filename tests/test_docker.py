"""The compose file, validated by Debian's docker-compose (no Docker engine runs on these machines)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

DOCKER = Path(__file__).parents[1] / "docker"


def compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("docker-compose")
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must validate the compose file: install Debian's docker-compose package")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return subprocess.run(
        [executable, "-f", str(DOCKER / "compose.yaml"), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(
        "POSTGRES_PASSWORD=secret-pg\n"
        f"TOLLGATE_JWT_SECRET={'j' * 48}\n"
        f"TOLLGATE_ENCRYPTION_KEY={Fernet.generate_key().decode()}\n"
        f"TOLLGATE_METRICS_TOKEN={'m' * 32}\n"
    )
    return path


def test_compose_file_is_valid_and_wires_every_service(env_file: Path) -> None:
    result = compose("config", env_file=env_file)
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]

    assert set(services) == {"postgres", "redis", "mailpit", "migrate", "gateway", "proxy"}
    assert all(
        "healthcheck" in services[name] for name in ("postgres", "redis", "mailpit", "gateway", "proxy")
    )
    # The gateway waits for the one-shot migration, which waits for a healthy database.
    assert services["gateway"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["tollgate", "migrate"]
    gateway_env = services["gateway"]["environment"]
    assert gateway_env["TOLLGATE_ENV"] == "production"
    assert gateway_env["TOLLGATE_REDIS_URL"].startswith("redis://redis:")
    assert gateway_env["TOLLGATE_SMTP_URL"] == "smtp://mailpit:1025"
    assert "secret-pg" in gateway_env["TOLLGATE_DATABASE_URL"]
    # Production needs the metrics token; only the proxy's X-Forwarded-For is believed.
    assert gateway_env["TOLLGATE_METRICS_TOKEN"] == "m" * 32
    proxy_address = services["proxy"]["networks"]["default"]["ipv4_address"]
    assert gateway_env["TOLLGATE_TRUSTED_PROXIES"] == proxy_address


def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")

    result = compose("config", env_file=empty)

    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    stages = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(stages) >= 2  # build stage and a slim runtime stage
    runtime = dockerfile[dockerfile.rindex("FROM ") :]
    assert "USER " in runtime
    assert "USER root" not in runtime
    assert "HEALTHCHECK" in runtime
