"""The operations GraphiQL opens with are valid against the schema, so partners never start with an error."""

from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    InlineFragmentNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_union_type,
    parse,
    validate,
    visit,
)

from app.edge.graphiql import EXAMPLE_OPERATIONS
from app.schema import schema


def test_every_example_operation_validates_against_the_schema() -> None:
    document = parse(EXAMPLE_OPERATIONS)

    assert validate(schema._schema, document) == []
    names = {definition.name.value for definition in document.definitions}  # type: ignore[attr-defined]
    assert {"Catalog", "MyPlan", "Cart", "LiveAlerts", "Alerts", "Quota", "ReportUsage"} <= names


def result_unions_without_error_branch(document: DocumentNode) -> list[str]:
    """The fields returning a union with error members whose selection has no ``... on Error``."""
    type_info = TypeInfo(schema._schema)
    error = schema._schema.get_type("Error")
    missing: list[str] = []

    class Fields(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            union = get_named_type(type_info.get_type())
            if not is_union_type(union) or not any(error in member.interfaces for member in union.types):
                return
            selections = node.selection_set.selections if node.selection_set else ()
            conditions = {
                selection.type_condition.name.value
                for selection in selections
                if isinstance(selection, InlineFragmentNode) and selection.type_condition
            }
            if "Error" not in conditions:
                missing.append(node.name.value)

    visit(document, TypeInfoVisitor(type_info, Fields()))
    return missing


def test_every_example_handles_the_errors_of_its_result_unions() -> None:
    assert result_unions_without_error_branch(parse(EXAMPLE_OPERATIONS)) == []
    # The check itself: a result union selected without its errors is caught.
    assert result_unions_without_error_branch(parse("{ myPlan { ... on MyPlan { id } } }")) == ["myPlan"]
