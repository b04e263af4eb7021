"""docs/reference.md is the API reference written from the schema: it must be what the generator gives."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from app.resolvers.reference import reference_markdown
from app.schema import schema

ROOT = Path(__file__).parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
REGENERATE = ".venv/bin/tollgate export-schema --markdown > docs/reference.md"


def test_the_committed_reference_is_the_generated_one() -> None:
    assert REFERENCE.read_text() == reference_markdown(schema._schema), f"regenerate it: {REGENERATE}"


def test_the_cli_prints_the_reference() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "app", "export-schema", "--markdown"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    assert printed == reference_markdown(schema._schema)


def test_every_operation_is_listed_with_its_result() -> None:
    text = reference_markdown(schema._schema)
    graphql_schema = schema._schema

    for root in (graphql_schema.query_type, graphql_schema.mutation_type, graphql_schema.subscription_type):
        assert root is not None
        for name in root.fields:
            assert re.search(rf"^### `{name}`\n\nReturns ", text, re.MULTILINE), name
    assert "## Subscriptions\n\n### `limitAlerts`" in text


def test_every_type_linked_to_has_its_section() -> None:
    text = reference_markdown(schema._schema)
    anchors = set(re.findall(r"\]\(#([a-z0-9]+)\)", text))
    sections = {heading.lower() for heading in re.findall(r"^### (\w+)$", text, re.MULTILINE)}

    assert anchors
    assert anchors <= sections, anchors - sections
    assert {"checkoutresult", "errorcode", "money", "error"} <= sections


def test_arguments_show_their_defaults_and_descriptions() -> None:
    text = reference_markdown(schema._schema)

    assert "| `first` | `Int` = `20` |" in text
    assert "Returns [[`AddOn`](#addon)!]!." in text
