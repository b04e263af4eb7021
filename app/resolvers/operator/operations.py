"""The operations view of the operator API: environments over their limits, open alerts, quote requests,
undelivered e-mails; and the two actions it leads to (mark a quote request handled, resend an e-mail)."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Annotated, TypeVar

import strawberry

from app.auth.operator import OPS_READ, TENANTS_WRITE
from app.models import metering as metering_models
from app.models.notifications import OutboxEmail
from app.models.quotes import QuoteRequest as QuoteRequestModel
from app.models.tenancy import Tenant
from app.resolvers.common import (
    AFTER_HELP,
    DEFAULT_PAGE_SIZE,
    PAGE_SIZE_HELP,
    BillingPeriod,
    Connection,
    page_size,
)
from app.resolvers.errors import Error, NotFoundError, register_errors
from app.resolvers.ids import global_id, key_of
from app.resolvers.metering import LimitAlert
from app.resolvers.operator.context import OperatorInfo
from app.resolvers.operator.permissions import needs
from app.services import operations
from app.services.operations import EmailNotUndelivered


@strawberry.type(description="An environment, by its slug and name.")
class EnvironmentRef:
    slug: str = strawberry.field(description='The environment\'s unique slug ("acme").')
    name: str = strawberry.field(description="Its display name.")

    @classmethod
    def of(cls, tenant: Tenant | operations.EnvironmentRef) -> EnvironmentRef:
        return cls(slug=tenant.slug, name=tenant.name)


@strawberry.type(
    description="An environment whose credits used are above its credit limit: no sync process "
    "starts for it until it buys credits or uses fewer."
)
class OverCreditLimit:
    environment: EnvironmentRef = strawberry.field(description="The environment.")
    credits_used: int = strawberry.field(description="Credits used, as last reported by its connector.")
    credit_limit: int = strawberry.field(
        description="Its effective credit limit now (plan and credit packs)."
    )
    percent: Decimal = strawberry.field(description='Credits used as a percent of the limit ("112.50").')
    last_report_at: dt.datetime | None = strawberry.field(
        description="When the counts behind `creditsUsed` were measured (the last applied usage report)."
    )


@strawberry.type(
    description="An environment that started more processes this billing period than its "
    "allowance (credits x 30 days + 33%): they are not blocked, the vendor is to contact it."
)
class BeyondProcessAllowance:
    environment: EnvironmentRef = strawberry.field(description="The environment.")
    period: BillingPeriod = strawberry.field(description="Its current billing period.")
    processes_started: int = strawberry.field(description="Processes started in the period.")
    allowance: int = strawberry.field(description="Its process allowance for the period.")


@strawberry.type(
    description="A limit alert still open: its threshold has not been fallen back below (for "
    "processes: its billing period is still the current one)."
)
class OpenAlert:
    id: strawberry.ID = strawberry.field(
        description="The alert's id: the `LimitAlert.id` its environment sees."
    )
    environment: EnvironmentRef = strawberry.field(description="The environment alerted.")
    alert: LimitAlert = strawberry.field(description="The alert, as its environment's admins saw it.")


@strawberry.type(
    description="An environment's request for a quote on an add-on it cannot buy from the store."
)
class QuoteRequest:
    id: strawberry.ID = strawberry.field(description="Opaque id: pass it to `markQuoteRequestHandled`.")
    environment: EnvironmentRef = strawberry.field(description="The environment asking.")
    add_on_code: str = strawberry.field(description="The catalog code of the add-on concerned.")
    message: str = strawberry.field(description="The customer's message (at most 2,000 characters).")
    requested_by: str = strawberry.field(description="The e-mail address of the user who asked.")
    created_at: dt.datetime = strawberry.field(description="When it was asked.")
    handled_at: dt.datetime | None = strawberry.field(
        description="When it was marked handled; null: waiting."
    )
    handled_by: str | None = strawberry.field(
        description="The prefix of the operator key that marked it handled; null: waiting (or key deleted)."
    )

    @classmethod
    def of(cls, row: QuoteRequestModel) -> QuoteRequest:
        return cls(
            id=global_id("QuoteRequest", row.id),
            environment=EnvironmentRef.of(row.tenant),
            add_on_code=row.add_on_code,
            message=row.message,
            requested_by=row.requested_by,
            created_at=row.created_at,
            handled_at=row.handled_at,
            handled_by=row.handled_by.prefix if row.handled_at and row.handled_by else None,
        )


@strawberry.type(
    description="An e-mail the outbox gave up on: its SMTP server refused it permanently, again "
    "and again. `resendEmail` puts it back in the outbox."
)
class UndeliveredEmail:
    id: strawberry.ID = strawberry.field(description="Opaque id: pass it to `resendEmail`.")
    environment: EnvironmentRef | None = strawberry.field(
        description="The environment it was about; null for the vendor's own e-mails."
    )
    to: str = strawberry.field(description="The recipient's address.")
    subject: str = strawberry.field(description="Its subject.")
    attempts: int = strawberry.field(description="Delivery attempts made since it was (re)queued.")
    last_error: str | None = strawberry.field(description="The last refusal, as the SMTP server gave it.")
    created_at: dt.datetime = strawberry.field(description="When it was queued first.")

    @classmethod
    def of(cls, row: OutboxEmail) -> UndeliveredEmail:
        return cls(
            id=global_id("UndeliveredEmail", row.id),
            environment=EnvironmentRef.of(row.tenant) if row.tenant else None,
            to=row.to_address,
            subject=row.subject,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
        )


@strawberry.type(description="Open limit alerts, newest first, by page.")
class OpenAlertConnection(Connection[OpenAlert]):
    pass


@strawberry.type(description="Quote requests, newest first, by page.")
class QuoteRequestConnection(Connection[QuoteRequest]):
    pass


@strawberry.type(description="Undelivered e-mails, newest first, by page.")
class UndeliveredEmailConnection(Connection[UndeliveredEmail]):
    pass


T = TypeVar("T")


def _open_alert(item: tuple[metering_models.LimitAlert, Tenant]) -> OpenAlert:
    alert, tenant = item
    return OpenAlert(
        id=global_id("LimitAlert", alert.id),
        environment=EnvironmentRef.of(tenant),
        alert=LimitAlert.of(alert, tenant.billing_anchor_day),
    )


First = Annotated[int | None, strawberry.argument(description=PAGE_SIZE_HELP)]
After = Annotated[str | None, strawberry.argument(description=AFTER_HELP)]


@strawberry.type(
    description="What the vendor's staff must act on, across every environment. Each list is "
    "read only when asked, in a fixed number of statements whatever the number of environments."
)
class Operations:
    now: strawberry.Private[dt.datetime]
    snapshot: strawberry.Private[asyncio.Future[operations.LimitsSnapshot] | None] = None

    async def _limits(self) -> operations.LimitsSnapshot:
        # Both limit lists come from one read of the figures, however many of them a query selects.
        if self.snapshot is None:
            self.snapshot = asyncio.ensure_future(operations.limits_snapshot(now=self.now))
        return await self.snapshot

    @strawberry.field(description="Active environments above their credit limit, highest percent first.")
    async def over_credit_limit(self) -> list[OverCreditLimit]:
        return [
            OverCreditLimit(
                environment=EnvironmentRef.of(row.environment),
                credits_used=row.credits_used,
                credit_limit=row.credit_limit,
                percent=row.percent,
                last_report_at=row.last_report_at,
            )
            for row in (await self._limits()).over_credit_limit
        ]

    @strawberry.field(
        description="Active environments beyond their process allowance this billing period, "
        "furthest beyond first."
    )
    async def beyond_process_allowance(self) -> list[BeyondProcessAllowance]:
        return [
            BeyondProcessAllowance(
                environment=EnvironmentRef.of(row.environment),
                period=BillingPeriod.of(row.period),
                processes_started=row.processes_started,
                allowance=row.allowance,
            )
            for row in (await self._limits()).beyond_process_allowance
        ]

    @strawberry.field(description="Limit alerts still open, newest first.")
    async def open_alerts(self, first: First = DEFAULT_PAGE_SIZE, after: After = None) -> OpenAlertConnection:
        page = await operations.open_alerts(now=self.now, first=page_size(first), after=after)
        return OpenAlertConnection.from_page(page, _open_alert, after=after)

    @strawberry.field(description="Quote requests, newest first.")
    async def quote_requests(
        self,
        handled: Annotated[
            bool | None,
            strawberry.argument(description="false: only those waiting; true: only handled ones; null: all."),
        ] = None,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
    ) -> QuoteRequestConnection:
        page = await operations.quote_requests(handled=handled, first=page_size(first), after=after)
        return QuoteRequestConnection.from_page(page, QuoteRequest.of, after=after)

    @strawberry.field(description="E-mails that could not be delivered, newest first.")
    async def undelivered_emails(
        self, first: First = DEFAULT_PAGE_SIZE, after: After = None
    ) -> UndeliveredEmailConnection:
        page = await operations.undelivered_emails(first=page_size(first), after=after)
        return UndeliveredEmailConnection.from_page(page, UndeliveredEmail.of, after=after)


@strawberry.type(description="The e-mail is not undelivered: it was sent, or is on its way.")
class EmailNotUndeliveredError(Error):
    status: str | None = strawberry.field(
        default=None, description='Its delivery status: "PENDING" (on its way) or "SENT".'
    )


register_errors({EmailNotUndelivered: EmailNotUndeliveredError})


@strawberry.type(description="The quote request, marked handled.")
class MarkQuoteRequestHandledSuccess:
    quote_request: QuoteRequest = strawberry.field(
        description="The request; marked handled before, it keeps its first `handledAt` and `handledBy`."
    )


@strawberry.type(description="The e-mail, back in the outbox: the dispatcher sends it within a second or so.")
class ResendEmailSuccess:
    email_id: strawberry.ID = strawberry.field(description="The id of the e-mail resent.")
    to: str = strawberry.field(description="Its recipient.")
    subject: str = strawberry.field(description="Its subject.")


MarkQuoteRequestHandledResult = Annotated[
    MarkQuoteRequestHandledSuccess | NotFoundError,
    strawberry.union("MarkQuoteRequestHandledResult", description="The request handled, or why not."),
]
ResendEmailResult = Annotated[
    ResendEmailSuccess | NotFoundError | EmailNotUndeliveredError,
    strawberry.union("ResendEmailResult", description="The e-mail queued again, or why not."),
]


@strawberry.type
class Query:
    @strawberry.field(
        description="The operations view: environments over their limits, open alerts, quote "
        "requests, undelivered e-mails.",
        extensions=needs(OPS_READ),
    )
    async def operations(self, info: OperatorInfo) -> Operations | None:
        return Operations(now=info.context.clock.now())


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Record that the vendor answered a quote request (audited: `quote_request.handle`). "
        "Marking it again changes nothing.",
        extensions=needs(TENANTS_WRITE),
    )
    async def mark_quote_request_handled(
        self,
        info: OperatorInfo,
        quote_request_id: Annotated[strawberry.ID, strawberry.argument(description="A `QuoteRequest.id`.")],
    ) -> MarkQuoteRequestHandledResult | None:
        key = key_of(quote_request_id, "QuoteRequest", field="quoteRequestId")
        context = info.context
        request = await operations.mark_quote_request_handled(context.operator, key, now=context.clock.now())
        return MarkQuoteRequestHandledSuccess(quote_request=QuoteRequest.of(request))

    @strawberry.mutation(
        description="Put an undelivered e-mail back in the outbox with its attempts reset, to be sent again "
        "(audited: `email.resend`). A write on an environment's behalf: `tenants:write`, not `ops:read`.",
        extensions=needs(TENANTS_WRITE),
    )
    async def resend_email(
        self,
        info: OperatorInfo,
        email_id: Annotated[strawberry.ID, strawberry.argument(description="An `UndeliveredEmail.id`.")],
    ) -> ResendEmailResult | None:
        key = key_of(email_id, "UndeliveredEmail", field="emailId")
        email = await operations.resend_email(info.context.operator, key, now=info.context.clock.now())
        return ResendEmailSuccess(email_id=email_id, to=email.to_address, subject=email.subject)
