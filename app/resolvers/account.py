"""The caller and its subscription: ``viewer`` and ``myPlan``."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from app import money
from app.auth import scopes
from app.auth.principal import Principal
from app.models import billing
from app.models.enums import AddOnStatus, Cadence, ConfigurationStatus, Role
from app.resolvers.catalog import AddOn, CadenceEnum, Plan
from app.resolvers.common import BillingPeriod, Limits, Money
from app.resolvers.context import Info
from app.resolvers.errors import NoActivePlanError, NotAdminError, NotEligibleError
from app.resolvers.permissions import IsAuthenticated, allow
from app.services import integrations, subscriptions
from app.services.access import is_store_eligible

RoleEnum = strawberry.enum(Role, name="Role")
AddOnStatusEnum = strawberry.enum(AddOnStatus, name="AddOnStatus")
ConfigurationStatusEnum = strawberry.enum(ConfigurationStatus, name="ConfigurationStatus")
IntegrationSettingKindEnum = strawberry.enum(integrations.SettingKind, name="IntegrationSettingKind")


@strawberry.enum
class ViewerKind(StrEnum):
    USER = "USER"
    API_KEY = "API_KEY"


@strawberry.type
class Tenant:
    id: strawberry.ID
    slug: str
    name: str
    currency: str
    created_at: dt.datetime
    billing_anchor_day: int
    store_eligible: bool = strawberry.field(description="Whether the add-on store and My plan are open.")


@strawberry.type
class UserAccount:
    id: strawberry.ID
    email: str
    name: str
    role: RoleEnum  # type: ignore[valid-type]


@strawberry.type(description="Who is calling: a user of the back office or an API key.")
class Viewer:
    kind: ViewerKind
    tenant: Tenant
    user: UserAccount | None
    role: RoleEnum | None  # type: ignore[valid-type]
    scopes: list[str] = strawberry.field(description="An API key's scopes; empty for users.")
    key_prefix: str | None = strawberry.field(description="The public prefix of the API key in use.")

    @classmethod
    def of(cls, principal: Principal, *, eligible_since: dt.date) -> Viewer:
        tenant = principal.tenant
        user = principal.user
        return cls(
            kind=ViewerKind.USER if user else ViewerKind.API_KEY,
            tenant=Tenant(
                id=strawberry.ID(str(tenant.id)),
                slug=tenant.slug,
                name=tenant.name,
                currency=tenant.currency,
                created_at=tenant.created_at,
                billing_anchor_day=tenant.billing_anchor_day,
                store_eligible=is_store_eligible(tenant.created_at, eligible_since),
            ),
            user=UserAccount(id=strawberry.ID(str(user.id)), email=user.email, name=user.name, role=user.role)
            if user
            else None,
            role=user.role if user else None,
            scopes=sorted(principal.scopes),
            key_prefix=principal.api_key.prefix if principal.api_key else None,
        )


@strawberry.type(description="A setting of an integration add-on. Secret values are never returned.")
class IntegrationSetting:
    name: str
    label: str
    kind: IntegrationSettingKindEnum  # type: ignore[valid-type]
    secret: bool
    required: bool
    is_set: bool
    value: JSON | None = strawberry.field(description="Null when unset; a secret that is set shows a mask.")

    @classmethod
    def of(cls, view: integrations.SettingView) -> IntegrationSetting:
        return cls(
            name=view.name,
            label=view.label,
            kind=view.kind,
            secret=view.secret,
            required=view.required,
            is_set=view.is_set,
            value=view.value,
        )


@strawberry.type(description="An add-on of the subscription, as shown in My plan.")
class ActiveAddOn:
    id: strawberry.ID
    add_on: AddOn
    name: str
    quantity: int
    cadence: CadenceEnum  # type: ignore[valid-type]
    unit_price: Money
    monthly_price: Money = strawberry.field(description="Unit price x quantity; zero for one-off items.")
    contracted_at: dt.datetime
    status: AddOnStatusEnum  # type: ignore[valid-type]
    ends_at: dt.datetime | None = strawberry.field(description="When it stops counting (after cancellation).")
    available_until: dt.date | None = strawberry.field(description="The last day it is available.")
    configuration_status: ConfigurationStatusEnum  # type: ignore[valid-type]
    configuration: list[IntegrationSetting] = strawberry.field(
        default_factory=list, description="The integration's declared settings, secrets masked."
    )

    @classmethod
    def of(cls, subscription: billing.AddOnSubscription, *, now: dt.datetime) -> ActiveAddOn:
        unit = money.Money.of(subscription.unit_price, subscription.currency)
        monthly = (
            unit.times(subscription.quantity)
            if subscription.add_on.cadence == Cadence.MONTHLY
            else money.Money.zero(subscription.currency)
        )
        ends_at = subscription.ends_at
        return cls(
            id=strawberry.ID(str(subscription.id)),
            add_on=AddOn.of(subscription.add_on),
            name=subscription.add_on.name,
            quantity=subscription.quantity,
            cadence=subscription.add_on.cadence,
            unit_price=Money.of(unit),
            monthly_price=Money.of(monthly),
            contracted_at=subscription.contracted_at,
            status=subscription.status_at(now),
            ends_at=ends_at,
            available_until=(ends_at - dt.timedelta(days=1)).date() if ends_at else None,
            configuration_status=subscription.configuration_status,
            configuration=[
                IntegrationSetting.of(view)
                for view in integrations.masked_settings(subscription.add_on, subscription.configuration)
            ],
        )


@strawberry.type
class MyPlan:
    plan: Plan
    started_at: dt.datetime
    current_period: BillingPeriod
    effective_limits: Limits = strawberry.field(
        description="Plan limits plus the active add-ons' increments."
    )
    features: list[str] = strawberry.field(description="The plan's features plus those of active add-ons.")
    add_ons: list[ActiveAddOn] = strawberry.field(description="Add-ons counting now (ACTIVE or CANCELLING).")
    monthly_total: Money = strawberry.field(description="Plan price plus the monthly add-ons.")

    @classmethod
    def of(cls, view: subscriptions.TenantPlan) -> MyPlan:
        plan = view.subscription.plan
        add_ons = [ActiveAddOn.of(subscription, now=view.at) for subscription in view.add_ons]
        total = money.price_in(plan.prices, view.tenant.currency)
        for add_on in add_ons:
            total += money.Money.of(add_on.monthly_price.amount, add_on.monthly_price.currency)
        return cls(
            plan=Plan.of(plan),
            started_at=view.subscription.started_at,
            current_period=BillingPeriod.of(view.period),
            effective_limits=Limits.of(view.effective_limits),
            features=view.features,
            add_ons=add_ons,
            monthly_total=Money.of(total),
        )


MyPlanResult = Annotated[
    MyPlan | NotAdminError | NotEligibleError | NoActivePlanError, strawberry.union("MyPlanResult")
]


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAuthenticated])
    async def viewer(self, info: Info) -> Viewer:
        principal = await info.context.require_principal()
        return Viewer.of(principal, eligible_since=info.context.settings.store_eligible_since)

    @strawberry.field(
        name="myPlan",
        extensions=allow(scopes.TENANT_READ),
        description="The plan, effective limits and add-ons. Admins of eligible environments only.",
    )
    async def my_plan(self, info: Info) -> MyPlanResult:
        view = await subscriptions.my_plan(
            await info.context.require_principal(),
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
            plans=info.context.tenant_plan,
        )
        return MyPlan.of(view)
