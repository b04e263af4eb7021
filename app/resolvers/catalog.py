"""The public catalog: ``plans``, ``addOns``, ``addOn``."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from app import money
from app.models import catalog as models
from app.models.enums import AddOnCategory, Cadence, StoragePolicy
from app.resolvers.common import Limits, Money
from app.resolvers.context import Info
from app.services import catalog as catalog_service
from app.services.errors import UnsupportedCurrency, shown
from app.services.limits import Limits as LimitsValue

AddOnCategoryEnum = strawberry.enum(AddOnCategory, name="AddOnCategory")
CadenceEnum = strawberry.enum(Cadence, name="Cadence")
StoragePolicyEnum = strawberry.enum(StoragePolicy, name="StoragePolicy")


async def display_currency(info: Info, requested: str | None) -> str:
    """The requested currency, else the caller's tenant currency, else the default one."""
    if requested is not None:
        return requested.upper()
    principal = await info.context.optional_principal()
    return principal.tenant.currency if principal else info.context.settings.default_currency


def priced(prices: dict[str, str], currency: str) -> Money:
    try:
        return Money.of(money.price_in(prices, currency))
    except money.UnsupportedCurrencyError:
        raise UnsupportedCurrency(
            f"No price in {shown(currency, 10)}; available: {', '.join(sorted(prices))}.", field="currency"
        ) from None


def all_prices(prices: dict[str, str]) -> list[Money]:
    return [Money.of(money.price_in(prices, currency)) for currency in sorted(prices)]


CurrencyArgument = Annotated[
    str | None,
    strawberry.argument(description="ISO 4217 code; defaults to the caller's tenant currency, else EUR."),
]


@strawberry.type
class Plan:
    model: strawberry.Private[models.Plan]
    id: strawberry.ID
    code: str
    name: str
    description: str
    features: list[str]
    storage_policy: StoragePolicyEnum  # type: ignore[valid-type]
    process_buffer_percent: int = strawberry.field(
        description="Processes allowed beyond the monthly estimate (credits x 30), in percent."
    )

    @classmethod
    def of(cls, plan: models.Plan) -> Plan:
        return cls(
            model=plan,
            id=strawberry.ID(str(plan.id)),
            code=plan.code,
            name=plan.name,
            description=plan.description,
            features=list(plan.features),
            storage_policy=plan.storage_policy,
            process_buffer_percent=plan.process_buffer_percent,
        )

    @strawberry.field(description="Monthly price.")
    async def price(self, info: Info, currency: CurrencyArgument = None) -> Money:
        return priced(self.model.prices, await display_currency(info, currency))

    @strawberry.field(description="The monthly price in every currency it is sold in.")
    def prices(self) -> list[Money]:
        return all_prices(self.model.prices)

    @strawberry.field
    def limits(self) -> Limits:
        return Limits.of(LimitsValue.of_plan(self.model))

    @strawberry.field(description="Price per started GB over the included storage; null on HARD_CAP plans.")
    async def overage_price_per_gb(self, info: Info, currency: CurrencyArgument = None) -> Money | None:
        if self.model.storage_policy != StoragePolicy.OVERAGE:
            return None
        return priced(self.model.overage_prices_per_gb, await display_currency(info, currency))


@strawberry.type
class ConfigurationField:
    name: str
    label: str
    kind: str = strawberry.field(description="STRING, URL or SECRET.")
    secret: bool
    required: bool


@strawberry.type(description="What must hold for a tenant to buy the add-on (shown in its detail view).")
class AddOnConditions:
    eligible_plans: list[str] = strawberry.field(description="Plan codes that may buy it; empty means all.")
    max_quantity: int | None
    requires: list[str] = strawberry.field(description="Add-on codes that must be active first.")
    requires_configuration: bool

    @strawberry.field(description="The conditions in one sentence.")
    def summary(self) -> str:
        parts = [
            f"plans {', '.join(self.eligible_plans)} only" if self.eligible_plans else "any plan",
            f"at most {self.max_quantity}" if self.max_quantity is not None else "no quantity limit",
        ]
        if self.requires:
            parts.append(f"requires {', '.join(self.requires)}")
        if self.requires_configuration:
            parts.append("needs its settings configured after purchase")
        return "; ".join(parts).capitalize() + "."


@strawberry.type
class AddOn:
    model: strawberry.Private[models.AddOn]
    id: strawberry.ID
    code: str
    name: str
    description: str
    category: AddOnCategoryEnum  # type: ignore[valid-type]
    cadence: CadenceEnum  # type: ignore[valid-type]
    is_free: bool = strawberry.field(description='Shown as "GRÁTIS" in the store: costs nothing.')
    features: list[str]
    requires_configuration: bool

    @classmethod
    def of(cls, add_on: models.AddOn) -> AddOn:
        return cls(
            model=add_on,
            id=strawberry.ID(str(add_on.id)),
            code=add_on.code,
            name=add_on.name,
            description=add_on.description,
            category=add_on.category,
            cadence=add_on.cadence,
            is_free=add_on.is_free,
            features=list(add_on.features),
            requires_configuration=add_on.requires_configuration,
        )

    @strawberry.field(description="Price of one unit: monthly, or once for ONE_OFF items.")
    async def price(self, info: Info, currency: CurrencyArgument = None) -> Money:
        return priced(self.model.prices, await display_currency(info, currency))

    @strawberry.field
    def prices(self) -> list[Money]:
        return all_prices(self.model.prices)

    @strawberry.field(description="What one unit adds to the effective limits.")
    def increments(self) -> Limits:
        return Limits.of(LimitsValue.increments_of(self.model))

    @strawberry.field
    def conditions(self) -> AddOnConditions:
        return AddOnConditions(
            eligible_plans=list(self.model.eligible_plan_codes),
            max_quantity=self.model.max_quantity,
            requires=list(self.model.requires_add_on_codes),
            requires_configuration=self.model.requires_configuration,
        )

    @strawberry.field(description="The settings to configure after purchase (integrations).")
    def configuration_fields(self) -> list[ConfigurationField]:
        return [configuration_field(spec) for spec in self.model.configuration_fields]


def configuration_field(spec: dict[str, Any]) -> ConfigurationField:
    return ConfigurationField(
        name=spec["name"],
        label=spec.get("label", spec["name"]),
        kind=spec.get("kind", "STRING"),
        secret=bool(spec.get("secret", False)),
        required=bool(spec.get("required", True)),
    )


@strawberry.type
class Query:
    @strawberry.field(description="Plans on sale. Public.")
    async def plans(self) -> list[Plan]:
        return [Plan.of(plan) for plan in await catalog_service.list_plans()]

    @strawberry.field(name="addOns", description="The add-on store's catalog, by category (tab). Public.")
    async def add_ons(self, category: AddOnCategoryEnum | None = None) -> list[AddOn]:  # type: ignore[valid-type]
        return [AddOn.of(add_on) for add_on in await catalog_service.list_add_ons(category)]

    @strawberry.field(
        name="addOn", description="One add-on by its code; an unknown code is a NOT_FOUND error. Public."
    )
    async def add_on(self, code: str) -> AddOn | None:
        return AddOn.of(await catalog_service.get_add_on(code))
