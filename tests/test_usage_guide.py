"""Every GraphQL document of the usage guide (docs/usage.md) validates against the public schema; the
story it tells runs in tests/test_usage_journey.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import parse, validate

from app.schema import schema

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "usage.md"
DOCUMENTS = re.findall(r"```graphql\n(.*?)```", GUIDE.read_text(), re.S)


def test_the_guide_has_documents() -> None:
    assert len(DOCUMENTS) >= 6


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.split("{")[0].strip() for d in DOCUMENTS])
def test_each_document_validates_against_the_schema(document: str) -> None:
    assert validate(schema._schema, parse(document)) == []
