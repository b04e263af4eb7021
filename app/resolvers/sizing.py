"""Plan sizing: ``planRecommendation`` (issue 14). The rules are in ``app.services.plan_sizing``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import strawberry

from app.auth import scopes
from app.auth.principal import Principal
from app.resolvers.catalog import AddOn, Plan
from app.resolvers.common import Money
from app.resolvers.context import Info
from app.resolvers.errors import InvalidInputError
from app.resolvers.scalars import Long
from app.resolvers.store import UnsupportedCurrencyError
from app.services import plan_sizing

# The callers whose tenant's usage fills in missing counts: those who may read ``creditUsage``.
_USAGE_READERS = (scopes.TENANT_READ, scopes.USAGE_REPORT, scopes.QUOTA_CHECK)


@strawberry.input(
    description="What a store holds, counted as credits: each left out (or null) is taken from the "
    "environment's latest usage report when signed in, and counts 0 otherwise."
)
class PlanSizingCounts:
    variants: int | None = strawberry.field(default=None, description="Product variants, 0 to 1,000,000,000.")
    customers: int | None = strawberry.field(default=None, description="Customers, 0 to 1,000,000,000.")
    contacts: int | None = strawberry.field(default=None, description="Contacts, 0 to 1,000,000,000.")
    sales_reps: int | None = strawberry.field(default=None, description="Sales reps, 0 to 1,000,000,000.")
    admin_users: int | None = strawberry.field(
        default=None, description="Admin users of the back office, 0 to 1,000,000,000."
    )


@strawberry.type(description="One count a sizing used, and where it came from.")
class SizingCount:
    value: Long = strawberry.field(description="The count.")
    from_report: bool = strawberry.field(
        description="Taken from the environment's latest usage report (it was not sent)."
    )


@strawberry.type(description="The counts a sizing used: those sent, the others from the usage report.")
class SizingCountsUsed:
    variants: SizingCount = strawberry.field(description="Product variants.")
    customers: SizingCount = strawberry.field(description="Customers.")
    contacts: SizingCount = strawberry.field(description="Contacts.")
    sales_reps: SizingCount = strawberry.field(description="Sales reps.")
    admin_users: SizingCount = strawberry.field(description="Admin users.")
    report_measured_at: dt.datetime | None = strawberry.field(
        description="When the usage report the other counts come from was measured; null: none used."
    )


@strawberry.type(description="How a plan measures up to the credits needed with the margin.")
class PlanFit:
    plan: Plan = strawberry.field(description="The plan, as the catalog lists it.")
    fits: bool = strawberry.field(description="Its credits cover the credits needed with the margin.")
    headroom: Long = strawberry.field(
        description="Its credits minus the credits needed with the margin; negative: how many it lacks."
    )
    headroom_percent: Decimal | None = strawberry.field(
        description="The headroom as a percentage of the plan's credits, to one decimal (half-up); null "
        "for a plan of no credits."
    )
    monthly_price: Money = strawberry.field(description="Its monthly price in the sizing's currency.")


@strawberry.type(description="Units of a credit pack in a recommendation.")
class CreditPackQuantity:
    add_on: AddOn = strawberry.field(description="The credit pack, as the catalog lists it.")
    quantity: int = strawberry.field(description="Units to buy.")
    monthly_price: Money = strawberry.field(description="Unit price x quantity, per month.")


@strawberry.type(description="The plan to take, with the credit packs it needs when no plan is enough.")
class PlanChoice:
    plan: Plan = strawberry.field(description="The plan recommended.")
    credit_packs: list[CreditPackQuantity] = strawberry.field(
        description="Credit packs to add to it; empty when the plan is enough."
    )
    credits: Long = strawberry.field(description="The credits of the plan and the packs together.")
    monthly_price: Money = strawberry.field(description="The plan's and the packs' monthly prices together.")
    covers_need: bool = strawberry.field(
        description="The choice covers the credits needed with the margin; false: even the largest plan "
        "with every pack at its maximum falls short (contact sales)."
    )


@strawberry.type(description="Which plan a store of this size needs, and how every plan measures up.")
class PlanRecommendation:
    counts_used: SizingCountsUsed = strawberry.field(description="The counts sized.")
    credits_needed: Long = strawberry.field(
        description="Variants + customers + contacts + sales reps + admin users."
    )
    credits_with_margin: Long = strawberry.field(
        description="The credits needed plus the margin, rounded up to a whole credit."
    )
    margin_percent: int = strawberry.field(description="The margin applied, in percent.")
    currency: str = strawberry.field(description="The currency of every price (ISO 4217).")
    plans: list[PlanFit] = strawberry.field(description="Every candidate plan, in catalog order.")
    recommendation: PlanChoice | None = strawberry.field(
        description="The cheapest plan that fits; when none does, the largest plus the cheapest credit "
        "packs covering the rest. Null only when no plan is sold in the currency."
    )

    @classmethod
    def of(cls, sizing: plan_sizing.Sizing) -> PlanRecommendation:
        def count(name: str) -> SizingCount:
            return SizingCount(
                value=Long(getattr(sizing.counts, name)), from_report=name in sizing.from_report
            )

        choice = sizing.recommendation
        return cls(
            counts_used=SizingCountsUsed(
                variants=count("variants"),
                customers=count("customers"),
                contacts=count("contacts"),
                sales_reps=count("sales_reps"),
                admin_users=count("admin_users"),
                report_measured_at=sizing.report_measured_at if sizing.from_report else None,
            ),
            credits_needed=Long(sizing.credits_needed),
            credits_with_margin=Long(sizing.credits_with_margin),
            margin_percent=sizing.margin_percent,
            currency=sizing.currency,
            plans=[
                PlanFit(
                    plan=Plan.of(fit.plan.model),
                    fits=fit.fits,
                    headroom=Long(fit.headroom),
                    headroom_percent=fit.headroom_percent,
                    monthly_price=Money.of(fit.plan.monthly_price),
                )
                for fit in sizing.plans
            ],
            recommendation=None
            if choice is None
            else PlanChoice(
                plan=Plan.of(choice.plan.model),
                credit_packs=[
                    CreditPackQuantity(
                        add_on=AddOn.of(line.pack.model),
                        quantity=line.quantity,
                        monthly_price=Money.of(line.price),
                    )
                    for line in choice.packs
                ],
                credits=Long(choice.credits),
                monthly_price=Money.of(choice.monthly_price),
                covers_need=choice.covers_need,
            ),
        )


PlanRecommendationResult = Annotated[
    PlanRecommendation | InvalidInputError | UnsupportedCurrencyError,
    strawberry.union(
        "PlanRecommendationResult", description="The sizing and the plan recommended, or why not."
    ),
]


def reads_usage(principal: Principal | None) -> bool:
    return principal is not None and (
        principal.is_user or any(principal.has_scope(scope) for scope in _USAGE_READERS)
    )


@strawberry.type
class Query:
    @strawberry.field(
        name="planRecommendation",
        description="Which plan a store of this size needs: the credits it needs with and without a "
        "margin, how every plan measures up, and the cheapest plan that fits (or the largest with credit "
        "packs). Signed in (a user, or an API key that may read `creditUsage`), counts left out come from "
        "the environment's latest usage report and prices are in its currency; anonymous callers send "
        "`counts`.",
    )
    async def plan_recommendation(
        self,
        info: Info,
        counts: Annotated[
            PlanSizingCounts | None,
            strawberry.argument(description="The counts to size; required without credentials."),
        ] = None,
        margin_percent: Annotated[
            int, strawberry.argument(description="Room to grow, in percent (0 to 1000).")
        ] = plan_sizing.DEFAULT_MARGIN_PERCENT,
        currency: Annotated[
            str | None,
            strawberry.argument(
                description='An ISO 4217 code ("BRL"); by default the caller\'s environment currency, '
                "else the configured default (EUR) when plans are sold in it."
            ),
        ] = None,
        plan_codes: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Only these plans, by code (a product line); by default every plan."
            ),
        ] = None,
    ) -> PlanRecommendationResult:
        principal = await info.context.optional_principal()
        signed_in = principal if reads_usage(principal) else None
        sent = None if counts is None else {name: getattr(counts, name) for name in plan_sizing.COUNT_NAMES}
        sizing = await plan_sizing.plan_recommendation(
            sent,
            tenant_id=signed_in.tenant.id if signed_in else None,
            tenant_currency=signed_in.tenant.currency if signed_in else None,
            margin_percent=margin_percent,
            currency=currency,
            plan_codes=plan_codes,
            default_currency=info.context.settings.default_currency,
        )
        return PlanRecommendation.of(sizing)
