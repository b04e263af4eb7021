"""The operations GraphiQL opens with are valid against the schema, so partners never start with an error."""

from __future__ import annotations

from graphql import parse, validate

from app.edge.graphiql import EXAMPLE_OPERATIONS
from app.schema import schema


def test_every_example_operation_validates_against_the_schema() -> None:
    document = parse(EXAMPLE_OPERATIONS)

    assert validate(schema._schema, document) == []
    names = {definition.name.value for definition in document.definitions}  # type: ignore[attr-defined]
    assert {"Catalog", "MyPlan", "LiveAlerts", "Quota", "ReportUsage"} <= names
