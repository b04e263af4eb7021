"""The public catalog: ``plans``, ``addOns``, ``addOn``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import strawberry

from app import money
from app.models import catalog as models
from app.models.enums import AddOnCategory, Cadence, StoragePolicy
from app.resolvers import ids
from app.resolvers.common import Limits, Money, described_enum
from app.resolvers.context import Info
from app.resolvers.errors import Error, ErrorCodeEnum, register_errors
from app.services import catalog as catalog_service
from app.services.errors import ErrorCode, NotFound
from app.services.integrations import SettingKind, SettingSpec
from app.services.limits import Limits as LimitsValue

AddOnCategoryEnum = described_enum(
    AddOnCategory,
    "AddOnCategory",
    "A tab of the add-on store: what kind of thing an add-on adds.",
    {
        AddOnCategory.STORAGE: "Storage packs that raise the environment's storage limit.",
        AddOnCategory.USERS: "Packs of extra user accounts.",
        AddOnCategory.INTEGRATIONS: "Connections to marketplaces and other systems, set up after purchase.",
        AddOnCategory.REPORTS: "Reports and dashboards.",
        AddOnCategory.ADVANCED_FEATURES: "Advanced features of the back office, such as make-to-order.",
        AddOnCategory.CREDITS: "Credit packs: more variants, customers, contacts, sales reps and admins.",
        AddOnCategory.SERVICES: "One-off services, such as the Start Pack.",
    },
)
CadenceEnum = described_enum(
    Cadence,
    "Cadence",
    "How often an item is billed.",
    {
        Cadence.MONTHLY: "Billed every month until cancelled.",
        Cadence.ONE_OFF: "Billed once, on purchase; there is nothing to cancel.",
    },
)
StoragePolicyEnum = described_enum(
    StoragePolicy,
    "StoragePolicy",
    "What happens when an environment's storage is full.",
    {
        StoragePolicy.HARD_CAP: "Uploads are refused once the storage limit is reached.",
        StoragePolicy.OVERAGE: "Storage beyond the limit is billed per started GB (see `overagePricePerGb`).",
    },
)
# Shared with the settings of an active add-on (My plan): the kind a field is declared with in the catalog.
IntegrationSettingKindEnum = described_enum(
    SettingKind,
    "IntegrationSettingKind",
    "The type of value a setting of an integration takes.",
    {
        SettingKind.STRING: "Text.",
        SettingKind.SECRET: "A credential: stored encrypted, never returned (a set value shows a mask).",
        SettingKind.URL: "An absolute https:// URL of a public host, without credentials in it.",
        SettingKind.INTEGER: "A whole number.",
        SettingKind.BOOLEAN: "True or false.",
    },
)


class AddOnAvailabilityStatus(StrEnum):
    PURCHASABLE = "PURCHASABLE"
    QUOTE_ONLY = "QUOTE_ONLY"


AddOnAvailabilityStatusEnum = described_enum(
    AddOnAvailabilityStatus,
    "AddOnAvailabilityStatus",
    "Whether an environment can buy an add-on in the store or must ask for a quote.",
    {
        AddOnAvailabilityStatus.PURCHASABLE: "Sold for the environment's ERP: it can go in the cart (its "
        "`conditions` still apply).",
        AddOnAvailabilityStatus.QUOTE_ONLY: "Not sold for the environment's ERP: ask for a quote with "
        "`requestQuote`.",
    },
)


@strawberry.type(description="The add-on is not sold for the environment's ERP: ask for a quote instead.")
class NotSoldForErpError(Error):
    add_on_code: str = strawberry.field(description="The add-on concerned.")
    erp: str | None = strawberry.field(
        default=None, description="The environment's ERP; null when it has none recorded."
    )
    sold_for_erps: list[str] = strawberry.field(
        default_factory=list, description="The ERPs the add-on is sold for in the store."
    )


register_errors({catalog_service.NotSoldForErp: NotSoldForErpError})


@strawberry.type(description="The prices of an add-on for the environments running one ERP.")
class ErpPrices:
    erp: str = strawberry.field(description='The ERP\'s name ("bling").')
    prices: list[Money] = strawberry.field(
        description="The price of one unit in every currency it is sold in."
    )


@strawberry.type(
    description="Whether the caller's environment can buy the add-on in the store (by its ERP; the plan "
    "and quantity conditions are in `conditions`)."
)
class AddOnAvailability:
    status: AddOnAvailabilityStatusEnum = strawberry.field(  # type: ignore[valid-type]
        description='PURCHASABLE, or QUOTE_ONLY: show a "request a quote" button.'
    )
    reason: ErrorCodeEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="Why it cannot be bought (NOT_SOLD_FOR_ERP); null when PURCHASABLE."
    )
    message: str | None = strawberry.field(description="The reason in a sentence; null when PURCHASABLE.")
    erp: str | None = strawberry.field(description="The environment's ERP; null when none is recorded.")


async def display_currency(info: Info, requested: str | None) -> str:
    """The requested currency, else the caller's tenant currency, else the default one."""
    if requested is not None:
        return requested.upper()
    principal = await info.context.optional_principal()
    return principal.tenant.currency if principal else info.context.settings.default_currency


