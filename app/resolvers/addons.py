"""A contracted add-on after checkout: ``cancellationPreview``; ``cancelAddOn``, ``undoCancellation``,
``configureIntegration``. Each takes ``activeAddOnId``, an ``ActiveAddOn.id``: any other id (a catalog
``AddOn.id``, an order's) is answered as an unknown one, never acted upon."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app.auth import scopes
from app.i18n import Locale
from app.models.tenancy import Tenant
from app.resolvers import ids
from app.resolvers.account import ActiveAddOn, MyPlan
from app.resolvers.common import BillingPeriod, described_enum
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
from app.resolvers.scalars import Long
from app.services import cancellation, integrations, lifecycle
from app.services.errors import DomainError
from app.services.lifecycle import ID_ARGUMENT
from app.services.secrets import box_from_settings

Kind = cancellation.WarningKind
CancellationWarningKindEnum = described_enum(
    Kind,
    "CancellationWarningKind",
    "What losing the add-on would affect.",
    {
        Kind.CREDITS: "Credits in use exceed the credit limit left once it ends.",
        Kind.USERS: "User accounts exceed the user limit left once it ends.",
        Kind.INTEGRATIONS: "Integrations in use exceed the integration limit left once it ends.",
        Kind.STORAGE: "Storage in use exceeds the storage limit left once it ends.",
        Kind.REQUIRED_BY: "Other contracted add-ons require it; they stay but lose what it provides.",
    },
)

Problem = integrations.ProblemCode
SettingProblemCodeEnum = described_enum(
    Problem,
    "SettingProblemCode",
    "What is wrong with a submitted setting.",
    {
        Problem.REQUIRED: "A required setting is missing or blank.",
        Problem.UNKNOWN_SETTING: "The add-on declares no setting of this name.",
        Problem.WRONG_TYPE: "The value is not of the setting's kind (text, whole number, true or false), "
        "or holds control characters.",
        Problem.INVALID_URL: "The value is not an absolute https:// URL with a host name.",
        Problem.URL_HAS_CREDENTIALS: "The URL carries a user name or password: put them in the secret "
        "settings.",
        Problem.PRIVATE_HOST: "The URL names this machine or a private network instead of a public host.",
        Problem.TOO_LONG: "The value is longer than the setting allows.",
        Problem.NOT_AN_OBJECT: "The settings are not a JSON object of name: value.",
    },
)

ActiveAddOnId = Annotated[
    strawberry.ID,
    strawberry.argument(
        description="The add-on's `ActiveAddOn.id`, from My plan or checkout (not a catalog `AddOn.id`)."
    ),
]


def subscription_key(active_add_on_id: str) -> str:
    """The subscription an ``ActiveAddOn.id`` names; any other id is ``NOT_FOUND``."""
    return ids.key_of(active_add_on_id, "ActiveAddOn", field=ID_ARGUMENT)


# --- Errors ------------------------------------------------------------------------------------


@strawberry.type(description="The add-on is already cancelled: it ends at the end of its billing period.")
class AddOnAlreadyCancelledError(Error):
    ends_at: dt.datetime = strawberry.field(description="When it stops counting.")
    available_until: dt.date = strawberry.field(description="The last day it is available.")

    @classmethod
    def from_domain_error(cls, error: DomainError, locale: Locale | None) -> AddOnAlreadyCancelledError:
        ends_at: dt.datetime = error.details["ends_at"]
        return cls(
            code=error.code,
            message=error.localized(locale),
            field=error.field,
            ends_at=ends_at,
            available_until=(ends_at - dt.timedelta(days=1)).date(),
        )


@strawberry.type(description="The add-on is not cancelled: there is nothing to undo.")
class AddOnNotCancelledError(Error):
    pass


@strawberry.type(description="One-off items are billed once: there is nothing to cancel.")
class AddOnNotCancellableError(Error):
    pass


@strawberry.type(description="The add-on has ended: it can no longer change; contract it again instead.")
class AddOnEndedError(Error):
    ended_at: dt.datetime = strawberry.field(description="When it stopped counting.")


@strawberry.type(description="The add-on declares no settings.")
class NotConfigurableError(Error):
    pass


@strawberry.type(description="One problem of the submitted settings.")
class SettingProblem:
    field: str = strawberry.field(
        description='The setting concerned, "settings.<name>", or "settings" for the whole value.'
    )
    code: SettingProblemCodeEnum = strawberry.field(  # type: ignore[valid-type]
        description="What is wrong: switch on this, not on the message."
    )
    message: str = strawberry.field(description="The problem in words, for a person.")


@strawberry.type(description="Every problem of the submitted settings, at once; nothing was saved.")
class InvalidSettingsError(Error):
    problems: list[SettingProblem] = strawberry.field(description="Each problem found, by setting.")

    @classmethod
    def from_domain_error(cls, error: DomainError, locale: Locale | None) -> InvalidSettingsError:
        assert isinstance(error, integrations.InvalidSettings)
        return cls(
            code=error.code,
            message=error.localized(locale),
            field=error.field,
            problems=[
                SettingProblem(field=p.field, code=p.code, message=p.message.render(locale))
                for p in error.problems
            ],
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


@strawberry.type(description="What losing the add-on would break, once it ends.")
class CancellationWarning:
    kind: CancellationWarningKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="What would be affected."
    )
    message: str = strawberry.field(description="The consequence in words, for a person.")
    used: Long | None = strawberry.field(
        description="Current usage (storage in bytes); null for REQUIRED_BY."
    )
    limit_now: Long | None = strawberry.field(
        description="The effective limit today (storage in bytes); null for REQUIRED_BY."
    )
    limit_after: Long | None = strawberry.field(
        description="The effective limit once the add-on has ended (storage in bytes); null for REQUIRED_BY."
    )
    required_by_add_on_codes: list[str] = strawberry.field(
        description="REQUIRED_BY: the codes of the contracted add-ons that require this one; empty otherwise."
    )

    @classmethod
    def of(cls, warning: cancellation.CancellationWarning) -> CancellationWarning:
        def long(value: int | None) -> Long | None:
            return None if value is None else Long(value)

        return cls(
            kind=warning.kind,
            message=warning.message,
            used=long(warning.used),
            limit_now=long(warning.limit_now),
            limit_after=long(warning.limit_after),
            required_by_add_on_codes=list(warning.required_by_add_on_codes),
        )


@strawberry.type(description="What cancelling the add-on now would mean, shown before confirming.")
class CancellationPreview:
    id: strawberry.ID = strawberry.field(description="The preview's id: the same for the same add-on.")
    active_add_on: ActiveAddOn = strawberry.field(description="The add-on that would be cancelled.")
    available_until: dt.date = strawberry.field(description="The last day the add-on would be available.")
    ends_at: dt.datetime = strawberry.field(
        description="When it would stop counting: the end of the current billing period."
    )
    period: BillingPeriod = strawberry.field(description="The billing period it would end with.")
    warnings: list[CancellationWarning] = strawberry.field(
        description="What its loss would break; empty when nothing."
    )

    @classmethod
    def of(cls, terms: cancellation.CancellationTerms, *, now: dt.datetime) -> CancellationPreview:
        return cls(
            id=ids.global_id("CancellationPreview", terms.subscription.id),
            active_add_on=ActiveAddOn.of(terms.subscription, now=now),
            available_until=terms.available_until,
            ends_at=terms.ends_at,
            period=BillingPeriod.of(terms.period),
            warnings=[CancellationWarning.of(warning) for warning in terms.warnings],
        )


async def _my_plan_after_write(root: CancelAddOnSuccess | UndoCancellationSuccess, info: Info) -> MyPlan:
    # Loaded only when asked for; the mutation dropped any read of the plan from before its write.
    return MyPlan.of(await info.context.tenant_plan(root.tenant, root.at))


MY_PLAN_AFTER = "My plan as the change left it: its add-ons, limits and monthly total."


@strawberry.type(
    description="The add-on is cancelled: it shows its disable date and the admins are e-mailed."
)
class CancelAddOnSuccess:
    active_add_on: ActiveAddOn = strawberry.field(description="The add-on, now CANCELLING.")
    available_until: dt.date = strawberry.field(description="The last day the add-on is available.")
    ends_at: dt.datetime = strawberry.field(
        description="When it stops counting: the end of the current billing period."
    )
    warnings: list[CancellationWarning] = strawberry.field(
        description="What its loss will break; empty when nothing."
    )
    tenant: strawberry.Private[Tenant]
    at: strawberry.Private[dt.datetime]
    my_plan: MyPlan = strawberry.field(resolver=_my_plan_after_write, description=MY_PLAN_AFTER)


@strawberry.type(description="The cancellation is withdrawn: the add-on continues and is billed as before.")
class UndoCancellationSuccess:
    active_add_on: ActiveAddOn = strawberry.field(description="The add-on, ACTIVE again.")
    tenant: strawberry.Private[Tenant]
    at: strawberry.Private[dt.datetime]
    my_plan: MyPlan = strawberry.field(resolver=_my_plan_after_write, description=MY_PLAN_AFTER)


@strawberry.type(description="The settings are saved; secrets are encrypted and never returned.")
class ConfigureIntegrationSuccess:
    active_add_on: ActiveAddOn = strawberry.field(
        description="The add-on, CONFIGURED, with its settings (secrets masked)."
    )


# Every failure the services behind these fields can raise, by field (configuring needs no plan).
_ACCESS = NotAdminError | NotEligibleError | NoActivePlanError
_CANCELLABLE = NotFoundError | AddOnAlreadyCancelledError | AddOnEndedError | AddOnNotCancellableError

CancellationPreviewResult = Annotated[
    CancellationPreview | _ACCESS | _CANCELLABLE,
    strawberry.union("CancellationPreviewResult", description="The preview, or why there is none."),
]
CancelAddOnResult = Annotated[
    CancelAddOnSuccess | _ACCESS | _CANCELLABLE,
    strawberry.union("CancelAddOnResult", description="The cancellation, or why nothing was cancelled."),
]
UndoCancellationResult = Annotated[
    UndoCancellationSuccess | _ACCESS | NotFoundError | AddOnNotCancelledError | AddOnEndedError,
    strawberry.union("UndoCancellationResult", description="The add-on continuing, or why nothing changed."),
]
ConfigureIntegrationResult = Annotated[
    ConfigureIntegrationSuccess
    | NotAdminError
    | NotEligibleError
    | NotFoundError
    | NotConfigurableError
    | AddOnEndedError
    | InvalidSettingsError,
    strawberry.union(
        "ConfigureIntegrationResult", description="The configured add-on, or why nothing was saved."
    ),
]


# --- Root fields -------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(
        name="cancellationPreview",
        extensions=allow(scopes.TENANT_READ),
        description="Until when the add-on would stay available if cancelled now, and what its loss would "
        "break. Changes nothing.",
    )
    async def cancellation_preview(
        self, info: Info, active_add_on_id: ActiveAddOnId
    ) -> CancellationPreviewResult | None:
        now = info.context.clock.now()
        terms = await cancellation.preview(
            await info.context.require_principal(),
            subscription_id=subscription_key(active_add_on_id),
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
        )
        return CancellationPreview.of(terms, now=now)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="cancelAddOn",
        extensions=allow(),
        description="Cancel an add-on at the end of the current billing period; it counts until then, and "
        "undoCancellation withdraws the cancellation before that.",
    )
    async def cancel_add_on(self, info: Info, active_add_on_id: ActiveAddOnId) -> CancelAddOnResult | None:
        now = info.context.clock.now()
        principal = await info.context.require_principal()
        terms = await cancellation.cancel(
            principal,
            subscription_id=subscription_key(active_add_on_id),
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            plan_cache=info.context.services.plan_cache,
            broadcaster=info.context.services.broadcaster,
        )
        info.context.forget_tenant_plan(principal.tenant)
        preview = CancellationPreview.of(terms, now=now)
        return CancelAddOnSuccess(
            active_add_on=preview.active_add_on,
            available_until=preview.available_until,
            ends_at=preview.ends_at,
            warnings=preview.warnings,
            tenant=principal.tenant,
            at=now,
        )

    @strawberry.mutation(
        name="undoCancellation",
        extensions=allow(),
        description="Withdraw the cancellation of an add-on before it ends: it continues as before.",
    )
    async def undo_cancellation(
        self, info: Info, active_add_on_id: ActiveAddOnId
    ) -> UndoCancellationResult | None:
        now = info.context.clock.now()
        principal = await info.context.require_principal()
        subscription = await cancellation.undo(
            principal,
            subscription_id=subscription_key(active_add_on_id),
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            plan_cache=info.context.services.plan_cache,
            broadcaster=info.context.services.broadcaster,
        )
        info.context.forget_tenant_plan(principal.tenant)
        return UndoCancellationSuccess(
            active_add_on=ActiveAddOn.of(subscription, now=now), tenant=principal.tenant, at=now
        )

    @strawberry.mutation(
        name="configureIntegration",
        extensions=allow(),
        description="Set an integration add-on's declared settings, all at once; secrets are encrypted and "
        "never returned, and a secret left out keeps its stored value.",
    )
    async def configure_integration(
        self,
        info: Info,
        active_add_on_id: ActiveAddOnId,
        settings: Annotated[
            JSON,
            strawberry.argument(
                description='The settings as a JSON object of name: value, e.g. {"shop_url": "https://..."}.'
            ),
        ],
    ) -> ConfigureIntegrationResult | None:
        now = info.context.clock.now()
        subscription = await integrations.configure_integration(
            await info.context.require_principal(),
            subscription_id=subscription_key(active_add_on_id),
            settings=settings,
            box=box_from_settings(info.context.settings),
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            plan_cache=info.context.services.plan_cache,
            broadcaster=info.context.services.broadcaster,
            allow_private_hosts=info.context.settings.integration_allow_private_hosts,
        )
        return ConfigureIntegrationSuccess(active_add_on=ActiveAddOn.of(subscription, now=now))
