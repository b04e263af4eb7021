"""A contracted add-on after checkout: ``cancellationPreview``; ``cancelAddOn``, ``undoCancellation``,
``configureIntegration``. ``addOnId`` is the id of the add-on in My plan (``ActiveAddOn.id``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.auth import scopes
from app.resolvers.account import ActiveAddOn
from app.resolvers.common import BillingPeriod
from app.resolvers.context import Info
from app.resolvers.errors import (
    Error,
    NoActivePlanError,
    NotAdminError,
    NotEligibleError,
    NotFoundError,
    register_errors,
)
from app.resolvers.permissions import allow
from app.services import cancellation, integrations, lifecycle
from app.services.errors import DomainError
from app.services.secrets import box_from_settings

CancellationWarningKindEnum = strawberry.enum(cancellation.WarningKind, name="CancellationWarningKind")


# --- Errors ------------------------------------------------------------------------------------


@strawberry.type
class AddOnAlreadyCancelledError(Error):
    pass


@strawberry.type
class AddOnNotCancelledError(Error):
    pass


@strawberry.type(description="One-off items are billed once: there is nothing to cancel.")
class AddOnNotCancellableError(Error):
    pass


@strawberry.type
class AddOnEndedError(Error):
    pass


@strawberry.type(description="The add-on declares no settings.")
class NotConfigurableError(Error):
    pass


@strawberry.type
class SettingProblem:
    field: str = strawberry.field(description='"settings.<name>", or "settings" for the whole value.')
    code: str = strawberry.field(
        description="REQUIRED, UNKNOWN_SETTING, WRONG_TYPE, INVALID_URL, URL_HAS_CREDENTIALS, PRIVATE_HOST, "
        "TOO_LONG or NOT_AN_OBJECT."
    )
    message: str


@strawberry.type(description="Every problem of the submitted settings, at once.")
class InvalidSettingsError(Error):
    problems: list[SettingProblem]

    @classmethod
    def from_domain_error(cls, error: DomainError) -> InvalidSettingsError:
        assert isinstance(error, integrations.InvalidSettings)
        return cls(
            code=error.code,
            message=error.message,
            field=error.field,
            problems=[SettingProblem(field=p.field, code=p.code, message=p.message) for p in error.problems],
        )


register_errors(
    {
        cancellation.AddOnAlreadyCancelled: AddOnAlreadyCancelledError,
        cancellation.AddOnNotCancelled: AddOnNotCancelledError,
        cancellation.AddOnNotCancellable: AddOnNotCancellableError,
        lifecycle.AddOnEnded: AddOnEndedError,
        integrations.NotConfigurable: NotConfigurableError,
        integrations.InvalidSettings: InvalidSettingsError,
    }
)


# --- Payloads ----------------------------------------------------------------------------------


@strawberry.type(description="What losing the add-on would break.")
class CancellationWarning:
    kind: CancellationWarningKindEnum  # type: ignore[valid-type]
    message: str
    used: int | None = strawberry.field(description="Current usage (storage in MB, rounded up).")
    limit_now: int | None
    limit_after: int | None = strawberry.field(description="The effective limit once the add-on has ended.")
    add_on_codes: list[str] = strawberry.field(description="REQUIRED_BY: the add-ons that need this one.")

    @classmethod
    def of(cls, warning: cancellation.CancellationWarning) -> CancellationWarning:
        return cls(
            kind=warning.kind,
            message=warning.message,
            used=warning.used,
            limit_now=warning.limit_now,
            limit_after=warning.limit_after,
            add_on_codes=list(warning.add_on_codes),
        )


@strawberry.type(description="Shown before confirming a cancellation.")
class CancellationPreview:
    add_on: ActiveAddOn
    available_until: dt.date = strawberry.field(description="The last day the add-on is available.")
    ends_at: dt.datetime = strawberry.field(description="When it stops counting: the end of the period.")
    period: BillingPeriod
    warnings: list[CancellationWarning]

    @classmethod
    def of(cls, terms: cancellation.CancellationTerms, *, now: dt.datetime) -> CancellationPreview:
        return cls(
            add_on=ActiveAddOn.of(terms.subscription, now=now),
            available_until=terms.available_until,
            ends_at=terms.ends_at,
            period=BillingPeriod.of(terms.period),
            warnings=[CancellationWarning.of(warning) for warning in terms.warnings],
        )


@strawberry.type(
    description="The add-on is cancelled: it shows its disable date and the admins are e-mailed."
)
class CancelAddOnSuccess:
    add_on: ActiveAddOn
    available_until: dt.date
    ends_at: dt.datetime
    warnings: list[CancellationWarning]


@strawberry.type
class UndoCancellationSuccess:
    add_on: ActiveAddOn


@strawberry.type
class ConfigureIntegrationSuccess:
    add_on: ActiveAddOn


_ACCESS = NotAdminError | NotEligibleError | NoActivePlanError
_CANCELLABLE = NotFoundError | AddOnAlreadyCancelledError | AddOnEndedError | AddOnNotCancellableError

CancellationPreviewResult = Annotated[
    CancellationPreview | _ACCESS | _CANCELLABLE, strawberry.union("CancellationPreviewResult")
]
CancelAddOnResult = Annotated[
    CancelAddOnSuccess | _ACCESS | _CANCELLABLE, strawberry.union("CancelAddOnResult")
]
UndoCancellationResult = Annotated[
    UndoCancellationSuccess | _ACCESS | NotFoundError | AddOnNotCancelledError | AddOnEndedError,
    strawberry.union("UndoCancellationResult"),
]
ConfigureIntegrationResult = Annotated[
    ConfigureIntegrationSuccess
    | _ACCESS
    | NotFoundError
    | NotConfigurableError
    | AddOnEndedError
    | InvalidSettingsError,
    strawberry.union("ConfigureIntegrationResult"),
]


# --- Root fields -------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(
        name="cancellationPreview",
        extensions=allow(scopes.TENANT_READ),
        description="Until when the add-on stays available if cancelled now, and what its loss would break.",
    )
    async def cancellation_preview(self, info: Info, add_on_id: strawberry.ID) -> CancellationPreviewResult:
        now = info.context.clock.now()
        terms = await cancellation.preview(
            await info.context.require_principal(),
            add_on_id=add_on_id,
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
        )
        return CancellationPreview.of(terms, now=now)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="cancelAddOn",
        extensions=allow(),
        description="Cancel at the end of the current billing period; undo with undoCancellation until then.",
    )
    async def cancel_add_on(self, info: Info, add_on_id: strawberry.ID) -> CancelAddOnResult:
        now = info.context.clock.now()
        terms = await cancellation.cancel(
            await info.context.require_principal(),
            add_on_id=add_on_id,
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            plan_cache=info.context.services.plan_cache,
            broadcaster=info.context.services.broadcaster,
        )
        preview = CancellationPreview.of(terms, now=now)
        return CancelAddOnSuccess(
            add_on=preview.add_on,
            available_until=preview.available_until,
            ends_at=preview.ends_at,
            warnings=preview.warnings,
        )

    @strawberry.mutation(name="undoCancellation", extensions=allow())
    async def undo_cancellation(self, info: Info, add_on_id: strawberry.ID) -> UndoCancellationResult:
        now = info.context.clock.now()
        subscription = await cancellation.undo(
            await info.context.require_principal(),
            add_on_id=add_on_id,
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            plan_cache=info.context.services.plan_cache,
            broadcaster=info.context.services.broadcaster,
        )
        return UndoCancellationSuccess(add_on=ActiveAddOn.of(subscription, now=now))

    @strawberry.mutation(
        name="configureIntegration",
        extensions=allow(),
        description="Set an integration's declared settings; secrets are encrypted and never returned.",
    )
    async def configure_integration(
        self, info: Info, add_on_id: strawberry.ID, settings: JSON
    ) -> ConfigureIntegrationResult:
        now = info.context.clock.now()
        subscription = await integrations.configure_integration(
            await info.context.require_principal(),
            add_on_id=add_on_id,
            settings=settings,
            box=box_from_settings(info.context.settings),
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            plan_cache=info.context.services.plan_cache,
            broadcaster=info.context.services.broadcaster,
            allow_private_hosts=info.context.settings.integration_allow_private_hosts,
        )
        return ConfigureIntegrationSuccess(add_on=ActiveAddOn.of(subscription, now=now))