def priced(prices: dict[str, str], currency: str) -> Money | None:
    """The price in ``currency``; None when the item is not sold in it (its ``prices`` say where it is)."""
    try:
        return Money.of(money.price_in(prices, currency))
    except money.UnsupportedCurrencyError:
        return None


def all_prices(prices: dict[str, str]) -> list[Money]:
    return [Money.of(money.price_in(prices, currency)) for currency in sorted(prices)]


CurrencyArgument = Annotated[
    str | None,
    strawberry.argument(
        description='An ISO 4217 currency code ("BRL"); by default the caller\'s environment currency, '
        "else EUR."
    ),
]


@strawberry.type(description="A plan on sale: its monthly price, its limits and its features.")
class Plan:
    model: strawberry.Private[models.Plan]
    id: strawberry.ID = strawberry.field(description="The plan's global id.")
    code: str = strawberry.field(description='The plan\'s stable code ("storefront-m").')
    name: str = strawberry.field(description="The plan's name, for display.")
    description: str = strawberry.field(description="What the plan is for, in a sentence or two.")
    features: list[str] = strawberry.field(description="The features the plan includes.")
    storage_policy: StoragePolicyEnum = strawberry.field(  # type: ignore[valid-type]
        description="What happens when the storage is full."
    )
    process_buffer_percent: int = strawberry.field(
        description="Processes allowed beyond the monthly estimate (credits x 30), in percent."
    )

    @classmethod
    def of(cls, plan: models.Plan) -> Plan:
        return cls(
            model=plan,
            id=ids.global_id("Plan", plan.id),
            code=plan.code,
            name=plan.name,
            description=plan.description,
            features=list(plan.features),
            storage_policy=plan.storage_policy,
            process_buffer_percent=plan.process_buffer_percent,
        )

    @strawberry.field(description="The monthly price; null when the plan is not sold in that currency.")
    async def price(self, info: Info, currency: CurrencyArgument = None) -> Money | None:
        return priced(self.model.prices, await display_currency(info, currency))

    @strawberry.field(description="The monthly price in every currency the plan is sold in.")
    def prices(self) -> list[Money]:
        return all_prices(self.model.prices)

    @strawberry.field(description="The limits the plan includes.")
    def limits(self) -> Limits:
        return Limits.of(LimitsValue.of_plan(self.model))

    @strawberry.field(
        description="The price per started GB over the included storage; null on HARD_CAP plans and in a "
        "currency the plan is not sold in."
    )
    async def overage_price_per_gb(self, info: Info, currency: CurrencyArgument = None) -> Money | None:
        if self.model.storage_policy != StoragePolicy.OVERAGE:
            return None
        return priced(self.model.overage_prices_per_gb, await display_currency(info, currency))


