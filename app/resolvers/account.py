"""The caller and its subscription: ``viewer`` and ``myPlan``."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app import money
from app.auth import scopes
from app.auth.principal import Principal
from app.i18n import DEFAULT_LOCALE, Locale, locale_of, localized
from app.models import billing
from app.models.enums import AddOnStatus, Cadence, ConfigurationStatus, Role
from app.models.tenancy import Tenant as TenantModel
from app.models.tenancy import User
from app.resolvers import ids
from app.resolvers.catalog import AddOn, CadenceEnum, ConfigurationField, Plan
from app.resolvers.common import BillingPeriod, Limits, LocaleEnum, Money, described_enum
from app.resolvers.context import Info
from app.resolvers.errors import NoActivePlanError, NotAdminError, NotEligibleError
from app.resolvers.permissions import IsAuthenticated, allow
from app.services import cart, integrations, subscriptions
from app.services.access import is_store_eligible

if TYPE_CHECKING:
    from app.resolvers.plan_changes import PlanChange

RoleEnum = described_enum(
    Role,
    "Role",
    "What a user of the back office may do in the environment.",
    {
        Role.ADMIN: "Manages the environment: its plan, the add-on store, integrations and billing.",
        Role.MEMBER: "Uses the back office; may not buy, cancel or configure add-ons.",
    },
)
AddOnStatusEnum = described_enum(
    AddOnStatus,
    "AddOnStatus",
    "Where an add-on of the subscription stands.",
    {
        AddOnStatus.ACTIVE: "It counts and is billed.",
        AddOnStatus.CANCELLING: "Cancelled: it still counts until `endsAt`, then ends.",
        AddOnStatus.ENDED: "It no longer counts and can no longer change.",
    },
)
ConfigurationStatusEnum = described_enum(
    ConfigurationStatus,
    "ConfigurationStatus",
    "Whether an add-on's settings are configured.",
    {
        ConfigurationStatus.NOT_REQUIRED: "The add-on has no settings to configure.",
        ConfigurationStatus.PENDING: "Its settings must be configured before it works.",
        ConfigurationStatus.CONFIGURED: "Its settings are configured.",
    },
)


class ViewerKind(StrEnum):
    USER = "USER"
    API_KEY = "API_KEY"


described_enum(
    ViewerKind,
    "ViewerKind",
    "What kind of credentials the caller used.",
    {
        ViewerKind.USER: "A user of the back office, signed in.",
        ViewerKind.API_KEY: "An API key, as a connector uses.",
    },
)


@strawberry.type(description="An environment: one company's back office, with its own plan and data.")
class Tenant:
    id: strawberry.ID = strawberry.field(description="The environment's global id.")
    slug: str = strawberry.field(description='The environment\'s short name ("acme").')
    name: str = strawberry.field(description="The company's name, for display.")
    currency: str = strawberry.field(description='The ISO 4217 code it is billed in ("EUR").')
    created_at: dt.datetime = strawberry.field(description="When the environment was created.")
    billing_anchor_day: int = strawberry.field(
        description="The day of the month its billing periods start on, 1 to 31 (in a shorter month, "
        "its last day)."
    )
    store_eligible: bool = strawberry.field(description="Whether the add-on store and My plan are open.")
    locale: LocaleEnum = strawberry.field(  # type: ignore[valid-type]
        description="The environment's default language: what its users read when they saved no language "
        "(`setMyLocale`) and their client sends no `Accept-Language` we speak."
    )

    @classmethod
    def of(cls, tenant: TenantModel, *, eligible_since: dt.date) -> Tenant:
        return cls(
            id=ids.global_id("Tenant", tenant.id),
            slug=tenant.slug,
            name=tenant.name,
            currency=tenant.currency,
            created_at=tenant.created_at,
            billing_anchor_day=tenant.billing_anchor_day,
            store_eligible=is_store_eligible(tenant.created_at, eligible_since),
            locale=locale_of(tenant.locale) or DEFAULT_LOCALE,
        )


@strawberry.type(description="A user of the back office.")
class UserAccount:
    id: strawberry.ID = strawberry.field(description="The user's global id.")
    email: str = strawberry.field(description="The address the user signs in with.")
    name: str = strawberry.field(description="The user's name, for display.")
    role: RoleEnum = strawberry.field(description="What the user may do.")  # type: ignore[valid-type]
    locale: LocaleEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="The language the user saved (`setMyLocale`); null when none: the request's "
        "`Accept-Language`, else the environment's default, decides (`viewer.locale`)."
    )

    @classmethod
    def of(cls, user: User) -> UserAccount:
        return cls(
            id=ids.global_id("UserAccount", user.id),
            email=user.email,
            name=user.name,
            role=user.role,
            locale=locale_of(user.locale),
        )


@strawberry.type(description="Who is calling: a user of the back office or an API key.")
class Viewer:
    id: strawberry.ID = strawberry.field(
        description="The caller's global id: the same for the same user, or the same API key."
    )
    kind: ViewerKind = strawberry.field(description="Whether the caller is a user or an API key.")
    tenant: Tenant = strawberry.field(description="The environment the caller belongs to.")
    user: UserAccount | None = strawberry.field(description="The signed-in user; null for an API key.")
    role: RoleEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="The user's role; null for an API key."
    )
    scopes: list[str] = strawberry.field(description="An API key's scopes; empty for users.")
    key_prefix: str | None = strawberry.field(
        description="The public prefix of the API key in use; null for users."
    )

    @strawberry.field(
        description="The language this request is answered in: the user's saved language (`setMyLocale`), "
        "else the best match of the `Accept-Language` header, else the environment's default "
        "(`tenant.locale`), else EN."
    )
    async def locale(self, info: Info) -> LocaleEnum:  # type: ignore[valid-type]
        locale: Locale = await info.context.locale()
        return locale

    @classmethod
    def of(cls, principal: Principal, *, eligible_since: dt.date) -> Viewer:
        user, api_key = principal.user, principal.api_key
        caller = user or api_key
        assert caller is not None, "a principal is a user or an API key"
        kind = ViewerKind.USER if user else ViewerKind.API_KEY
        return cls(
            # A user and an API key with the same number are different callers: the kind is in the key.
            id=ids.global_id("Viewer", kind, caller.id),
            kind=kind,
            tenant=Tenant.of(principal.tenant, eligible_since=eligible_since),
            user=UserAccount.of(user) if user else None,
            role=user.role if user else None,
            scopes=sorted(principal.scopes),
            key_prefix=api_key.prefix if api_key else None,
        )


@strawberry.type(description="A setting of an integration add-on. Secret values are never returned.")
class IntegrationSetting(ConfigurationField):
    is_set: bool = strawberry.field(description="Whether a value is set.")
    value: JSON | None = strawberry.field(description="Null when unset; a secret that is set shows a mask.")

    @classmethod
    def of_view(cls, view: integrations.SettingView) -> IntegrationSetting:
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
    id: strawberry.ID = strawberry.field(
        description="The active add-on's global id, as cancellation and configuration take it (not the "
        "catalog add-on's: see `addOn.id`)."
    )
    add_on: AddOn = strawberry.field(description="The catalog add-on bought.")
    quantity: int = strawberry.field(description="The units held.")
    cadence: CadenceEnum = strawberry.field(  # type: ignore[valid-type]
        description="Whether it is billed monthly or was billed once."
    )
    unit_price: Money = strawberry.field(description="The price of one unit, as contracted.")
    monthly_price: Money = strawberry.field(description="Unit price x quantity; zero for one-off items.")
    contracted_at: dt.datetime = strawberry.field(description="When it was bought.")
    status: AddOnStatusEnum = strawberry.field(description="Where it stands now.")  # type: ignore[valid-type]
    ends_at: dt.datetime | None = strawberry.field(
        description="When it stops counting (after cancellation); null while it continues."
    )
    available_until: dt.date | None = strawberry.field(
        description="The last day it is available; null while it continues."
    )
    configuration_status: ConfigurationStatusEnum = strawberry.field(  # type: ignore[valid-type]
        description="Whether its settings are configured."
    )
    configuration: list[IntegrationSetting] = strawberry.field(
        default_factory=list, description="The integration's declared settings, secrets masked."
    )

    @strawberry.field(description="The add-on's name, for display, in the caller's language (else English).")
    async def name(self, info: Info) -> str:
        model = self.add_on.model
        return localized(model.names, await info.context.locale(), model.name)

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
            id=ids.global_id("ActiveAddOn", subscription.id),
            add_on=AddOn.of(subscription.add_on),
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
                IntegrationSetting.of_view(view)
                for view in integrations.masked_settings(subscription.add_on, subscription.configuration)
            ],
        )


@strawberry.type(description="The environment's plan, effective limits and add-ons, as shown in My plan.")
class MyPlan:
    id: strawberry.ID = strawberry.field(
        description="The environment's My plan id: the same across requests and after every change."
    )
    plan: Plan = strawberry.field(description="The plan subscribed to.")
    started_at: dt.datetime = strawberry.field(description="When the plan subscription started.")
    current_period: BillingPeriod = strawberry.field(description="The billing period under way.")
    effective_limits: Limits = strawberry.field(
        description="Plan limits plus the active add-ons' increments."
    )
    features: list[str] = strawberry.field(description="The plan's features plus those of active add-ons.")
    active_add_ons: list[ActiveAddOn] = strawberry.field(
        description="The add-ons counting now (ACTIVE or CANCELLING)."
    )
    monthly_total: Money = strawberry.field(description="Plan price plus the monthly add-ons.")
    pending_change_id: strawberry.Private[object | None] = None

    @strawberry.field(
        description="The downgrade scheduled for the end of the billing period (cancelPlanChange withdraws "
        "it); null when none."
    )
    async def pending_plan_change(
        self,
    ) -> Annotated[PlanChange, strawberry.lazy("app.resolvers.plan_changes")] | None:
        from app.resolvers.plan_changes import pending_of

        return await pending_of(self.pending_change_id)

    @classmethod
    def of(cls, view: subscriptions.TenantPlan) -> MyPlan:
        plan = view.subscription.plan
        add_ons = [ActiveAddOn.of(subscription, now=view.at) for subscription in view.add_ons]
        total = cart.plan_price(view.subscription, view.tenant.currency)
        for add_on in add_ons:
            total += money.Money.of(add_on.monthly_price.amount, add_on.monthly_price.currency)
        return cls(
            id=ids.global_id("MyPlan", view.tenant.id),
            plan=Plan.of(plan),
            started_at=view.subscription.started_at,
            current_period=BillingPeriod.of(view.period),
            effective_limits=Limits.of(view.effective_limits),
            features=view.features,
            active_add_ons=add_ons,
            monthly_total=Money.of(total),
            pending_change_id=view.subscription.pending_change_id,
        )


MyPlanResult = Annotated[
    MyPlan | NotAdminError | NotEligibleError | NoActivePlanError,
    strawberry.union("MyPlanResult", description="My plan, or why the caller may not see it."),
]


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsAuthenticated], description="Who is calling, and their environment."
    )
    async def viewer(self, info: Info) -> Viewer | None:
        principal = await info.context.require_principal()
        return Viewer.of(principal, eligible_since=info.context.settings.store_eligible_since)

    @strawberry.field(
        name="myPlan",
        extensions=allow(scopes.TENANT_READ),
        description="The environment's plan, effective limits and add-ons. Only administrators see it "
        "(others get `NotAdminError`), in environments the add-on store is open to.",
    )
    async def my_plan(self, info: Info) -> MyPlanResult | None:
        view = await subscriptions.my_plan(
            await info.context.require_principal(),
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
            plans=info.context.tenant_plan,
        )
        return MyPlan.of(view)
