"""``schema.graphql`` is generated from the code; this fails when the two drift apart."""

from pathlib import Path

from app.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == schema.as_str() + "\n", (
        "schema.graphql is stale: run `tollgate export-schema > schema.graphql`"
    )