@strawberry.type(
    description="A setting an integration asks for once bought. Secret values are never returned."
)
class ConfigurationField:
    name: str = strawberry.field(
        description="The setting's name: its key in the settings sent to configure it."
    )
    label: str = strawberry.field(description="A label to show beside the input.")
    kind: IntegrationSettingKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="The type of value the setting takes."
    )
    secret: bool = strawberry.field(description="Whether the value is a credential, never shown once set.")
    required: bool = strawberry.field(description="Whether the integration needs a value for it.")

    @classmethod
    def of(cls, declaration: dict[str, Any]) -> ConfigurationField:
        # Read as the configuration itself reads it, defaults included (a SECRET is secret unless told).
        spec = SettingSpec.of(declaration)
        return cls(
            name=spec.name, label=spec.label, kind=spec.kind, secret=spec.secret, required=spec.required
        )


@strawberry.type(
    description="What must hold for an environment to buy the add-on (shown in its detail view)."
)
class AddOnConditions:
    eligible_plan_codes: list[str] = strawberry.field(
        description="The codes of the plans that may buy it; empty means every plan."
    )
    max_quantity: int | None = strawberry.field(
        description="The most units an environment may hold; null means no limit."
    )
    required_add_on_codes: list[str] = strawberry.field(
        description="The codes of the add-ons that must be active (or in the same cart) first."
    )
    requires_configuration: bool = strawberry.field(
        description="Whether its settings must be configured after purchase."
    )

    @strawberry.field(description="The conditions in one sentence, for display.")
    def summary(self) -> str:
        parts = [
            f"plans {', '.join(self.eligible_plan_codes)} only" if self.eligible_plan_codes else "any plan",
            f"at most {self.max_quantity}" if self.max_quantity is not None else "no quantity limit",
        ]
        if self.required_add_on_codes:
            parts.append(f"requires {', '.join(self.required_add_on_codes)}")
        if self.requires_configuration:
            parts.append("needs its settings configured after purchase")
        return "; ".join(parts).capitalize() + "."


