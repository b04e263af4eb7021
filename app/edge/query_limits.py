"""What one GraphQL document may ask: depth, aliases, tokens, introspection, suggestions.

The gateway faces the internet: a partner in GraphiQL or a stranger with curl may send anything. These limits
are validation rules built once per schema (a rule class made per request would defeat the validation cache)
and a parse option, so a document over a limit gets a clear GraphQL error before any resolver runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSchema, validate
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 10
    max_aliases: int = 20
    max_tokens: int = 2_000
    introspection: bool = True
    suggestions: bool = True

    def rules(self) -> tuple[type[ASTValidationRule], ...]:
        rules: list[type[ASTValidationRule]] = [
            max_depth_rule(self.max_depth, None, None),
            max_aliases_rule(self.max_aliases),
        ]
        if not self.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        return tuple(rules)


# graphql-core ends a message with its suggestions: " Did you mean 'X'?", " Did you mean the enum value 'X'?"
_SUGGESTION = re.compile(r"\s*Did you mean .*\?\s*$", re.DOTALL)


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


@lru_cache(maxsize=1_024)
def _validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
) -> list[GraphQLError]:
    # Keyed by the parsed document: with ParserCache, one query text is one DocumentNode.
    return validate(
        schema,
        document,
        (*rules, MaybeNullValidationRule, OneOfInputValidationRule),
        hide_suggestions=hide_suggestions,
    )


def limits_extension(limits: QueryLimits) -> type[SchemaExtension]:
    """A per-request extension class that enforces ``limits`` and caches validation results."""
    extra_rules = limits.rules()

    class EnforceQueryLimits(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            context = self.execution_context
            context.parse_options["max_tokens"] = limits.max_tokens
            context.validation_rules = (*context.validation_rules, *extra_rules)
            yield

        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            assert context.graphql_document is not None
            context.pre_execution_errors = _validate(
                context.schema._schema,
                context.graphql_document,
                context.validation_rules,
                not limits.suggestions,
            )
            yield

        def on_execute(self) -> Iterator[None]:
            yield
            if limits.suggestions:
                return
            # Variables are coerced by the executor, which graphql-core gives no switch for suggestions
            # (the validation above has one): their errors are request errors without a path.
            result = self.execution_context.result
            for error in getattr(result, "errors", None) or ():
                if not error.path and "Did you mean" in error.message:
                    error.message = without_suggestions(error.message)

    return EnforceQueryLimits
