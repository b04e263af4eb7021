"""A fast lane for the documents clients send over and over: the heartbeat of the product (issue 5).

Every sync process of every store asks ``quota`` first, then calls ``startProcess``; every screen of the back
office reads ``myPlan`` and ``creditUsage``. For such documents the general machinery of GraphQL execution
(extension hooks, the executor's bookkeeping, a resolver wrapper per field) costs more than the work itself.
Once a document has run through Strawberry without error (so it passed parsing, validation, query limits and
the allow-list), it is compiled into a plan: for each root field its resolver, permissions and exception
handlers, and below it the fields to copy or resolve, type by type. The next requests with that document skip
the executor: the same permissions, the same resolvers, the same exception handlers (a typed error of a
result union is an answer like any other), the same serializers, the same JSON.

What compiles: queries of any number of root fields, mutations of one; below them objects, unions (inline
fragments on their members), lists, scalars and enums, and fields with resolvers of their own (called as
Strawberry calls them). Named fragments, directives, interfaces and field extensions other than permissions
keep a document on Strawberry.

Off the happy path at run time (bad variables, a permission refused, a resolver raising what no handler
answers, a value that would not serialize), the request falls back to Strawberry, which produces the exact
answer: its errors, with their messages, paths, locations and codes, ``data`` nulled up to the nearest
nullable parent, errors masked and logged as usual. A resolver never runs twice for one request (issue 11:
a mutation's write, ``quota``'s metrics): the root fields that already ran are *replayed*. Their outcomes
(the value, or the exception no handler answered) are left in a context variable for this request's
context; the executor of ``app.schema`` takes them once, at the root, and completes each recorded value
(or reports each recorded exception) exactly where it would have called the resolver. Only nested
resolvers, which read, run again. Replaying rather than completing errors here keeps one implementation of
GraphQL's error rules (graphql-core's) instead of a second one to keep in step.

A document whose requests fall back ``MAX_FALLBACKS`` times in a row after a root resolver ran (wasted work,
every time) is no longer tried: it is remembered as not compilable, within the bounded table of plans.
Fallbacks before any resolver ran (bad variables, a refused credential) cost nothing and do not count, so
that no caller can push the connector's documents off the lane with a few bad requests.
``tollgate_fast_path_fallbacks_total`` counts every fallback and ``tollgate_fast_path_abandoned_total``
the documents given up.

Subscription events are completed here too (``compiled_event``, ``complete_event``), unless the settings
switch the fast path off (``TOLLGATE_FAST_PATH=false``): then graphql-core completes every event.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field as dataclass_field
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
from graphql.execution import Executor
from graphql.execution.executor import to_nodes
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path
from prometheus_client import Counter
from strawberry.permission import PermissionExtension
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from app.observability import REGISTRY, operation_label, record_operation

logger = logging.getLogger("tollgate.fast_path")

FALLBACKS = Counter(
    "tollgate_fast_path_fallbacks_total",
    "Requests started on the fast path and handed to Strawberry, by operation type.",
    ["type"],
    registry=REGISTRY,
)
ABANDONED = Counter(
    "tollgate_fast_path_abandoned_total",
    "Documents no longer tried on the fast path after falling back again and again.",
    registry=REGISTRY,
)
# Consecutive fallbacks after which a document is left to Strawberry (until it leaves the bounded table).
MAX_FALLBACKS = 3


class _Failed(Exception):
    """Off the happy path: the request runs through Strawberry instead."""


class _Raised(Exception):
    """A resolver ran and raised an exception that no exception handler of its field turns into an answer."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a root resolver that ran on the fast path gave: its value, or the exception it raised."""

    value: Any = None
    error: Exception | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


@dataclass(frozen=True, slots=True)
class Replay:
    """The root fields that ran before a request fell back, for Strawberry to take instead of running them."""

    context: Any  # the request's context: only that request's execution takes the replay
    roots: dict[str, Outcome]  # by response key


_replay: contextvars.ContextVar[Replay | None] = contextvars.ContextVar("fast_path_replay", default=None)


def completes_events(context: Any) -> bool:
    """Whether subscription events are completed here: not when the settings switch the fast path off."""
    settings = getattr(context, "settings", None)
    return settings is None or bool(settings.fast_path)


def take_replay(context: Any) -> dict[str, Outcome] | None:
    """The root outcomes that the fast path left for this request's execution by Strawberry (once)."""
    replay = _replay.get()
    if replay is None or replay.context is not context:
        return None
    _replay.set(None)
    return replay.roots


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
    # Strawberry's exception handlers that apply to the field: (exception types, handler), first match wins.
    handlers: tuple[tuple[tuple[type[Exception], ...], Any], ...] = ()


