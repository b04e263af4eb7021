"""A fast lane for the documents clients send over and over: the heartbeat of the product (issue 5).

Every sync process of every store asks ``quota`` first, then calls ``startProcess``; every screen of the back
office reads ``myPlan`` and ``creditUsage``. For such documents the general machinery of GraphQL execution
(extension hooks, the executor's bookkeeping, a resolver wrapper per field) costs more than the work itself.
Once a document has run through Strawberry without error (so it passed parsing, validation, query limits and
the allow-list), it is compiled into a plan: for each root field its resolver and permissions, and below it
the fields to copy or resolve, type by type. The next requests with that document skip the executor: the same
permissions, the same resolvers, the same serializers, the same JSON.

What compiles: queries of any number of root fields, mutations of one; below them objects, unions (inline
fragments on their members), lists, scalars and enums, and fields with resolvers of their own (called as
Strawberry calls them). Named fragments, directives, interfaces and field extensions other than permissions
keep a document on Strawberry. Anything off the happy path at run time (bad variables, a permission refused,
a resolver raising, a value that would not serialize) returns ``None`` and the request runs through Strawberry
as usual, which produces the exact error. Resolvers on this path must be safe to run twice when they fail
(they are: queries read, and mutations' failures roll back).
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
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.permission import PermissionExtension
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from app.observability import record_operation

logger = logging.getLogger("tollgate.fast_path")


class _Failed(Exception):
    """Off the happy path: the request runs through Strawberry instead."""


@dataclass(frozen=True, slots=True)
class Output:
    """What a field's value becomes: a leaf, or an object whose compiled fields depend on its type."""

    non_null: bool
    item: Output | None  # for lists: the items' output
    leaf_type: GraphQLLeafType | None
    objects: dict[str, tuple[Field, ...]] | None  # concrete type name -> its selected fields


