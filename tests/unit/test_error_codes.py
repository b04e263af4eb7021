"""``ErrorCode`` covers every code a client can meet, each described (issue 12)."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import GraphQLEnumType

from app.schema import schema
from app.services.errors import DomainError, ErrorCode

APP = Path(__file__).resolve().parents[2] / "app"


def subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def test_every_domain_error_has_a_code_of_the_enum() -> None:
    errors = subclasses(DomainError)
    assert len(errors) > 30  # the schema imported every service
    assert {error.__name__ for error in errors if not isinstance(error.code, ErrorCode)} == set()


def test_the_graphql_enum_lists_every_code_each_described() -> None:
    enum = schema._schema.type_map["ErrorCode"]
    assert isinstance(enum, GraphQLEnumType)
    assert set(enum.values) == {code.value for code in ErrorCode}
    assert [name for name, value in enum.values.items() if not (value.description or "").strip()] == []


def test_no_code_is_written_as_a_bare_string_in_the_gateway() -> None:
    """A code spelled as a literal (``"code": "RATE_LIMITED"``) could drift from the enum: every place that
    answers a code names an ``ErrorCode`` member."""
    literal = re.compile(r"""(?:["']code["']\s*:|\bcode\s*=)\s*["']([A-Z][A-Z_]+)["']""")
    codes = {code.value for code in ErrorCode}
    offenders = [
        f"{path.relative_to(APP)}:{number}"
        for path in APP.rglob("*.py")
        if "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for found in literal.findall(line)
        if found in codes
    ]
    assert offenders == []