@dataclass(slots=True)
class CompiledOperation:
    operation: OperationDefinitionNode
    operation_name: str | None
    operation_type: str
    roots: tuple[Field, ...]
    document: tuple[str, str | None] = ("", None)  # its key in the table of plans
    fallbacks: int = dataclass_field(default=0, compare=False)  # in a row


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
        if plan is not None:
            plan.document = (query, operation_name)
        self._plans[(query, operation_name)] = plan
        if len(self._plans) > self.max_documents:
            self._plans.popitem(last=False)

    async def execute(self, plan: CompiledOperation, variables: dict[str, Any] | None, context: Any) -> Any:
        """The ``data`` of the response, or ``None`` to let Strawberry run the request.

        When a root resolver already ran, its outcome is left for Strawberry to take instead of running it
        again (see the module's docstring)."""
        started = time.perf_counter()
        coerced = get_variable_values(
            self.schema._schema, plan.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return self._fall_back(plan, context, {})
        run = _Run(self.schema, coerced, _Info(context))
        data: dict[str, Any] = {}
        ran: dict[str, Outcome] = {}
        for root in plan.roots:  # one after the other, as the memoised loaders expect
            assert root.output is not None
            try:
                value = await run.resolve(root, None)
            except _Raised as raised:
                ran[root.response_key] = Outcome(error=raised.error)
                return self._fall_back(plan, context, ran)
            except Exception:  # _Failed: refused before the resolver ran (permissions, arguments)
                return self._fall_back(plan, context, ran)
            ran[root.response_key] = Outcome(value)
            try:
                data[root.response_key] = await run.complete(root.output, value)
            except Exception:  # _Failed, _Raised: Strawberry completes the value again and reports it
                return self._fall_back(plan, context, ran)
        self.served += 1
        if plan.fallbacks:
            plan.fallbacks = 0
        record_operation(plan.operation_name, plan.operation_type, "ok", started)
        return data

    def _fall_back(self, plan: CompiledOperation, context: Any, ran: dict[str, Outcome]) -> None:
        FALLBACKS.labels(type=plan.operation_type).inc()
        if not ran:
            return  # nothing ran: this fallback wasted nothing
        _replay.set(Replay(context, ran))
        plan.fallbacks += 1
        if plan.fallbacks >= MAX_FALLBACKS and self._plans.get(plan.document) is plan:
            self._plans[plan.document] = None  # remembered as "not on this path", within the bounded table
            ABANDONED.inc()
            logger.info(
                "document left to Strawberry after %d fallbacks in a row: operation %s",
                plan.fallbacks,
                operation_label(plan.operation_name),
            )


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
        try:
            result = resolver.wrapped_func(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        except Exception as error:
            return await self.handled(field, error)

    async def handled(self, field: Field, error: Exception) -> Any:
        """The answer an exception handler makes of ``error`` (as Strawberry's resolver wrapper: the first
        handler whose types match decides, ``None`` declines), else ``_Raised``."""
        for exception_types, handler in field.handlers:
            if isinstance(error, exception_types):
                try:
                    answer = handler.handle(error, field=field.strawberry_field, info=self.info)
                    if inspect.isawaitable(answer):
                        answer = await answer
                except Exception as failure:  # the handler's own error is the field's, as in Strawberry
                    raise _Raised(failure) from error
                if answer is not None:
                    return answer
                break
        raise _Raised(error)

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
                # Strawberry's own selection, made once per field as its resolver wrapper does.
                handlers=schema.schema_converter._get_field_exception_handlers(strawberry_field),
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


def replay_field(
    executor: Executor[Any],
    parent_type: GraphQLObjectType,
    field_details_list: Any,
    path: Path,
    position_context: Any,
    outcome: Outcome,
) -> Any:
    """graphql-core's ``execute_field`` for a root field that ran on the fast path: the recorded value (or
    exception) stands for the resolver's result, and graphql-core completes it and reports its errors."""
    field_def = executor.schema.get_field(parent_type, field_details_list[0].node.name.value)
    assert field_def is not None
    return_type = field_def.type
    info = executor.build_resolve_info(field_def, to_nodes(field_details_list), parent_type, path)
    try:
        completed = executor.complete_value(
            return_type, field_details_list, info, path, outcome.result(), position_context
        )
    except Exception as raw_error:
        executor.handle_field_error(raw_error, return_type, field_details_list, path)
        return None
    if not executor.is_awaitable(completed):
        return completed

    async def await_completed() -> Any:
        try:
            return await completed
        except Exception as raw_error:
            executor.handle_field_error(raw_error, return_type, field_details_list, path)
            return None

    return await_completed()
