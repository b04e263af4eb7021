"""Typed errors: the ``Error`` interface, one type per failure, and the mapping from the services.

A service raises a ``DomainError``; when the field's result union lists the matching type, a
Strawberry exception handler returns it as that member. Otherwise it travels as a GraphQL error
with ``extensions.code``. Resolvers have no try/except.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types.field import StrawberryField

from app.i18n import Locale
from app.resolvers.common import described_enum
from app.resolvers.context import Info
from app.services import errors
from app.services.errors import ErrorCode as Code
from app.services.idempotency import IdempotencyKeyReused

ERROR_CODE_DESCRIPTIONS: dict[Code, str] = {
    Code.UNAUTHENTICATED: "Top-level: credentials are missing, malformed, expired or revoked.",
    Code.FORBIDDEN: "Top-level: valid credentials that may not use this field (a missing API key "
    "scope, or an API key on a field for users); `extensions.requiredScopes` names what would do.",
    Code.RATE_LIMITED: "Top-level (HTTP 429): too many requests; `extensions.retryAfter` in seconds.",
    Code.PAYLOAD_TOO_LARGE: "Top-level (HTTP 413): the request body is larger than `extensions.maxBytes`.",
    Code.PERSISTED_QUERY_INVALID: "Top-level: `extensions.persistedQuery` needs version 1 and a sha256Hash.",
    Code.PERSISTED_QUERY_NOT_FOUND: "Top-level: the hash is unknown here; send the document with it.",
    Code.PERSISTED_QUERY_NOT_ALLOWED: "Top-level: this gateway runs only the documents of its allow-list.",
    Code.PERSISTED_QUERY_HASH_MISMATCH: "Top-level: the sha256Hash is not the hash of the document.",
    Code.GRAPHQL_PARSE_FAILED: "Top-level: the document is not valid GraphQL syntax.",
    Code.GRAPHQL_VALIDATION_FAILED: "Top-level: the document does not validate against the schema "
    "or exceeds the query limits (depth, aliases, cost).",
    Code.BAD_USER_INPUT: "Top-level: a variable or argument does not fit its type or documented "
    "range (a page size above 100, a malformed cursor).",
    Code.INTERNAL_SERVER_ERROR: "Top-level: an unexpected failure; `extensions.requestId` lets "
    "support find it.",
    Code.NOT_FOUND: "Nothing with this id or code for the caller (another environment's ids included).",
    Code.NOT_ADMIN: "Only administrators of the environment may do this.",
    Code.NOT_ELIGIBLE: "The add-on store and My plan are not open to this environment (created "
    "before `NotEligibleError.eligibleSince`).",
    Code.NO_ACTIVE_PLAN: "The environment has no active plan.",
    Code.INVALID_INPUT: "An argument breaks a rule its type cannot express; `field` names it.",
    Code.IDEMPOTENCY_KEY_REUSED: "The idempotency key was already used for a different request.",
    Code.UNSUPPORTED_CURRENCY: "The add-on has no price in the environment's currency.",
    Code.CART_BUSY: "Another change to the same cart is being made: retry.",
    Code.CART_CHECKED_OUT: "The cart was confirmed meanwhile: this change was not made.",
    Code.CART_EMPTY: "There is nothing in the cart to check out.",
    Code.ADD_ON_UNAVAILABLE: "The add-on is no longer sold.",
    Code.QUANTITY_ABOVE_MAXIMUM: "More units than the add-on's maximum per environment.",
    Code.NOT_AVAILABLE_FOR_PLAN: "The add-on is not sold with the environment's plan.",
    Code.REQUIRED_ADD_ON_MISSING: "The add-on needs other add-ons, active or in the same cart.",
    Code.PRICE_CHANGED: "A price changed since it was added to the cart: checkout charged nothing.",
    Code.TOTAL_CHANGED: "The figures to charge differ from those last shown: checkout charged nothing.",
    Code.COUPON_NOT_FOUND: "No coupon has this code.",
    Code.COUPON_NOT_YET_VALID: "The coupon's validity has not started.",
    Code.COUPON_EXPIRED: "The coupon has expired.",
    Code.COUPON_EXHAUSTED: "The coupon reached its maximum number of redemptions.",
    Code.COUPON_ALREADY_USED: "The environment already redeemed this coupon.",
    Code.COUPON_NOT_APPLICABLE: "The coupon discounts nothing in this cart.",
    Code.COUPON_CHANGED: "The coupon's terms changed since it was applied: apply it again.",
    Code.COUPON_CODE_TAKEN: "Operators: a coupon with this code exists with other terms.",
    Code.EMAIL_NOT_UNDELIVERED: "Operators: the e-mail is not undelivered (DEAD): it is sent or on its way.",
    Code.INVALID_PERIOD: 'The billing period is not a month name such as "2026-11" within range.',
    Code.ADD_ON_ALREADY_CANCELLED: "The add-on is already cancelled.",
    Code.ADD_ON_NOT_CANCELLED: "The add-on is not cancelled: there is nothing to undo.",
    Code.ADD_ON_NOT_CANCELLABLE: "One-off items are billed once: there is nothing to cancel.",
    Code.ADD_ON_ENDED: "The add-on has ended: it can no longer change.",
    Code.NOT_CONFIGURABLE: "The add-on declares no settings.",
    Code.INVALID_SETTINGS: "Some submitted settings are not valid: each problem is listed.",
    Code.PLAN_UNAVAILABLE: "The plan is no longer sold: no new subscription may start on it.",
    Code.CURRENCY_NOT_PRICED: "The plan has no price in this currency; `pricedCurrencies` lists them.",
    Code.CURRENCY_LOCKED: "The environment has add-ons contracted in its currency: it cannot change.",
    Code.EMAIL_TAKEN: "Another user (of this environment or another) already has this e-mail address.",
    Code.PLAN_UNCHANGED: "The environment is already on this plan.",
    Code.PLAN_CHANGE_PENDING: "A plan change is already scheduled for the end of the period: cancel it "
    "(`cancelPlanChange`) before asking for another.",
    Code.PLAN_CHANGE_CONFLICTS: "The environment would not fit the smaller plan: `conflicts` lists each "
    "reason (credits, users, integrations in use, add-ons the plan does not sell).",
    Code.NO_PLAN_CHANGE_PENDING: "There is no scheduled plan change to cancel.",
    Code.NOT_SOLD_FOR_ERP: "The add-on is not sold for the environment's ERP: ask for a quote "
    "(`requestQuote`).",
    Code.QUOTE_NOT_NEEDED: "The add-on can be bought in the store for this environment: no quote is needed.",
}

ErrorCodeEnum = described_enum(
    Code,
    "ErrorCode",
    "Every error code: the `code` of an error in a result union, or `extensions.code` of a top-level error "
    "(those say so). New codes may be added; treat an unknown one as a failure.",
    ERROR_CODE_DESCRIPTIONS,
)


@strawberry.interface(
    description="An expected failure, returned as a member of the field's result union: `code` says which, "
    "`message` says it in words for a person, `field` points at the argument concerned."
)
class Error:
    code: ErrorCodeEnum = strawberry.field(  # type: ignore[valid-type]
        description="Stable, machine-readable code: switch on this, not on the message."
    )
    message: str = strawberry.field(description="A sentence for a person; its wording may change.")
    field: str | None = strawberry.field(
        default=None, description='The argument or input field concerned ("input.measuredAt"), if any.'
    )


@strawberry.type(description="Nothing with this id or code for the caller.")
class NotFoundError(Error):
    pass


@strawberry.type(description="Only administrators of the environment may do this.")
class NotAdminError(Error):
    pass


@strawberry.type(description="The add-on store and My plan are not open to this environment.")
class NotEligibleError(Error):
    eligible_since: dt.date | None = strawberry.field(
        default=None, description="Environments created on or after this day are eligible."
    )


@strawberry.type(description="The environment has no active plan.")
class NoActivePlanError(Error):
    pass


@strawberry.type(description="An argument breaks a rule its type cannot express; `field` names it.")
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
        # A type whose fields need building (the lines whose price changed) builds itself, in the
        # caller's language; the others take their own fields from the error's details, under the same names.
        locale = locale_of_context(info.context)
        build = getattr(self.error_type, "from_domain_error", None)
        if build is not None:
            return build(exception, locale)
        make: Any = self.error_type
        own = {f.name for f in dataclasses.fields(make)} - {"code", "message", "field"}
        return make(
            code=exception.code,
            message=exception.localized(locale),
            field=exception.field,
            **{name: exception.details.get(name) for name in own},
        )


def locale_of_context(context: Any) -> Locale | None:
    """The language of a request's context (both APIs' contexts have ``current_locale``); English without
    a context (a schema executed directly, as some tests do)."""
    current = getattr(context, "current_locale", None)
    return current() if callable(current) else None


def localized(error: GraphQLError, locale: Locale | None) -> GraphQLError:
    """A top-level error carrying a typed failure, its message in ``locale`` (its code unchanged)."""
    if isinstance(error.original_error, errors.DomainError):
        error.message = error.original_error.localized(locale)
    return error


def exception_handlers() -> list[DomainErrorHandler]:
    # Most specific first, so that a subclass maps to its own type rather than its parent's.
    ordered = sorted(ERROR_TYPES.items(), key=lambda pair: len(pair[0].__mro__), reverse=True)
    return [DomainErrorHandler(exc, err) for exc, err in ordered]
