"""Runs every example of docs/clients.md against a real gateway, so that the guide cannot drift.

An example is a fenced block preceded by ``<!-- example: NAME expect="TEXT" -->``:
it must exit 0 and print TEXT.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import LiveGateway, gateway_env, live_gateway

ROOT = Path(__file__).parents[1]
GUIDE = ROOT / "docs" / "clients.md"
NODE_PROJECT = ROOT / "docs" / "examples"
EXAMPLE = re.compile(
    r'<!-- example: (?P<name>[\w-]+) expect="(?P<expect>[^"]*)" -->\n'
    r"```(?P<language>\w+)\n(?P<code>.*?)\n```",
    re.DOTALL,
)


@dataclass(frozen=True)
class Example:
    name: str
    language: str
    code: str
    expect: str


def examples() -> list[Example]:
    return [Example(**match.groupdict()) for match in EXAMPLE.finditer(GUIDE.read_text())]


def test_the_guide_has_examples_for_every_client_and_language() -> None:
    found = examples()
    assert {example.language for example in found} >= {"bash", "python", "javascript"}
    assert len({example.name for example in found}) == len(found)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp_path = tmp_path_factory.mktemp("guide")
    with live_gateway(gateway_env(tmp_path), tmp_path / "gateway.log") as running:
        yield running


@pytest.fixture(scope="module")
def client_env(gateway: LiveGateway) -> dict[str, str]:
    return {
        **os.environ,
        "TOLLGATE_URL": gateway.url,
        "TOKEN": gateway.token("admin@acme.test"),
        "KEY": gateway.connector_key("acme"),
    }


def node_modules() -> Path:
    """The JavaScript examples' packages (graphql-ws, ws), installed from the lock file when missing."""
    installed = NODE_PROJECT / "node_modules"
    npm = shutil.which("npm")
    if not installed.is_dir() and npm is not None:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_PROJECT, check=True, timeout=300)
    if shutil.which("node") is None or not installed.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the JavaScript examples: Node.js and npm are needed")
        pytest.skip("Node.js or the examples' npm packages are missing")
    return installed


def command_for(example: Example, tmp_path: Path) -> list[str]:
    if example.language == "bash":
        return ["bash", "-euo", "pipefail", "-c", example.code]
    if example.language == "python":
        return [sys.executable, "-c", example.code]
    if example.language == "javascript":
        # ES modules resolve packages next to the script: give it the examples' node_modules.
        (tmp_path / "node_modules").symlink_to(node_modules())
        script = tmp_path / f"{example.name}.mjs"
        script.write_text(example.code)
        return ["node", str(script)]
    raise AssertionError(f"no runner for {example.language}")


@pytest.mark.parametrize("example", examples(), ids=lambda example: example.name)
def test_guide_example_runs(example: Example, client_env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        command_for(example, tmp_path),
        env=client_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert example.expect in result.stdout, result.stdout
