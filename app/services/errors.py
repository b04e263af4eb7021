"""Typed failures raised by the services.

The GraphQL layer turns each into a union member of the mutation or query that declares it, or
else into a GraphQL error whose ``extensions.code`` is the same stable ``code``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from app.i18n import Locale, Text, _


class ErrorCode(StrEnum):
    """Every code a client can meet: in a result union's error member (``code``) or, for failures that
    are not the field's answer (credentials, the edge, a refused document), in ``extensions.code``.
    The GraphQL enum ``ErrorCode`` describes each one (``app.resolvers.errors``)."""

    # Credentials and the edge: top-level errors only.
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    PERSISTED_QUERY_INVALID = "PERSISTED_QUERY_INVALID"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    # Expected failures: members of the field's result union.
    NOT_FOUND = "NOT_FOUND"
    NOT_ADMIN = "NOT_ADMIN"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    NO_ACTIVE_PLAN = "NO_ACTIVE_PLAN"
    INVALID_INPUT = "INVALID_INPUT"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    UNSUPPORTED_CURRENCY = "UNSUPPORTED_CURRENCY"
    CART_BUSY = "CART_BUSY"
    CART_CHECKED_OUT = "CART_CHECKED_OUT"
    CART_EMPTY = "CART_EMPTY"
    ADD_ON_UNAVAILABLE = "ADD_ON_UNAVAILABLE"
    QUANTITY_ABOVE_MAXIMUM = "QUANTITY_ABOVE_MAXIMUM"
    NOT_AVAILABLE_FOR_PLAN = "NOT_AVAILABLE_FOR_PLAN"
    REQUIRED_ADD_ON_MISSING = "REQUIRED_ADD_ON_MISSING"
    PRICE_CHANGED = "PRICE_CHANGED"
    TOTAL_CHANGED = "TOTAL_CHANGED"
    COUPON_NOT_FOUND = "COUPON_NOT_FOUND"
    COUPON_NOT_YET_VALID = "COUPON_NOT_YET_VALID"
    COUPON_EXPIRED = "COUPON_EXPIRED"
    COUPON_EXHAUSTED = "COUPON_EXHAUSTED"
    COUPON_ALREADY_USED = "COUPON_ALREADY_USED"
    COUPON_NOT_APPLICABLE = "COUPON_NOT_APPLICABLE"
    COUPON_CHANGED = "COUPON_CHANGED"
    COUPON_CODE_TAKEN = "COUPON_CODE_TAKEN"
    EMAIL_NOT_UNDELIVERED = "EMAIL_NOT_UNDELIVERED"
    INVALID_PERIOD = "INVALID_PERIOD"
    ADD_ON_ALREADY_CANCELLED = "ADD_ON_ALREADY_CANCELLED"
    ADD_ON_NOT_CANCELLED = "ADD_ON_NOT_CANCELLED"
    ADD_ON_NOT_CANCELLABLE = "ADD_ON_NOT_CANCELLABLE"
    ADD_ON_ENDED = "ADD_ON_ENDED"
    NOT_CONFIGURABLE = "NOT_CONFIGURABLE"
    INVALID_SETTINGS = "INVALID_SETTINGS"
    PLAN_UNAVAILABLE = "PLAN_UNAVAILABLE"
    CURRENCY_NOT_PRICED = "CURRENCY_NOT_PRICED"
    CURRENCY_LOCKED = "CURRENCY_LOCKED"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    PLAN_UNCHANGED = "PLAN_UNCHANGED"
    PLAN_CHANGE_PENDING = "PLAN_CHANGE_PENDING"
    PLAN_CHANGE_CONFLICTS = "PLAN_CHANGE_CONFLICTS"
    NO_PLAN_CHANGE_PENDING = "NO_PLAN_CHANGE_PENDING"
    NOT_SOLD_FOR_ERP = "NOT_SOLD_FOR_ERP"
    QUOTE_NOT_NEEDED = "QUOTE_NOT_NEEDED"


class DomainError(Exception):
    """``message`` is read in English (logs); ``localized`` renders it in the caller's locale. Raise with
    a ``Text`` (``_("...", field=value)``) so that it can be translated: a plain ``str`` stays as it is."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_SERVER_ERROR
    default_message: ClassVar[Text] = _("The request could not be completed.")

    def __init__(
        self, message: str | Text | None = None, *, field: str | None = None, **details: Any
    ) -> None:
        self.text: str | Text = message or self.default_message
        self.message = str(self.text)
        self.field = field
        self.details = details
        super().__init__(self.message)

    def localized(self, locale: Locale | None) -> str:
        """The message in ``locale`` (English without one)."""
        return self.text.render(locale) if isinstance(self.text, Text) else self.text

    @property
    def extensions(self) -> dict[str, Any]:
        """Read by graphql-core when this error surfaces as a GraphQL error."""
        extensions: dict[str, Any] = {"code": self.code, **self.details}
        if self.field is not None:
            extensions["field"] = self.field
        return extensions


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED
    default_message = _("Credentials are missing or invalid.")


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN
    default_message = _("These credentials may not do this.")


class NotFound(DomainError):
    """Also the answer for another tenant's ids: the same as for ids that do not exist."""

    code = ErrorCode.NOT_FOUND
    default_message = _("Not found.")


class NotAdmin(DomainError):
    code = ErrorCode.NOT_ADMIN
    default_message = _("Only administrators of the environment may do this.")


class NotEligible(DomainError):
    code = ErrorCode.NOT_ELIGIBLE
    default_message = _("The add-on store and My plan are not available for this environment.")


class NoActivePlan(DomainError):
    code = ErrorCode.NO_ACTIVE_PLAN
    default_message = _("The environment has no active plan.")


class InvalidInput(DomainError):
    code = ErrorCode.INVALID_INPUT
    default_message = _("The input is not valid.")


class UnsupportedCurrency(DomainError):
    code = ErrorCode.UNSUPPORTED_CURRENCY
    default_message = _("Prices are not available in that currency.")


# Messages quote what the caller sent so that a typo is easy to spot, but never all of it: a hostile value
# (10,000 characters, control characters) would otherwise travel back, and into logs, whole (issue 11).
SHOWN_MAX = 40


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """``value`` quoted for a message: control characters escaped, at most ``limit`` characters of it."""
    text = value if isinstance(value, str) else str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}…"