@dataclass(frozen=True, slots=True)
class Field:
    response_key: str
    python_name: str  # "" for __typename
    output: Output | None  # None for __typename
    # Fields with a resolver of their own (every root field, a few nested ones):
    resolver: Any = None
    field_node: FieldNode | None = None
    graphql_field: Any = None
    strawberry_field: StrawberryField | None = None
    permissions: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledOperation:
    operation: OperationDefinitionNode
    operation_name: str | None
    operation_type: str
    roots: tuple[Field, ...]


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
        coerced = get_variable_values(
            self.schema._schema, plan.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None
        run = _Run(self.schema, coerced, _Info(context))
        data: dict[str, Any] = {}
        try:
            for root in plan.roots:  # one after the other, as the memoised loaders expect
                data[root.response_key] = await run.field(root, None)
        except Exception:  # _Failed, or a resolver raising: Strawberry runs it again and reports it
            return None
        self.served += 1
        record_operation(plan.operation_name, plan.operation_type, "ok", started)
        return data


class _Run:
    """One request on the fast lane: resolves and completes the compiled fields."""

    __slots__ = ("info", "schema", "variables")

    def __init__(self, schema: Any, variables: VariableValues, info: _Info) -> None:
        self.schema, self.variables, self.info = schema, variables, info

    async def field(self, field: Field, parent: Any) -> Any:
        assert field.output is not None
        if field.resolver is None:
            value = getattr(parent, field.python_name)
        else:
            value = await self.resolve(field, parent)
        return await self.complete(field.output, value)

    async def resolve(self, field: Field, parent: Any) -> Any:
        strawberry_field = field.strawberry_field
        assert strawberry_field is not None
        kwargs: dict[str, Any] = {}
        if field.field_node is not None and field.field_node.arguments:
            arguments = get_argument_values(field.graphql_field, field.field_node, self.variables)
            kwargs = convert_arguments(
                arguments,
                strawberry_field.arguments,
                scalar_registry=self.schema.schema_converter.scalar_registry,
                config=self.schema.config,
            )
        for permission in field.permissions:
            allowed = permission.has_permission(parent, self.info, **kwargs)
            if not (await allowed if inspect.isawaitable(allowed) else allowed):
                raise _Failed
        resolver = field.resolver  # called as Strawberry calls it: self, info, root and parent as declared
        args = (parent,) if resolver.self_parameter is not None else ()
        if resolver.info_parameter is not None:
            kwargs[resolver.info_parameter.name] = self.info
        for reserved in (resolver.root_parameter, resolver.parent_parameter):
            if reserved is not None:
                kwargs[reserved.name] = parent
        result = resolver.wrapped_func(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def complete(self, output: Output, value: Any) -> Any:
        if value is None or output.leaf_type is not None:
            return _leaf(output, value)
        if output.item is not None:
            return [await self.complete(output.item, item) for item in value]
        assert output.objects is not None
        definition: StrawberryObjectDefinition | None = getattr(value, "__strawberry_definition__", None)
        fields = output.objects.get(definition.name) if definition is not None else None
        if definition is None or fields is None:
            raise _Failed
        data: dict[str, Any] = {}
        for field in fields:
            if field.output is None:
                data[field.response_key] = definition.name
            elif field.resolver is None and field.output.leaf_type is not None:  # most fields: no await
                data[field.response_key] = _leaf(field.output, getattr(value, field.python_name))
            else:
                data[field.response_key] = await self.field(field, value)
        return data


def _leaf(output: Output, value: Any) -> Any:
    """A scalar or enum serialized, or null where the type allows it."""
    if value is None:
        if output.non_null:
            raise _Failed
        return None
    assert output.leaf_type is not None
    try:
        return output.leaf_type.serialize(value)
    except (GraphQLError, TypeError, ValueError):
        raise _Failed from None


class _NotCompilable(Exception):
    pass


def compile_operation(
    schema: Any, document: DocumentNode, operation_name: str | None
) -> CompiledOperation | None:
    """A plan for the document's operation, or ``None`` when it is of a shape left to Strawberry."""
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
    if operation.operation == OperationType.MUTATION and len(selections) != 1:
        return None  # mutations run one by one in Strawberry, with their own error paths
    root_type = schema._schema.get_type("Query" if operation.operation == OperationType.QUERY else "Mutation")
    try:
        roots = _fields_of(schema, root_type, selections)
    except _NotCompilable:
        return None
    if any(root.resolver is None for root in roots):
        return None  # __typename or a field without resolver at the root
    return CompiledOperation(
        operation=operation,
        operation_name=operation.name.value if operation.name else None,
        operation_type=operation.operation.value,
        roots=roots,
    )


def _fields_of(schema: Any, object_type: GraphQLObjectType, selections: Any) -> tuple[Field, ...]:
    definition = schema.get_type_by_name(object_type.name)
    if not isinstance(definition, StrawberryObjectDefinition):
        raise _NotCompilable
    by_graphql_name = {schema.config.name_converter.get_graphql_name(f): f for f in definition.fields}
    fields: list[Field] = []
    for key, nodes in _collect(schema, object_type, selections).items():
        node = nodes[0]  # validation made the others the same field with the same arguments
        if node.name.value == "__typename":
            fields.append(Field(key, "", None))
            continue
        graphql_field = object_type.fields.get(node.name.value)
        strawberry_field = by_graphql_name.get(node.name.value)
        if graphql_field is None or strawberry_field is None:
            raise _NotCompilable
        output = _output_of(schema, graphql_field.type, nodes)
        resolver = strawberry_field.base_resolver
        if resolver is None:
            if node.arguments:
                raise _NotCompilable
            fields.append(Field(key, strawberry_field.python_name, output))
            continue
        permissions: list[Any] = []
        for extension in strawberry_field.extensions:
            if not isinstance(extension, PermissionExtension):
                raise _NotCompilable
            permissions.extend(extension.permissions)
        fields.append(
            Field(
                key,
                strawberry_field.python_name,
                output,
                resolver=resolver,
                field_node=node,
                graphql_field=graphql_field,
                strawberry_field=strawberry_field,
                permissions=tuple(permissions),
            )
        )
    return tuple(fields)


def _collect(schema: Any, object_type: GraphQLObjectType, selections: Any) -> dict[str, list[FieldNode]]:
    """The field nodes selected on ``object_type`` by response key, in document order (GraphQL's
    CollectFields without named fragments and directives)."""
    collected: dict[str, list[FieldNode]] = {}
    for selection in selections:
        if selection.directives:
            raise _NotCompilable
        if isinstance(selection, InlineFragmentNode):
            if _applies(schema, selection, object_type):
                inner = _collect(schema, object_type, selection.selection_set.selections)
                for key, nodes in inner.items():
                    collected.setdefault(key, []).extend(nodes)
        elif isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            collected.setdefault(key, []).append(selection)
        else:
            raise _NotCompilable
    return collected


def _applies(schema: Any, fragment: InlineFragmentNode, object_type: GraphQLObjectType) -> bool:
    """Whether an inline fragment covers ``object_type``: itself, an interface of it, a union of it."""
    if fragment.type_condition is None:
        return True
    condition = schema._schema.get_type(fragment.type_condition.name.value)
    if isinstance(condition, GraphQLUnionType):
        return object_type in condition.types
    return condition is object_type or condition in object_type.interfaces


def _output_of(schema: Any, graphql_type: Any, nodes: list[FieldNode]) -> Output:
    non_null = isinstance(graphql_type, GraphQLNonNull)
    named = graphql_type.of_type if non_null else graphql_type
    if isinstance(named, GraphQLList):
        return Output(non_null, _output_of(schema, named.of_type, nodes), None, None)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return Output(non_null, None, named, None)
    if isinstance(named, GraphQLObjectType):
        possible = [named]
    elif isinstance(named, GraphQLUnionType):
        possible = list(named.types)
    else:
        raise _NotCompilable  # interfaces
    # Sub-selections of a key selected more than once are merged, as GraphQL does.
    inner = [selection for node in nodes if node.selection_set for selection in node.selection_set.selections]
    return Output(non_null, None, None, {t.name: _fields_of(schema, t, inner) for t in possible})


# Subscription events: Strawberry validated and subscribed the operation; each event's payload is the root
# field's value (Strawberry's event resolver is the identity), completed here by the compiled selection.
_events: OrderedDict[int, tuple[OperationDefinitionNode, Field | None]] = OrderedDict()


def compiled_event(schema: Any, operation: OperationDefinitionNode) -> Field | None:
    """The root field of a subscription operation, compiled for its events (``None``: left to Strawberry).

    Memoised by the operation node's identity (Strawberry's parser cache hands every subscriber of a
    document the same node); the node is kept alive with its entry so that its id is never reused."""
    entry = _events.get(id(operation))
    if entry is not None and entry[0] is operation:
        return entry[1]
    field: Field | None = None
    subscription_type = schema._schema.subscription_type
    if operation.operation == OperationType.SUBSCRIPTION and subscription_type and not operation.directives:
        try:
            roots = _fields_of(schema, subscription_type, operation.selection_set.selections)
        except _NotCompilable:
            roots = ()
        if len(roots) == 1 and roots[0].output is not None:
            field = roots[0]
    _events[id(operation)] = (operation, field)
    if len(_events) > 256:
        _events.popitem(last=False)
    return field


async def complete_event(
    schema: Any, field: Field, payload: Any, variables: VariableValues, context: Any
) -> dict[str, Any] | None:
    """The ``data`` of one subscription event, or ``None`` to let graphql-core execute it."""
    assert field.output is not None
    try:
        return {
            field.response_key: await _Run(schema, variables, _Info(context)).complete(field.output, payload)
        }
    except Exception:  # the executor runs it again and reports it as it would
        return None
