"""Typed failures raised by the services.

The GraphQL layer turns each into a union member of the mutation or query that declares it, or
else into a GraphQL error whose ``extensions.code`` is the same stable ``code``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "ERROR"
    default_message: ClassVar[str] = "The request could not be completed."

    def __init__(self, message: str | None = None, *, field: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.field = field
        self.details = details
        super().__init__(self.message)

    @property
    def extensions(self) -> dict[str, Any]:
        """Read by graphql-core when this error surfaces as a GraphQL error."""
        extensions: dict[str, Any] = {"code": self.code, **self.details}
        if self.field is not None:
            extensions["field"] = self.field
        return extensions


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    default_message = "Credentials are missing or invalid."


class Forbidden(DomainError):
    code = "FORBIDDEN"
    default_message = "These credentials may not do this."


class NotFound(DomainError):
    """Also the answer for another tenant's ids: the same as for ids that do not exist."""

    code = "NOT_FOUND"
    default_message = "Not found."


class NotAdmin(DomainError):
    code = "NOT_ADMIN"
    default_message = "Only administrators of the environment may do this."


class NotEligible(DomainError):
    code = "NOT_ELIGIBLE"
    default_message = "The add-on store and My plan are not available for this environment."


class NoActivePlan(DomainError):
    code = "NO_ACTIVE_PLAN"
    default_message = "The environment has no active plan."


class InvalidInput(DomainError):
    code = "INVALID_INPUT"
    default_message = "The input is not valid."


class UnsupportedCurrency(DomainError):
    code = "UNSUPPORTED_CURRENCY"
    default_message = "Prices are not available in that currency."


# Messages quote what the caller sent so that a typo is easy to spot, but never all of it: a hostile value
# (10,000 characters, control characters) would otherwise travel back, and into logs, whole (issue 11).
SHOWN_MAX = 40


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """``value`` quoted for a message: control characters escaped, at most ``limit`` characters of it."""
    text = value if isinstance(value, str) else str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}…"
