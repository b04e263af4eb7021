"""The one Strawberry schema: the domains' Query/Mutation/Subscription classes, with its extensions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import ExecutionResult, GraphQLError, OperationType
from graphql.validation import ASTValidationRule
from strawberry.extensions import AddValidationRules, MaskErrors, ParserCache
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.tools import merge_types

from app import fast_path
from app.observability import OperationMetrics, current_request_id
from app.query_limits import QueryLimits, limits_extension
from app.resolvers import account, addons, catalog, metering, store
from app.resolvers.errors import exception_handlers
from app.services.errors import DomainError

# Each domain module contributes its own root classes; add new domains here.
QUERIES: tuple[type, ...] = (catalog.Query, account.Query, store.Query, addons.Query, metering.Query)
MUTATIONS: tuple[type, ...] = (store.Mutation, addons.Mutation, metering.Mutation)
SUBSCRIPTIONS: tuple[type, ...] = (metering.Subscription,)

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS) if MUTATIONS else None
Subscription = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None
# Custom scalars (NewType -> definition), contributed by the domains.
SCALAR_MAP: dict[object, Any] = {**metering.SCALARS}


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
    """Strawberry's executor, with subscription events completed by the fast lane (``app.fast_path``):
    an alert fanned out to a thousand subscribers is completed a thousand times."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        if self.operation.operation == OperationType.SUBSCRIPTION:
            field = fast_path.compiled_event(self.schema._strawberry_schema, self.operation)  # type: ignore[attr-defined]
            if field is not None:
                return self._complete_event(field, serially)
        return super().execute_operation(serially)

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
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": current_request_id()}
        return masked


class TollgateSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Typed failures are answers, not incidents: log only what is unexpected.
        unexpected = [error for error in errors if not isinstance(error.original_error, DomainError)]
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
    """The schema with its query limits; tests may pass a ``query`` type extended with fields of their own."""
    rules = list(validation_rules)
    extra: list[Any] = [lambda: AddValidationRules(rules)] if rules else []
    overrides.setdefault("config", StrawberryConfig(scalar_map=SCALAR_MAP))
    overrides.setdefault("execution_context_class", TollgateExecutionContext)
    return TollgateSchema(
        query=query,
        mutation=Mutation,
        subscription=Subscription,
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
