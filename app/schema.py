"""The one Strawberry schema: the domains' Query/Mutation/Subscription classes, with its extensions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import ExecutionResult, GraphQLError, OperationType
from graphql.validation import ASTValidationRule
from strawberry.extensions import AddValidationRules, MaskErrors, ParserCache
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.tools import merge_types

from app.edge import fast_path
from app.edge.query_limits import QueryLimits, limits_extension
from app.observability import OperationMetrics, current_request_id, log_rejected_document
from app.resolvers import account, addons, catalog, metering, orders, quotes, scalars, sizing, store
from app.resolvers import alert_settings as alert_settings_resolvers
from app.resolvers import invoices as issued_invoices
from app.resolvers import limit_check as limit_check_resolvers
from app.resolvers import locale as locale_resolvers
from app.resolvers import plan_changes as plan_change_resolvers
from app.resolvers import process_control as process_control_resolvers
from app.resolvers import usage_history as usage_history_resolvers
from app.resolvers.errors import exception_handlers, locale_of_context, localized
from app.resolvers.permissions import describe_access
from app.services.errors import DomainError, ErrorCode

# No error message echoes more than this many characters of what the caller sent (issue 11).
ECHO_MAX = 100

# Each domain module contributes its own root classes; add new domains here.
QUERIES: tuple[type, ...] = (
    catalog.Query,
    account.Query,
    store.Query,
    addons.Query,
    metering.Query,
    issued_invoices.Query,
    sizing.Query,
    orders.Query,
    plan_change_resolvers.Query,
    usage_history_resolvers.Query,
    alert_settings_resolvers.Query,
    limit_check_resolvers.Query,
)
MUTATIONS: tuple[type, ...] = (
    store.Mutation,
    addons.Mutation,
    metering.Mutation,
    quotes.Mutation,
    plan_change_resolvers.Mutation,
    alert_settings_resolvers.Mutation,
    process_control_resolvers.Mutation,
    locale_resolvers.Mutation,
)
SUBSCRIPTIONS: tuple[type, ...] = (metering.Subscription,)

for _root in (*QUERIES, *MUTATIONS, *SUBSCRIPTIONS):
    describe_access(_root)

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS)
Subscription = merge_types("Subscription", SUBSCRIPTIONS)
for _root, _description in (
    (Query, "What can be read: the catalog, the caller, its plan, cart, invoices, credits and alerts."),
    (
        Mutation,
        "What can be changed: the cart and checkout, contracted add-ons, usage reports, process starts.",
    ),
    (Subscription, "What is pushed over WebSocket (graphql-transport-ws): limit alerts as they happen."),
):
    _root.__strawberry_definition__.description = _description  # type: ignore[attr-defined]


SCALAR_MAP = scalars.SCALAR_MAP


def is_unexpected(error: GraphQLError) -> bool:
    """Mask everything but our typed errors, permission errors and GraphQL's own (syntax, validation)."""
    original = error.original_error
    if original is None or isinstance(original, DomainError | GraphQLError):
        return False
    # Strawberry's permission failures are raised as PermissionError-like exceptions with extensions.
    return not (
        error.extensions and "code" in error.extensions and type(original).__name__ == "PermissionError"
    )


class TollgateExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with subscription events completed by the fast lane (``app.edge.fast_path``):
    an alert fanned out to a thousand subscribers is completed a thousand times. A request that fell back
    from the lane after root resolvers ran gets their recorded outcomes instead of running them again."""

    replayed: dict[str, fast_path.Outcome] | None = None

    def execute_operation(self, serially: bool | None = None) -> Any:
        if self.operation.operation == OperationType.SUBSCRIPTION and fast_path.completes_events(
            self.context_value
        ):
            field = fast_path.compiled_event(self.schema._strawberry_schema, self.operation)  # type: ignore[attr-defined]
            if field is not None:
                return self._complete_event(field, serially)
        return super().execute_operation(serially)

    def execute_root_grouped_field_set(self, *args: Any, **kwargs: Any) -> Any:
        # Root fields that ran on the fast lane before it fell back are not run again (app.edge.fast_path).
        self.replayed = fast_path.take_replay(self.context_value)
        return super().execute_root_grouped_field_set(*args, **kwargs)

    def execute_field(
        self, parent_type: Any, source: Any, field_details_list: Any, path: Any, position_context: Any
    ) -> Any:
        if path.prev is None and self.replayed is not None and path.key in self.replayed:
            outcome = self.replayed[path.key]
            return fast_path.replay_field(
                self, parent_type, field_details_list, path, position_context, outcome
            )
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    async def _complete_event(self, field: fast_path.Field, serially: bool | None) -> Any:
        schema = self.schema._strawberry_schema  # type: ignore[attr-defined]
        data = await fast_path.complete_event(
            schema, field, self.root_value, self.variable_values, self.context_value
        )
        if data is not None:
            return ExecutionResult(data=data)
        result = super().execute_operation(serially)
        return await result if self.is_awaitable(result) else result


class MaskUnexpectedErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Unexpected error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        # The request id lets support find the logged trace of this error.
        masked.extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR, "requestId": current_request_id()}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        # Typed failures read in the caller's language, over HTTP and WebSocket alike.
        locale = locale_of_context(self.execution_context.context)
        return [localized(bounded(error), locale) for error in super()._process_errors(errors)]


# A quoted value in a message: '...' or "..." with escapes, longer than what we show of caller input.
_LONG_QUOTED = re.compile("|".join(rf"{q}(?:[^{q}\\]|\\.){{{ECHO_MAX + 1},}}{q}" for q in ("'", '"')))


def bounded(error: GraphQLError) -> GraphQLError:
    """GraphQL's own messages quote the caller's values (``found: '...'``, ``Value cannot represent a
    DateTime: "..."``) up to 240 characters or whole: at most ``ECHO_MAX`` of them come back. Errors
    raised before execution get a code too."""
    if isinstance(error.original_error, DomainError):
        return error  # ours quote caller input through ``shown``
    error.message = _LONG_QUOTED.sub(
        lambda quoted: f"{quoted[0][: ECHO_MAX + 1]}…{quoted[0][0]}", error.message
    )
    if error.path is None and not (error.extensions or {}).get("code"):
        error.extensions = {**(error.extensions or {}), "code": _code_of_refused_document(error.message)}
    return error


def _code_of_refused_document(message: str) -> str:
    """The code of an error raised before anything ran (as Apollo names them): a variable that does not fit
    its type, a syntax error, or a document that does not validate (a literal that does not fit included)."""
    if message.startswith("Variable '$"):
        return ErrorCode.BAD_USER_INPUT
    if message.startswith("Syntax Error"):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    return ErrorCode.GRAPHQL_VALIDATION_FAILED


class TollgateSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Typed failures are answers, not incidents: log only what is unexpected.
        unexpected = [error for error in errors if not isinstance(error.original_error, DomainError)]
        # Refused documents: logged by name and hash only (their messages quote literal values).
        unexpected = log_rejected_document(unexpected, execution_context)
        if unexpected:
            super().process_errors(unexpected, execution_context)


DEFAULT_LIMITS = QueryLimits()


def build_schema(
    query: type = Query,
    *,
    limits: QueryLimits = DEFAULT_LIMITS,
    validation_rules: Sequence[type[ASTValidationRule]] = (),
    **overrides: Any,
) -> strawberry.Schema:
    """The schema with its query limits; tests may pass a ``query`` type extended with fields of their own,
    and the operator API passes its own roots (app.resolvers.operator.schema)."""
    rules = list(validation_rules)
    extra: list[Any] = [lambda: AddValidationRules(rules)] if rules else []
    overrides.setdefault("config", StrawberryConfig(scalar_map=SCALAR_MAP))
    overrides.setdefault("execution_context_class", TollgateExecutionContext)
    overrides.setdefault("mutation", Mutation)
    overrides.setdefault("subscription", Subscription)
    return TollgateSchema(
        query=query,
        # Classes, not instances: Strawberry makes one per request, so nothing leaks between them.
        extensions=[
            MaskUnexpectedErrors,
            *extra,
            ParserCache,
            limits_extension(limits),
            OperationMetrics,
        ],
        exception_handlers=exception_handlers(),
        **overrides,
    )


schema = build_schema()