@strawberry.type(description="An add-on of the store's catalog: what it adds, its price and its conditions.")
class AddOn:
    model: strawberry.Private[models.AddOn]
    id: strawberry.ID = strawberry.field(
        description="The catalog add-on's global id (not an active add-on's: see `ActiveAddOn.id`)."
    )
    code: str = strawberry.field(description='The add-on\'s stable code ("storage-10gb"), used in arguments.')
    name: str = strawberry.field(description="The add-on's name, for display.")
    description: str = strawberry.field(description="What the add-on does, in a sentence or two.")
    category: AddOnCategoryEnum = strawberry.field(  # type: ignore[valid-type]
        description="The store tab it is listed under."
    )
    cadence: CadenceEnum = strawberry.field(  # type: ignore[valid-type]
        description="Whether it is billed monthly or once."
    )
    is_free: bool = strawberry.field(description='Shown as "GRÁTIS" in the store: costs nothing.')
    features: list[str] = strawberry.field(description="The features it adds to the environment.")
    requires_configuration: bool = strawberry.field(
        description="Whether its settings must be configured after purchase."
    )

    @classmethod
    def of(cls, add_on: models.AddOn) -> AddOn:
        return cls(
            model=add_on,
            id=ids.global_id("AddOn", add_on.id),
            code=add_on.code,
            name=add_on.name,
            description=add_on.description,
            category=add_on.category,
            cadence=add_on.cadence,
            is_free=add_on.is_free,
            features=list(add_on.features),
            requires_configuration=add_on.requires_configuration,
        )

    @strawberry.field(
        description="The price of one unit, monthly or once for ONE_OFF items; null when the add-on is not "
        "sold in that currency. For a signed-in environment, the price for its ERP (`erpPrices`), null "
        "where it is quote-only; for anonymous callers, the list price (`prices`)."
    )
    async def price(self, info: Info, currency: CurrencyArgument = None) -> Money | None:
        principal = await info.context.optional_principal()
        prices = (
            catalog_service.prices_for(self.model, principal.tenant.erp) if principal else self.model.prices
        )
        if prices is None:
            return None
        return priced(prices, await display_currency(info, currency))

    @strawberry.field(
        description="The list price of one unit in every currency the add-on is sold in; an add-on sold per "
        "ERP is charged its ERP's prices (`erpPrices`)."
    )
    def prices(self) -> list[Money]:
        return all_prices(self.model.prices)

    @strawberry.field(
        description="The ERPs the add-on is sold for in the store; empty means every ERP. Elsewhere it is "
        "quote-only (`requestQuote`)."
    )
    def sold_for_erps(self) -> list[str]:
        return catalog_service.sold_for_erps(self.model)

    @strawberry.field(
        description="The prices per ERP of an add-on sold per ERP (by ERP name); empty otherwise."
    )
    def erp_prices(self) -> list[ErpPrices]:
        return [
            ErpPrices(erp=erp, prices=all_prices(self.model.erp_prices[erp]))
            for erp in catalog_service.sold_for_erps(self.model)
        ]

    @strawberry.field(
        description="Whether the caller's environment can buy it in the store or must ask for a quote; null "
        "for anonymous callers."
    )
    async def availability(self, info: Info) -> AddOnAvailability | None:
        principal = await info.context.optional_principal()
        if principal is None:
            return None
        erp = principal.tenant.erp
        try:
            catalog_service.require_sold_for(self.model, erp)
        except catalog_service.NotSoldForErp as refused:
            return AddOnAvailability(
                status=AddOnAvailabilityStatus.QUOTE_ONLY,
                reason=ErrorCode.NOT_SOLD_FOR_ERP,
                message=refused.message,
                erp=erp,
            )
        return AddOnAvailability(
            status=AddOnAvailabilityStatus.PURCHASABLE, reason=None, message=None, erp=erp
        )

    @strawberry.field(description="What one unit adds to the effective limits.")
    def increments(self) -> Limits:
        return Limits.of(LimitsValue.increments_of(self.model))

    @strawberry.field(description="What must hold for an environment to buy it.")
    def conditions(self) -> AddOnConditions:
        return AddOnConditions(
            eligible_plan_codes=list(self.model.eligible_plan_codes),
            max_quantity=self.model.max_quantity,
            required_add_on_codes=list(self.model.requires_add_on_codes),
            requires_configuration=self.model.requires_configuration,
        )

    @strawberry.field(description="The settings to configure after purchase (integrations); empty otherwise.")
    def configuration_fields(self) -> list[ConfigurationField]:
        return [ConfigurationField.of(declaration) for declaration in self.model.configuration_fields]


@strawberry.type
class Query:
    @strawberry.field(description="The plans on sale.")
    async def plans(self) -> list[Plan]:
        return [Plan.of(plan) for plan in await catalog_service.list_plans()]

    @strawberry.field(name="addOns", description="The add-on store's catalog, by category (tab).")
    async def add_ons(
        self,
        category: Annotated[
            AddOnCategoryEnum | None,  # type: ignore[valid-type]
            strawberry.argument(description="Only the add-ons of this tab; by default every tab."),
        ] = None,
    ) -> list[AddOn]:
        return [AddOn.of(add_on) for add_on in await catalog_service.list_add_ons(category)]

    @strawberry.field(
        name="addOn", description="One add-on of the catalog by its code; null for an unknown code."
    )
    async def add_on(
        self, code: Annotated[str, strawberry.argument(description='The add-on\'s code ("start-pack").')]
    ) -> AddOn | None:
        try:
            add_on = await catalog_service.get_add_on(code)
        except NotFound:
            return None  # a code that names nothing is answered with nothing, not an error
        return AddOn.of(add_on)
