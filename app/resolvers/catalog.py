"""The public catalog: ``plans``, ``addOns``, ``addOn``."""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from enum import StrEnum
from typing import Annotated, Any

import strawberry

from app import money
from app.i18n import Locale, format_money, join_list, label, localized
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
            features=list(plan.features),
            storage_policy=plan.storage_policy,
            process_buffer_percent=plan.process_buffer_percent,
        )

    @strawberry.field(description="The plan's name, for display, in the caller's language (else English).")
    async def name(self, info: Info) -> str:
        return localized(self.model.names, await info.context.locale(), self.model.name)

    @strawberry.field(
        description="What the plan is for, in a sentence or two, in the caller's language (else English)."
    )
    async def description(self, info: Info) -> str:
        return localized(self.model.descriptions, await info.context.locale(), self.model.description)

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
    # The catalog's own wording per locale (AddOn.conditions); a locale it lacks gets the composed summary.
    texts: strawberry.Private[dict[str, str]] = dataclasses.field(default_factory=dict)

    @strawberry.field(
        description="The conditions in one sentence, for display, in the caller's language: the catalog's "
        "own wording when it has one in that language, else composed from the fields above (plans and "
        "add-ons by name)."
    )
    async def summary(self, info: Info) -> str:
        locale = await info.context.locale()
        if own := self.texts.get(locale.value):
            return own
        return await self.composed(info, locale)

    async def composed(self, info: Info, locale: Locale) -> str:
        parts = [
            label(
                "plans {plans} only",
                plans=join_list(await _names_of(info, "plan", self.eligible_plan_codes, locale), locale),
            )
            if self.eligible_plan_codes
            else label("any plan"),
            label("at most {count}", count=self.max_quantity)
            if self.max_quantity is not None
            else label("no quantity limit"),
        ]
        if self.required_add_on_codes:
            names = await _names_of(info, "add-on", self.required_add_on_codes, locale)
            parts.append(label("requires {add_ons}", add_ons=join_list(names, locale)))
        if self.requires_configuration:
            parts.append(label("needs its settings configured after purchase"))
        sentence = "; ".join(part.render(locale) for part in parts)
        return sentence[:1].upper() + sentence[1:] + "."


async def _add_on_price(add_on: models.AddOn, info: Info, currency: str | None) -> Money | None:
    """``AddOn.price``: for a signed-in environment, its ERP's price (none where it is quote-only)."""
    principal = await info.context.optional_principal()
    prices = catalog_service.prices_for(add_on, principal.tenant.erp) if principal else add_on.prices
    if prices is None:
        return None
    return priced(prices, await display_currency(info, currency))


# The names of every plan and add-on, loaded once per request (two queries) for the composed summaries of a
# whole catalog: the futures are shared by resolvers running side by side, and go with the request.
_NAMES: weakref.WeakKeyDictionary[Any, dict[str, asyncio.Future[dict[str, tuple[dict[str, str], str]]]]] = (
    weakref.WeakKeyDictionary()
)


async def _names_of(info: Info, kind: str, codes: list[str], locale: Locale) -> list[str]:
    """The names of the plans (``kind`` "plan") or add-ons named by ``codes``, in ``locale``, in the order of
    ``codes``; a code no longer in the catalog is shown as is."""
    loaded = _NAMES.setdefault(info.context, {})
    if kind not in loaded:
        model: type[models.Plan | models.AddOn] = models.Plan if kind == "plan" else models.AddOn
        loaded[kind] = asyncio.ensure_future(_load_names(model))
    rows = await asyncio.shield(loaded[kind])
    return [localized(rows[code][0], locale, rows[code][1]) if code in rows else code for code in codes]


async def _load_names(model: type[models.Plan | models.AddOn]) -> dict[str, tuple[dict[str, str], str]]:
    rows = await model.all().values_list("code", "names", "name")
    return {str(code): (dict(names or {}), str(name)) for code, names, name in rows}


@strawberry.type(description="An add-on of the store's catalog: what it adds, its price and its conditions.")
class AddOn:
    model: strawberry.Private[models.AddOn]
    id: strawberry.ID = strawberry.field(
        description="The catalog add-on's global id (not an active add-on's: see `ActiveAddOn.id`)."
    )
    code: str = strawberry.field(description='The add-on\'s stable code ("storage-10gb"), used in arguments.')
    category: AddOnCategoryEnum = strawberry.field(  # type: ignore[valid-type]
        description="The store tab it is listed under."
    )
    cadence: CadenceEnum = strawberry.field(  # type: ignore[valid-type]
        description="Whether it is billed monthly or once."
    )
    is_free: bool = strawberry.field(
        description='Costs nothing: shown as "FREE" in the store (`priceLabel`: "GRÁTIS" in pt-BR).'
    )
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
            category=add_on.category,
            cadence=add_on.cadence,
            is_free=add_on.is_free,
            features=list(add_on.features),
            requires_configuration=add_on.requires_configuration,
        )

    @strawberry.field(description="The add-on's name, for display, in the caller's language (else English).")
    async def name(self, info: Info) -> str:
        return localized(self.model.names, await info.context.locale(), self.model.name)

    @strawberry.field(
        description="What the add-on does, in a sentence or two, in the caller's language (else English)."
    )
    async def description(self, info: Info) -> str:
        return localized(self.model.descriptions, await info.context.locale(), self.model.description)

    @strawberry.field(
        description="The price of one unit, monthly or once for ONE_OFF items; null when the add-on is not "
        "sold in that currency. For a signed-in environment, the price for its ERP (`erpPrices`), null "
        "where it is quote-only; for anonymous callers, the list price (`prices`)."
    )
    async def price(self, info: Info, currency: CurrencyArgument = None) -> Money | None:
        return await _add_on_price(self.model, info, currency)

    @strawberry.field(
        description="The price as the store shows it, in the caller's language: "
        '"GRÁTIS" / "GRATIS" / "FREE" for free add-ons, else the formatted price and its cadence '
        '("R$ 59,90/mês", "€490.00 once"). Null '
        "where `price` is null (not sold in that currency, or quote-only for the caller's ERP)."
    )
    async def price_label(self, info: Info, currency: CurrencyArgument = None) -> str | None:
        locale = await info.context.locale()
        if self.model.is_free:
            return label("FREE").render(locale)
        price = await _add_on_price(self.model, info, currency)
        if price is None:
            return None
        shown = format_money(price.amount, price.currency, locale)
        if self.model.cadence == Cadence.ONE_OFF:
            return label("{price} once", price=shown).render(locale)
        return label("{price}/month", price=shown).render(locale)

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
            texts=dict(self.model.conditions),
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
