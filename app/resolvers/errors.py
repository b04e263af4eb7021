"""Typed errors: the ``Error`` interface, one type per failure, and the mapping from the services.

A service raises a ``DomainError``; when the field's result union lists the matching type, a
Strawberry exception handler returns it as that member. Otherwise it travels as a GraphQL error
with ``extensions.code``. Resolvers have no try/except.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

from app.resolvers.context import Info
from app.services import errors
from app.services.idempotency import IdempotencyKeyReused


@strawberry.interface(description="An expected failure, returned in the payload.")
class Error:
    code: str = strawberry.field(description="Stable, machine-readable code.")
    message: str
    field: str | None = strawberry.field(default=None, description="The input field concerned, if any.")


@strawberry.type
class NotFoundError(Error):
    pass


@strawberry.type
class NotAdminError(Error):
    pass


@strawberry.type
class NotEligibleError(Error):
    pass


@strawberry.type
class NoActivePlanError(Error):
    pass


@strawberry.type
class InvalidInputError(Error):
    pass


@strawberry.type(description="The idempotency key was already used with a different request.")
class IdempotencyKeyReusedError(Error):
    pass


# Each domain failure and the GraphQL type that represents it. Each resolvers module registers its
# own with ``register_errors`` at import time; the schema builds one handler per pair.
ERROR_TYPES: dict[type[errors.DomainError], type[Error]] = {
    errors.NotFound: NotFoundError,
    errors.NotAdmin: NotAdminError,
    errors.NotEligible: NotEligibleError,
    errors.NoActivePlan: NoActivePlanError,
    errors.InvalidInput: InvalidInputError,
    IdempotencyKeyReused: IdempotencyKeyReusedError,
}


def register_errors(mapping: dict[type[errors.DomainError], type[Error]]) -> None:
    ERROR_TYPES.update(mapping)


class DomainErrorHandler:
    """Strawberry exception handler turning one ``DomainError`` class into its union member."""

    def __init__(self, exception_type: type[errors.DomainError], error_type: type[Error]) -> None:
        self.exception_type = exception_type
        self.error_type = error_type

    def handle(self, exception: errors.DomainError, *, field: StrawberryField, info: Info) -> Any:
        # An error type with fields of its own (e.g. the lines whose price changed) builds itself.
        build = getattr(self.error_type, "from_domain_error", None)
        if build is not None:
            return build(exception)
        return self.error_type(code=exception.code, message=exception.message, field=exception.field)


def exception_handlers() -> list[DomainErrorHandler]:
    # Most specific first, so that a subclass maps to its own type rather than its parent's.
    ordered = sorted(ERROR_TYPES.items(), key=lambda pair: len(pair[0].__mro__), reverse=True)
    return [DomainErrorHandler(exc, err) for exc, err in ordered]
