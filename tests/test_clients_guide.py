"""Runs every example of docs/clients.md against a real gateway, so that the guide cannot drift.

An example is a fenced block preceded by ``<!-- example: NAME expect="TEXT" -->``:
it must exit 0 and print TEXT.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from graphql import parse, validate

from app.schema import schema
from tests.live import LiveGateway, gateway_env, live_gateway

ROOT = Path(__file__).parents[1]
GUIDE = ROOT / "docs" / "clients.md"
NODE_PROJECT = ROOT / "docs" / "examples"
EXAMPLE = re.compile(
    r'<!-- example: (?P<name>[\w-]+) expect="(?P<expect>[^"]*)"(?: trigger="(?P<trigger>[\w-]+)")? -->\n'
    r"```(?P<language>\w+)\n(?P<code>.*?)\n```",
    re.DOTALL,
)


@dataclass(frozen=True)
class Example:
    name: str
    language: str
    code: str
    expect: str
    trigger: str | None = None  # what the test does while a long-running example listens


def examples() -> list[Example]:
    return [Example(**match.groupdict()) for match in EXAMPLE.finditer(GUIDE.read_text())]


def test_the_guide_has_examples_for_every_client_and_language() -> None:
    found = examples()
    assert {example.language for example in found} >= {"bash", "python", "javascript"}
    assert len({example.name for example in found}) == len(found)


# A GraphQL document in the docs: from its keyword (or the "{" a JSON "query" string or a ```graphql block
# opens with) to the brace that closes its "{".
DOCUMENT_START = re.compile(
    r"(?:\b(?:query|mutation|subscription)\b[\w ]*(?:\([^)]*\))?\s*"
    r'|(?<="query": ")|(?<="query":")|(?<=```graphql\n))\{'
)
DOCS_WITH_DOCUMENTS = {GUIDE: 8, ROOT / "README.md": 4}  # the documents each page holds, at least


def documents_in(text: str) -> list[str]:
    found = []
    for start in DOCUMENT_START.finditer(text):
        depth = 0
        for end in range(start.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                found.append(text[start.start() : end + 1])
                break
    return found


@pytest.mark.parametrize("page", DOCS_WITH_DOCUMENTS, ids=lambda page: page.name)
def test_every_graphql_document_of_the_docs_validates_against_the_schema(page: Path) -> None:
    documents = documents_in(page.read_text())

    assert len(documents) >= DOCS_WITH_DOCUMENTS[page], documents
    for document in documents:
        errors = validate(schema._schema, parse(document))
        assert not errors, f"{page.name}: {document}\n{errors}"


def test_the_guide_links_the_conventions_the_reference_and_the_changelog() -> None:
    guide = GUIDE.read_text()

    assert "](api-conventions.md)" in guide
    assert "](reference.md)" in guide
    assert "](../CHANGELOG.md)" in guide


def test_the_python_examples_need_only_the_standard_library() -> None:
    for example in examples():
        if example.language == "python":
            imported = re.findall(r"^(?:import|from) (\w+)", example.code, re.MULTILINE)
            assert set(imported) <= sys.stdlib_module_names, (example.name, imported)


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


def test_the_guides_command_creates_a_working_connector_key(
    gateway: LiveGateway, client_env: dict[str, str]
) -> None:
    # On a database seeded before, `serve --demo` prints no key: the guide says how to create one.
    found = re.search(r"export KEY=\$\((?P<command>.*?)\)\n", GUIDE.read_text(), re.DOTALL)
    assert found, "the guide shows how to create a connector key"
    command = shlex.split(found["command"].replace("\\\n", " "))
    assert command[0] == ".venv/bin/tollgate"
    created = subprocess.run(
        [sys.executable, "-m", "app", *command[1:]],
        env=gateway.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    report_credits({**client_env, "KEY": created.stdout.strip()}, 10)


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
        # -I -S: no site-packages, so an example that needs more than the standard library fails here.
        return [sys.executable, "-I", "-S", "-c", example.code]
    if example.language == "javascript":
        # ES modules resolve packages next to the script: give it the examples' node_modules.
        (tmp_path / "node_modules").symlink_to(node_modules())
        script = tmp_path / f"{example.name}.mjs"
        script.write_text(example.code)
        return ["node", str(script)]
    raise AssertionError(f"no runner for {example.language}")


@pytest.mark.parametrize("example", examples(), ids=lambda example: example.name)
def test_guide_example_runs(example: Example, client_env: dict[str, str], tmp_path: Path) -> None:
    command = command_for(example, tmp_path)
    if example.trigger is None:
        result = subprocess.run(
            command, env=client_env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert example.expect in result.stdout, result.stdout
        return

    assert example.trigger == "credits-80", example.trigger
    report_credits(client_env, 0)  # below every threshold: the next report crosses 80% afresh
    with subprocess.Popen(
        command, env=client_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as job:
        assert job.stdout is not None
        first_line = job.stdout.readline().strip()
        assert first_line == "subscribed", job.stderr.read() if job.stderr else first_line
        time.sleep(1)  # graphql-ws sends "subscribe" right after the ack: let the server register it
        limit = report_credits(client_env, None)
        report_credits(client_env, math.ceil(limit * 0.85))
        output, errors = job.communicate(timeout=30)
    assert job.returncode == 0, errors
    assert example.expect in output, output


def report_credits(env: dict[str, str], credits: int | None) -> int:
    """Reports ``credits`` used (all as variants) as the connector; returns the credit limit."""
    headers = {"Authorization": f"Bearer {env['KEY']}"}
    with httpx.Client(base_url=env["TOLLGATE_URL"], headers=headers, timeout=10) as http:
        if credits is not None:
            counts = {"variants": credits, "customers": 0, "contacts": 0, "salesReps": 0, "adminUsers": 0}
            report = {**counts, "storageBytes": 0, "measuredAt": dt.datetime.now(dt.UTC).isoformat()}
            variables = {"input": report, "key": str(uuid.uuid4())}
            answer = http.post("/graphql", json={"query": REPORT, "variables": variables}).json()
            assert answer["data"]["reportUsage"]["applied"], answer
        quota = http.post(
            "/graphql", json={"query": "{ quota(process: PRODUCT_SYNC) { creditsLimit } }"}
        ).json()
    limit: int = quota["data"]["quota"]["creditsLimit"]
    return limit


REPORT = """
mutation Report($input: UsageReportInput!, $key: String!) {
  reportUsage(input: $input, idempotencyKey: $key) {
    __typename ... on ReportUsageSuccess { applied } ... on Error { code message }
  }
}
"""
