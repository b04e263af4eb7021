"""A fast lane for the connector's flat operations: the heartbeat of the product (issue 5).

Every sync process of every store asks ``quota`` first, then calls ``startProcess``: documents of one root
field whose selection is only leaves (scalars, enums, ``__typename``, inline fragments on union members). For
those, the general machinery of GraphQL execution (extension hooks, the executor's bookkeeping, per-field
permission wrappers) costs more than the work itself. Once a document has run through Strawberry without
error (so it passed parsing, validation, query limits and the allow-list), it is compiled into a plan: the
root field's resolver, its permissions, and the leaves to copy. The next requests with that document skip the
executor: the same permissions, the same resolver, the same serializers, the same JSON.

Anything off the happy path (bad variables, a permission refused, a resolver raising, a value that would
not serialize) returns ``None`` and the request runs through Strawberry as usual, which produces the exact
error. Resolvers on this path must be safe to run twice when they fail (they are: their failures roll back).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.permission import PermissionExtension
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from app.observability import record_operation

logger = logging.getLogger("tollgate.fast_path")


@dataclass(frozen=True, slots=True)
class Leaf:
    response_key: str
    graphql_name: str  # "__typename" for the type name
    python_name: str
    leaf_type: GraphQLLeafType | None
    non_null: bool


@dataclass(frozen=True, slots=True)
class CompiledOperation:
    """One root field whose result is copied leaf by leaf."""

    operation: OperationDefinitionNode
    operation_name: str | None
    operation_type: str
    response_key: str
    field_node: FieldNode
    graphql_field: Any
    strawberry_field: StrawberryField
    # Per concrete type name: the leaves selected on it, in document order.
    leaves: dict[str, tuple[Leaf, ...]]


class _Info:
    """What resolvers and permission classes on this path read: the context (as Strawberry's ``Info``)."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


class FastPath:
    """Compiled plans by document text, learnt from documents that ran cleanly through Strawberry."""

    def __init__(self, schema: Any, *, max_documents: int = 256) -> None:
        self.schema = schema
        self.max_documents = max_documents
        self._plans: OrderedDict[tuple[str, str | None], CompiledOperation | None] = OrderedDict()
        self.served = 0  # requests answered on this path (tests and debugging)

    def plan_for(self, query: str | None, operation_name: str | None) -> CompiledOperation | None:
        if query is None:
            return None
        return self._plans.get((query, operation_name))

    def learn(self, query: str | None, operation_name: str | None) -> None:
        """Called after a document ran without errors: compile it (or remember that it cannot be)."""
        if query is None or (query, operation_name) in self._plans:
            return
        try:
            plan = compile_operation(self.schema, parse(query), operation_name)
        except GraphQLError:
            plan = None
        self._plans[(query, operation_name)] = plan
        if len(self._plans) > self.max_documents:
            self._plans.popitem(last=False)

    async def execute(self, plan: CompiledOperation, variables: dict[str, Any] | None, context: Any) -> Any:
        """The ``data`` of the response, or ``None`` to let Strawberry run the request."""
        started = time.perf_counter()
        graphql_schema = self.schema._schema
        coerced = get_variable_values(
            graphql_schema, plan.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None
        arguments = get_argument_values(plan.graphql_field, plan.field_node, coerced)
        field = plan.strawberry_field
        kwargs = convert_arguments(
            arguments,
            field.arguments,
            scalar_registry=self.schema.schema_converter.scalar_registry,
            config=self.schema.config,
        )
        info = _Info(context)
        try:
            for extension in field.extensions:
                if isinstance(extension, PermissionExtension):
                    for permission in extension.permissions:
                        allowed = permission.has_permission(None, info, **kwargs)  # type: ignore[arg-type]
                        if not (await allowed if inspect.isawaitable(allowed) else allowed):
                            return None
            assert field.base_resolver is not None
            resolver: Any = field.base_resolver.wrapped_func
            result = await resolver(None, info, **kwargs)
        except Exception:  # the slow path runs it again and reports it as Strawberry would
            return None
        value = project(plan, result)
        if value is None:
            logger.warning("fast path could not project %s: ran through Strawberry", plan.response_key)
            return None
        self.served += 1
        record_operation(plan.operation_name, plan.operation_type, "ok", started)
        return {plan.response_key: value}


_MISSING = object()


def project(plan: CompiledOperation, result: Any) -> dict[str, Any] | None:
    definition: StrawberryObjectDefinition | None = getattr(result, "__strawberry_definition__", None)
    if definition is None:
        return None
    leaves = plan.leaves.get(definition.name)
    if leaves is None:
        return None
    data: dict[str, Any] = {}
    for leaf in leaves:
        if leaf.leaf_type is None:
            data[leaf.response_key] = definition.name
            continue
        value = getattr(result, leaf.python_name, _MISSING)
        if value is _MISSING:
            return None
        if value is None:
            if leaf.non_null:
                return None
            data[leaf.response_key] = None
            continue
        try:
            data[leaf.response_key] = leaf.leaf_type.serialize(value)
        except (GraphQLError, TypeError, ValueError):
            return None
    return data


def compile_operation(
    schema: Any, document: DocumentNode, operation_name: str | None
) -> CompiledOperation | None:
    """A plan for a one-field operation of leaves, or ``None`` when the document is of another shape."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(document.definitions) != len(operations):
        return None  # fragment definitions: not on this path
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    operation = operations[0]
    if operation.operation not in (OperationType.QUERY, OperationType.MUTATION) or operation.directives:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode) or selections[0].directives:
        return None
    field_node = selections[0]
    root_name = "Query" if operation.operation == OperationType.QUERY else "Mutation"
    graphql_root = schema._schema.get_type(root_name)
    graphql_field = graphql_root.fields.get(field_node.name.value) if graphql_root else None
    strawberry_root = schema.get_type_by_name(root_name)
    strawberry_field = (
        next(
            (
                f
                for f in strawberry_root.fields
                if schema.config.name_converter.get_graphql_name(f) == field_node.name.value
            ),
            None,
        )
        if strawberry_root
        else None
    )
    if graphql_field is None or strawberry_field is None or strawberry_field.base_resolver is None:
        return None
    if field_node.selection_set is None:
        return None
    result_type = (
        graphql_field.type.of_type if isinstance(graphql_field.type, GraphQLNonNull) else graphql_field.type
    )
    if isinstance(result_type, GraphQLObjectType):
        possible = [result_type]
    elif isinstance(result_type, GraphQLUnionType):
        possible = list(result_type.types)
    else:
        return None
    leaves: dict[str, tuple[Leaf, ...]] = {}
    for object_type in possible:
        selected = _leaves_for(schema, object_type, field_node.selection_set.selections)
        if selected is None:
            return None
        leaves[object_type.name] = selected
    return CompiledOperation(
        operation=operation,
        operation_name=operation.name.value if operation.name else None,
        operation_type=operation.operation.value,
        response_key=field_node.alias.value if field_node.alias else field_node.name.value,
        field_node=field_node,
        graphql_field=graphql_field,
        strawberry_field=strawberry_field,
        leaves=leaves,
    )


def _leaves_for(schema: Any, object_type: GraphQLObjectType, selections: Any) -> tuple[Leaf, ...] | None:
    definition = schema.get_type_by_name(object_type.name)
    if not isinstance(definition, StrawberryObjectDefinition):
        return None
    by_graphql_name = {schema.config.name_converter.get_graphql_name(f): f for f in definition.fields}
    leaves: list[Leaf] = []
    for selection in selections:
        if selection.directives:
            return None
        if isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else object_type.name
            if condition == object_type.name or condition in {i.name for i in object_type.interfaces}:
                inner = _leaves_for(schema, object_type, selection.selection_set.selections)
                if inner is None:
                    return None
                leaves.extend(inner)
            continue
        if not isinstance(selection, FieldNode) or selection.selection_set is not None or selection.arguments:
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        if selection.name.value == "__typename":
            leaves.append(Leaf(key, "__typename", "", None, True))
            continue
        graphql_field = object_type.fields.get(selection.name.value)
        strawberry_field = by_graphql_name.get(selection.name.value)
        if graphql_field is None or strawberry_field is None or strawberry_field.base_resolver is not None:
            return None  # fields with resolvers of their own run through Strawberry
        field_type = graphql_field.type
        non_null = isinstance(field_type, GraphQLNonNull)
        leaf_type = field_type.of_type if non_null else field_type
        if not isinstance(leaf_type, GraphQLScalarType | GraphQLEnumType):
            return None
        leaves.append(Leaf(key, selection.name.value, strawberry_field.python_name, leaf_type, non_null))
    # A key selected twice (allowed when identical) keeps its first position, as GraphQL does.
    unique: dict[str, Leaf] = {}
    for leaf in leaves:
        unique.setdefault(leaf.response_key, leaf)
    return tuple(unique.values())
