"""Every GraphQL document of the operator's guide (docs/operators.md) validates against the operator schema,
and the steps it tells run in tests/test_adoption_journey.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import parse, validate

from app.resolvers.operator.schema import operator_schema

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operators.md"
DOCUMENTS = re.findall(r"```graphql\n(.*?)```", GUIDE.read_text(), re.S)


def test_the_guide_has_documents() -> None:
    assert len(DOCUMENTS) >= 8


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.split("{")[0].strip() for d in DOCUMENTS])
def test_each_document_validates_against_the_operator_schema(document: str) -> None:
    assert validate(operator_schema()._schema, parse(document)) == []
