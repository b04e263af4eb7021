"""Quote requests: ``requestQuote`` (issue 14), for an add-on not sold for the environment's ERP."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import strawberry

from app.models.quotes import QUOTE_MESSAGE_MAX_LENGTH
from app.models.quotes import QuoteRequest as QuoteRequestModel
from app.resolvers.common import described_enum
from app.resolvers.context import Info
from app.resolvers.errors import (
    Error,
    IdempotencyKeyReusedError,
    InvalidInputError,
    NoActivePlanError,
    NotAdminError,
    NotEligibleError,
    NotFoundError,
    register_errors,
)
from app.resolvers.ids import global_id
from app.resolvers.permissions import allow
from app.resolvers.store import AddOnUnavailableError
from app.services import quotes as quote_service
from app.services.quotes import QuoteNotNeeded


class QuoteRequestStatus(StrEnum):
    WAITING = "WAITING"
    HANDLED = "HANDLED"


QuoteRequestStatusEnum = described_enum(
    QuoteRequestStatus,
    "QuoteRequestStatus",
    "Where a quote request stands.",
    {
        QuoteRequestStatus.WAITING: "Received: the vendor will contact the environment's admins.",
        QuoteRequestStatus.HANDLED: "The vendor has handled it.",
    },
)


@strawberry.type(
    description="The add-on can be bought in the store for this environment: no quote is needed."
)
class QuoteNotNeededError(Error):
    pass


register_errors({QuoteNotNeeded: QuoteNotNeededError})


@strawberry.type(description="An environment's request for a quote of an add-on not sold for its ERP.")
class QuoteRequest:
    id: strawberry.ID = strawberry.field(description="The request's global id.")
    add_on_code: str = strawberry.field(description="The code of the add-on the quote is for.")
    message: str = strawberry.field(description="The admin's message to the vendor (may be empty).")
    created_at: dt.datetime = strawberry.field(description="When it was asked.")
    status: QuoteRequestStatusEnum = strawberry.field(  # type: ignore[valid-type]
        description="WAITING until the vendor handles it."
    )

    @classmethod
    def of(cls, request: QuoteRequestModel) -> QuoteRequest:
        return cls(
            id=global_id("QuoteRequest", request.id),
            add_on_code=request.add_on_code,
            message=request.message,
            created_at=request.created_at,
            status=QuoteRequestStatus.WAITING if request.handled_at is None else QuoteRequestStatus.HANDLED,
        )


@strawberry.type(description="The quote request was recorded (or found again with the same idempotency key).")
class RequestQuoteSuccess:
    quote_request: QuoteRequest = strawberry.field(description="The request, as recorded.")


RequestQuoteResult = Annotated[
    RequestQuoteSuccess
    | NotAdminError
    | NotEligibleError
    | NoActivePlanError
    | InvalidInputError
    | NotFoundError
    | AddOnUnavailableError
    | QuoteNotNeededError
    | IdempotencyKeyReusedError,
    strawberry.union("RequestQuoteResult", description="The recorded quote request, or why not."),
]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="requestQuote",
        extensions=allow(),
        description="Ask the vendor for a quote of an add-on that is not sold for the environment's ERP "
        "(`AddOn.availability` QUOTE_ONLY): the vendor's operations team and the environment's admins are "
        "e-mailed.",
    )
    async def request_quote(
        self,
        info: Info,
        add_on_code: Annotated[
            str,
            strawberry.argument(description='The add-on\'s code, as the catalog lists it ("start-pack").'),
        ],
        message: Annotated[
            str,
            strawberry.argument(
                description=f"A message to the vendor, at most {QUOTE_MESSAGE_MAX_LENGTH} characters; line "
                "breaks allowed, other control characters refused."
            ),
        ] = "",
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="A key of the client's choosing: a retry with the same key returns the same "
                "request and e-mails nobody again."
            ),
        ] = None,
    ) -> RequestQuoteResult | None:
        principal = await info.context.require_principal()
        request = await quote_service.request_quote(
            principal,
            add_on_code=add_on_code,
            message=message,
            idempotency_key=idempotency_key,
            eligible_since=info.context.settings.store_eligible_since,
            ops_email=info.context.settings.ops_email,
            now=info.context.clock.now(),
        )
        return RequestQuoteSuccess(quote_request=QuoteRequest.of(request))
