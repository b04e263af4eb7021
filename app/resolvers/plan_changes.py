"""Changing the plan: ``planChangePreview``, ``changePlan``, ``cancelPlanChange`` (issue 14). The rules are
in ``app.services.plan_changes``; ``MyPlan.pendingPlanChange`` shows a scheduled downgrade."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from app import money
from app.auth import scopes
from app.i18n import DEFAULT_LOCALE, Locale, localized
from app.models import billing
from app.models.enums import PlanChangeKind, PlanChangeSource, PlanChangeStatus
from app.models.tenancy import Tenant, User
from app.resolvers import ids
from app.resolvers.account import MyPlan
from app.resolvers.common import Money, described_enum
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
from app.resolvers.permissions import allow
from app.resolvers.store import InvoicePreview
from app.services import plan_changes
from app.services.errors import DomainError

PlanChangeKindEnum = described_enum(
    PlanChangeKind,
    "PlanChangeKind",
    "Whether a change of plan applies at once or at the end of the billing period.",
    {
        PlanChangeKind.UPGRADE: "The new plan costs at least as much per month: it applies at once, and the "
        "difference for the rest of the period is on its invoice.",
        PlanChangeKind.DOWNGRADE: "The new plan costs less per month: it applies at the end of the billing "
        "period.",
    },
)
PlanChangeStatusEnum = described_enum(
    PlanChangeStatus,
    "PlanChangeStatus",
    "Where a change of plan stands.",
    {
        PlanChangeStatus.SCHEDULED: "A downgrade waiting for the end of the billing period; it can be "
        "cancelled.",
        PlanChangeStatus.APPLIED: "The new plan is in force.",
        PlanChangeStatus.CANCELLED: "A scheduled downgrade withdrawn before it took effect.",
    },
)
PlanChangeSourceEnum = described_enum(
    PlanChangeSource,
    "PlanChangeSource",
    "Who changed the plan.",
    {
        PlanChangeSource.TENANT: "An administrator of the environment (`changePlan`).",
        PlanChangeSource.OPERATOR: "The vendor, when provisioning the environment.",
    },
)
Conflict = plan_changes.ConflictKind
PlanChangeConflictKindEnum = described_enum(
    Conflict,
    "PlanChangeConflictKind",
    "What in the environment does not fit the new plan.",
    {
        Conflict.CREDITS: "Credits in use exceed the new credit limit.",
        Conflict.USERS: "User accounts exceed the new user limit.",
        Conflict.INTEGRATIONS: "Integrations in use exceed the new integration limit.",
        Conflict.ADD_ON: "An active add-on is not sold with the new plan: cancel it first.",
    },
)

PlanCode = Annotated[
    str,
    strawberry.argument(
        description='The code of the plan to change to, as `plans` lists it ("storefront-l").'
    ),
]


# --- Types -------------------------------------------------------------------------------------


@strawberry.type(description="A plan as a change of plan names it: its code, name and monthly price then.")
class PlanChangePlan:
    code: str = strawberry.field(description="The plan's code.")
    name: str = strawberry.field(
        description="The plan's name: in the caller's language in a preview; as named then in a change."
    )
    monthly_price: Money = strawberry.field(description="Its monthly price in the environment's currency.")


@strawberry.type(description="A change of the environment's plan: applied, scheduled or cancelled.")
class PlanChange:
    id: strawberry.ID = strawberry.field(description="The change's global id.")
    kind: PlanChangeKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="Upgrade (at once) or downgrade (at the end of the period)."
    )
    status: PlanChangeStatusEnum = strawberry.field(  # type: ignore[valid-type]
        description="Where it stands."
    )
    source: PlanChangeSourceEnum = strawberry.field(  # type: ignore[valid-type]
        description="Who made it."
    )
    from_plan: PlanChangePlan = strawberry.field(description="The plan before the change.")
    to_plan: PlanChangePlan = strawberry.field(description="The plan after the change.")
    change_fee: Money = strawberry.field(
        description="The one-off fee of the change, on the invoice of the period it takes effect in; zero "
        "if none."
    )
    requested_at: dt.datetime = strawberry.field(description="When it was asked for.")
    effective_at: dt.datetime = strawberry.field(
        description="When the new plan is in force: at once for an upgrade, the end of the period for a "
        "downgrade."
    )
    applied_at: dt.datetime | None = strawberry.field(description="When it was applied; null until then.")
    cancelled_at: dt.datetime | None = strawberry.field(
        description="When it was cancelled; null if it was not."
    )
    user_id: strawberry.Private[str | None]

    @strawberry.field(description="The e-mail address of the administrator who asked; null for the vendor's.")
    async def requested_by(self) -> str | None:
        if self.user_id is None:
            return None
        user = await User.get_or_none(id=self.user_id)
        return user.email if user is not None else None

    @classmethod
    def of(cls, change: billing.PlanChange) -> PlanChange:
        currency = change.currency
        return cls(
            id=ids.global_id("PlanChange", change.id),
            kind=change.kind,
            status=change.status,
            source=change.source,
            from_plan=PlanChangePlan(
                code=change.from_code,
                name=change.from_name,
                monthly_price=Money.of(money.Money.of(change.from_unit_price, currency)),
            ),
            to_plan=PlanChangePlan(
                code=change.to_code,
                name=change.to_name,
                monthly_price=Money.of(money.Money.of(change.to_unit_price, currency)),
            ),
            change_fee=Money.of(money.Money.of(change.change_fee, currency)),
            requested_at=change.requested_at,
            effective_at=change.effective_at,
            applied_at=change.applied_at,
            cancelled_at=change.cancelled_at,
            user_id=str(change.user_id) if change.user_id is not None else None,
        )


async def pending_of(change_id: object | None) -> PlanChange | None:
    """``MyPlan.pendingPlanChange``: the scheduled change, if any (one query, only when there is one)."""
    if change_id is None:
        return None
    change = await billing.PlanChange.get_or_none(id=change_id, status=PlanChangeStatus.SCHEDULED)
    return PlanChange.of(change) if change is not None else None


@strawberry.type(description="Something in the environment that does not fit the new plan.")
class PlanChangeConflict:
    kind: PlanChangeConflictKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="What does not fit: switch on this, not on the message."
    )
    used: int | None = strawberry.field(
        description="What is in use (credits, users, integrations); null for add-ons."
    )
    limit: int | None = strawberry.field(
        description="The limit once the change takes effect (the new plan plus the add-ons that still count "
        "then); null for add-ons."
    )
    add_on_code: str | None = strawberry.field(
        description="The add-on not sold with the new plan; null otherwise."
    )
    message: str = strawberry.field(description="The conflict and what to do, for a person.")

    @classmethod
    def of(cls, conflict: plan_changes.Conflict, locale: Locale | None = None) -> PlanChangeConflict:
        return cls(
            kind=conflict.kind,
            used=conflict.used,
            limit=conflict.limit,
            add_on_code=conflict.add_on_code,
            message=conflict.message.render(locale),
        )


@strawberry.type(
    description="What changing to the plan now would mean, shown before confirming. Changes nothing."
)
class PlanChangePreview:
    kind: PlanChangeKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="Upgrade (applies at once) or downgrade (at the end of the billing period)."
    )
    current_plan: PlanChangePlan = strawberry.field(description="The plan in force now.")
    new_plan: PlanChangePlan = strawberry.field(description="The plan asked for.")
    effective_at: dt.datetime = strawberry.field(description="When the new plan would be in force.")
    change_fee: Money = strawberry.field(
        description="The one-off fee of changing to the new plan; zero if none."
    )
    conflicts: list[PlanChangeConflict] = strawberry.field(
        description="What would not fit the new plan (the change is refused while any remains); empty when "
        "it fits."
    )
    invoice: InvoicePreview = strawberry.field(
        description="The invoice with the change, line by line: the current period's for an upgrade, the "
        "period it takes effect in for a downgrade."
    )
    current_monthly_total: Money = strawberry.field(
        description="The plan plus the monthly add-ons that continue, per month, now."
    )
    new_monthly_total: Money = strawberry.field(description="The same with the new plan.")

    @classmethod
    def of(cls, terms: plan_changes.PlanChangeTerms, locale: Locale | None = None) -> PlanChangePreview:
        return cls(
            kind=terms.kind,
            current_plan=PlanChangePlan(
                code=terms.current_plan.code,
                name=localized(terms.current_plan.names, locale or DEFAULT_LOCALE, terms.current_plan.name),
                monthly_price=Money.of(terms.current_price),
            ),
            new_plan=PlanChangePlan(
                code=terms.new_plan.code,
                name=localized(terms.new_plan.names, locale or DEFAULT_LOCALE, terms.new_plan.name),
                monthly_price=Money.of(terms.new_price),
            ),
            effective_at=terms.effective_at,
            change_fee=Money.of(terms.change_fee),
            conflicts=[PlanChangeConflict.of(conflict, locale) for conflict in terms.conflicts],
            invoice=InvoicePreview.of(terms.invoice, terms.view.tenant.id),
            current_monthly_total=Money.of(terms.current_monthly_total),
            new_monthly_total=Money.of(terms.new_monthly_total),
        )


# --- Errors ------------------------------------------------------------------------------------


@strawberry.type(description="The environment is already on this plan.")
class PlanUnchangedError(Error):
    pass


@strawberry.type(description="A plan change is already scheduled: cancel it before asking for another.")
class PlanChangePendingError(Error):
    pending_plan_change: PlanChange | None = strawberry.field(description="The scheduled change.")

    @classmethod
    def from_domain_error(cls, error: DomainError, locale: Locale | None) -> PlanChangePendingError:
        change = error.details.get("change")
        return cls(
            code=error.code,
            message=error.localized(locale),
            field=error.field,
            pending_plan_change=PlanChange.of(change) if change is not None else None,
        )


@strawberry.type(description="The environment would not fit the new plan: `conflicts` lists each reason.")
class PlanChangeConflictsError(Error):
    conflicts: list[PlanChangeConflict] = strawberry.field(description="Each conflict, with what to do.")

    @classmethod
    def from_domain_error(cls, error: DomainError, locale: Locale | None) -> PlanChangeConflictsError:
        return cls(
            code=error.code,
            message=error.localized(locale),
            field=error.field,
            conflicts=[PlanChangeConflict.of(conflict, locale) for conflict in error.details["conflicts"]],
        )


@strawberry.type(description="There is no scheduled plan change to cancel.")
class NoPlanChangePendingError(Error):
    pass


@strawberry.type(description="The plan is no longer sold: no subscription may move to it.")
class PlanUnavailableError(Error):
    pass


@strawberry.type(description="The plan has no price in the environment's currency.")
class CurrencyNotPricedError(Error):
    priced_currencies: list[str] = strawberry.field(description="The currencies the plan is priced in.")


register_errors(
    {
        plan_changes.PlanUnchanged: PlanUnchangedError,
        plan_changes.PlanChangePending: PlanChangePendingError,
        plan_changes.PlanChangeConflicts: PlanChangeConflictsError,
        plan_changes.NoPlanChangePending: NoPlanChangePendingError,
        plan_changes.PlanNotSold: PlanUnavailableError,
        plan_changes.PlanNotPriced: CurrencyNotPricedError,
    }
)


# --- Payloads ----------------------------------------------------------------------------------


async def _my_plan_after_write(root: ChangePlanSuccess | CancelPlanChangeSuccess, info: Info) -> MyPlan:
    return MyPlan.of(await info.context.tenant_plan(root.tenant, root.at))


MY_PLAN_AFTER = "My plan as the change left it: its plan, limits, pending change and monthly total."


@strawberry.type(
    description="The plan is changed (upgrade) or the change is scheduled (downgrade); admins are e-mailed."
)
class ChangePlanSuccess:
    plan_change: PlanChange = strawberry.field(description="The change, APPLIED or SCHEDULED.")
    replayed: bool = strawberry.field(
        description="True when this answers a retry with the same idempotency key: nothing changed again."
    )
    tenant: strawberry.Private[Tenant]
    at: strawberry.Private[dt.datetime]
    my_plan: MyPlan = strawberry.field(resolver=_my_plan_after_write, description=MY_PLAN_AFTER)


@strawberry.type(description="The scheduled change is withdrawn: the current plan continues.")
class CancelPlanChangeSuccess:
    plan_change: PlanChange = strawberry.field(description="The change, now CANCELLED.")
    tenant: strawberry.Private[Tenant]
    at: strawberry.Private[dt.datetime]
    my_plan: MyPlan = strawberry.field(resolver=_my_plan_after_write, description=MY_PLAN_AFTER)


_ACCESS = NotAdminError | NotEligibleError | NoActivePlanError
_TARGET = (
    NotFoundError
    | PlanUnavailableError
    | CurrencyNotPricedError
    | PlanUnchangedError
    | PlanChangePendingError
)

PlanChangePreviewResult = Annotated[
    PlanChangePreview | _ACCESS | _TARGET,
    strawberry.union("PlanChangePreviewResult", description="The preview, or why there is none."),
]
ChangePlanResult = Annotated[
    ChangePlanSuccess
    | _ACCESS
    | _TARGET
    | PlanChangeConflictsError
    | InvalidInputError
    | IdempotencyKeyReusedError,
    strawberry.union("ChangePlanResult", description="The change, or why the plan did not change."),
]
CancelPlanChangeResult = Annotated[
    CancelPlanChangeSuccess | _ACCESS | NoPlanChangePendingError | InvalidInputError,
    strawberry.union("CancelPlanChangeResult", description="The withdrawn change, or why nothing changed."),
]


# --- Root fields -------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(
        name="planChangePreview",
        extensions=allow(scopes.TENANT_READ),
        description="What changing to another plan now would mean: upgrade or downgrade, when, the change "
        "fee, what would not fit, the invoice line by line and the new monthly total. Changes nothing. "
        "Admins of eligible environments only.",
    )
    async def plan_change_preview(self, info: Info, plan_code: PlanCode) -> PlanChangePreviewResult | None:
        terms = await plan_changes.preview(
            await info.context.require_principal(),
            plan_code=plan_code,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return PlanChangePreview.of(terms, await info.context.locale())


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="changePlan",
        extensions=allow(),
        description="Change the environment's plan: an upgrade applies at once (the difference for the rest "
        "of the period is on its invoice), a downgrade at the end of the billing period (cancelPlanChange "
        "withdraws it until then). The same idempotency key returns the same change.",
    )
    async def change_plan(
        self,
        info: Info,
        plan_code: PlanCode,
        idempotency_key: Annotated[
            str,
            strawberry.argument(
                description="A key of the client's choosing for this change: a retry with the same key "
                "returns the same change and changes nothing more."
            ),
        ],
    ) -> ChangePlanResult | None:
        now = info.context.clock.now()
        principal = await info.context.require_principal()
        outcome = await plan_changes.change_plan(
            principal,
            plan_code=plan_code,
            idempotency_key=idempotency_key,
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            plan_cache=info.context.services.plan_cache,
            broadcaster=info.context.services.broadcaster,
        )
        info.context.forget_tenant_plan(principal.tenant)
        return ChangePlanSuccess(
            plan_change=PlanChange.of(outcome.change),
            replayed=outcome.replayed,
            tenant=principal.tenant,
            at=now,
        )

    @strawberry.mutation(
        name="cancelPlanChange",
        extensions=allow(),
        description="Withdraw the downgrade scheduled for the end of the billing period: the current plan "
        "continues.",
    )
    async def cancel_plan_change(
        self,
        info: Info,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="A key of the client's choosing: a retry with the same key returns the same "
                "withdrawn change instead of NO_PLAN_CHANGE_PENDING."
            ),
        ] = None,
    ) -> CancelPlanChangeResult | None:
        now = info.context.clock.now()
        principal = await info.context.require_principal()
        change = await plan_changes.cancel_plan_change(
            principal,
            idempotency_key=idempotency_key,
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            plan_cache=info.context.services.plan_cache,
            broadcaster=info.context.services.broadcaster,
        )
        info.context.forget_tenant_plan(principal.tenant)
        return CancelPlanChangeSuccess(plan_change=PlanChange.of(change), tenant=principal.tenant, at=now)
