"""The add-on store: ``cart``, ``invoicePreview``; ``addToCart``, ``updateCartItem``, ``removeFromCart``,
``applyCoupon``, ``removeCoupon``, ``checkout``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from app import money
from app.auth import scopes
from app.auth.principal import Principal
from app.i18n import Locale, localized
from app.models import store as store_models
from app.models.enums import CouponDuration, CouponKind
from app.resolvers.account import ActiveAddOn, MyPlan, UserAccount
from app.resolvers.catalog import AddOn, CadenceEnum, NotSoldForErpError
from app.resolvers.common import BillingPeriod, Money, described_enum
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
from app.resolvers.ids import global_id
from app.resolvers.permissions import allow
from app.services import cart as cart_service
from app.services import checkout as checkout_service
from app.services import coupons as coupon_service
from app.services import invoices as invoice_service
from app.services import pricing
from app.services.errors import DomainError, UnsupportedCurrency
from app.services.subscriptions import TenantPlan

CouponKindEnum = described_enum(
    CouponKind,
    "CouponKind",
    "How a coupon discounts.",
    {
        CouponKind.PERCENT: "A percentage off the items it applies to (`percentOff`).",
        CouponKind.FIXED: "An amount off the items it applies to, in the environment's currency "
        "(`amountOff`).",
    },
)
CouponDurationEnum = described_enum(
    CouponDuration,
    "CouponDuration",
    "How long a coupon keeps discounting the items bought with it.",
    {
        CouponDuration.ONCE: "Only the first charge of each item.",
        CouponDuration.REPEATING: "The first `durationMonths` monthly charges.",
        CouponDuration.FOREVER: "Every charge, for as long as the items are kept.",
    },
)
InvoiceLineKindEnum = described_enum(
    pricing.InvoiceLineKind,
    "InvoiceLineKind",
    "What a line of an invoice charges for.",
    {
        pricing.InvoiceLineKind.PLAN: "The plan, prorated by the days it was active in the period.",
        pricing.InvoiceLineKind.ADD_ON: "A monthly add-on, prorated by the days it was available in "
        "the period.",
        pricing.InvoiceLineKind.PLAN_CHANGE: "A change of plan in the period: the difference of the "
        "monthly prices, prorated from the day it took effect (counted whole) to the end of the period.",
        pricing.InvoiceLineKind.CHANGE_FEE: "The one-off fee of a change of plan, billed in the period "
        "the change takes effect in.",
        pricing.InvoiceLineKind.ONE_OFF: "A one-off item bought in the period, billed once in full.",
        pricing.InvoiceLineKind.STORAGE_OVERAGE: "Storage used above the effective limit, per started "
        "gigabyte (plans billed for overage).",
        pricing.InvoiceLineKind.DISCOUNT: "A coupon's discount on another line: a negative amount.",
    },
)


# --- Errors ------------------------------------------------------------------------------------


@strawberry.type(description="The add-on is no longer sold.")
class AddOnUnavailableError(Error):
    add_on_code: str = strawberry.field(description="The add-on concerned.")


@strawberry.type(description="More units than the add-on may be contracted by one environment.")
class QuantityAboveMaximumError(Error):
    add_on_code: str = strawberry.field(description="The add-on concerned.")
    maximum: int | None = strawberry.field(default=None, description="Units an environment may have in all.")
    already_contracted: int | None = strawberry.field(
        default=None, description="Units the environment already has, active or bought."
    )


@strawberry.type(description="The add-on is not sold with the environment's plan.")
class NotAvailableForPlanError(Error):
    add_on_code: str = strawberry.field(description="The add-on concerned.")
    eligible_plan_codes: list[str] = strawberry.field(description="The plans that may buy it, by code.")


@strawberry.type(description="The add-on needs other add-ons, active or in the same cart.")
class RequiredAddOnMissingError(Error):
    add_on_code: str = strawberry.field(description="The add-on concerned.")
    required_add_on_codes: list[str] = strawberry.field(
        description="The add-ons it needs that are neither active nor in the cart, by code."
    )


@strawberry.type(description="The add-on has no price in the environment's currency: it cannot be bought.")
class UnsupportedCurrencyError(Error):
    currency: str = strawberry.field(description="The environment's currency, in which it has no price.")
    available_currencies: list[str] = strawberry.field(
        description="The currencies the add-on is sold in (ISO 4217 codes)."
    )


@strawberry.type(description="Another change to the same cart was being made at the same moment: try again.")
class CartBusyError(Error):
    pass


@strawberry.type(description="No coupon has this code.")
class CouponNotFoundError(Error):
    pass


@strawberry.type(description="The coupon's validity has not started.")
class CouponNotYetValidError(Error):
    valid_from: dt.datetime = strawberry.field(description="The instant from which it may be used.")


@strawberry.type(description="The coupon has expired.")
class CouponExpiredError(Error):
    expired_at: dt.datetime = strawberry.field(description="The instant it stopped being valid.")


@strawberry.type(description="The coupon reached its maximum number of redemptions.")
class CouponExhaustedError(Error):
    max_redemptions: int | None = strawberry.field(
        default=None, description="How many times it may be redeemed in all, by every environment."
    )


@strawberry.type(description="The environment already redeemed this coupon: each may use it once.")
class CouponAlreadyUsedError(Error):
    pass


@strawberry.type(description="The coupon discounts nothing in this cart.")
class CouponNotApplicableError(Error):
    pass


@strawberry.type(description="The coupon's terms changed since it was applied: apply it again or remove it.")
class CouponChangedError(Error):
    pass


@strawberry.type(description="There is nothing in the cart to check out.")
class CartEmptyError(Error):
    pass


@strawberry.type(description="A line whose catalog price is not the one seen when it was added.")
class PriceChange:
    add_on_code: str = strawberry.field(description="The add-on of the line.")
    name: str = strawberry.field(description="The add-on's name.")
    seen_unit_price: Money = strawberry.field(description="The unit price shown when it was added.")
    current_unit_price: Money | None = strawberry.field(
        description="The catalog's unit price now; null: no longer sold in this currency."
    )


@strawberry.type(description="Checkout refused to charge prices other than those shown: review the cart.")
class PriceChangedError(Error):
    changes: list[PriceChange] = strawberry.field(description="The lines whose price changed.")

    @classmethod
    def from_domain_error(cls, error: DomainError, locale: Locale | None) -> PriceChangedError:
        assert isinstance(error, checkout_service.PriceChanged)
        return cls(
            code=error.code,
            message=error.localized(locale),
            field=error.field,
            changes=[
                PriceChange(
                    add_on_code=change.add_on_code,
                    name=change.name,
                    seen_unit_price=Money.of(change.seen),
                    current_unit_price=Money.of(change.current) if change.current else None,
                )
                for change in error.changes
            ],
        )


@strawberry.type(description="The cart was confirmed by a checkout meanwhile: this change was not made.")
class CartCheckedOutError(Error):
    pass


@strawberry.type(description="A purchase's figures, as the cart's summary shows them.")
class PurchaseFigures:
    period: BillingPeriod = strawberry.field(description="The billing period the purchase falls in.")
    subtotal: Money = strawberry.field(
        description="What the purchase adds to the next invoice, before discount."
    )
    discount: Money = strawberry.field(description="The coupon's discount.")
    total: Money = strawberry.field(description="What the purchase adds to the next invoice.")
    monthly_increase: Money = strawberry.field(description="What the monthly bill grows by.")
    due_on_next_invoice: Money = strawberry.field(description="The monthly items prorated by day.")
    one_off_total: Money = strawberry.field(description="The one-off items, billed once.")

    @classmethod
    def of(cls, quote: pricing.Quote) -> PurchaseFigures:
        return cls(
            period=BillingPeriod.of(quote.period),
            subtotal=Money.of(quote.subtotal),
            discount=Money.of(quote.discount),
            total=Money.of(quote.total),
            monthly_increase=Money.of(quote.monthly_increase),
            due_on_next_invoice=Money.of(quote.due_on_next_invoice),
            one_off_total=Money.of(quote.one_off_total),
        )


@strawberry.type(
    description="Checkout refused to charge other figures than those last shown (the billing period "
    "turned, a day passed...): show the current ones; confirming again then charges them."
)
class TotalChangedError(Error):
    seen: PurchaseFigures | None = strawberry.field(
        description="The figures last shown; null: none recorded."
    )
    current: PurchaseFigures = strawberry.field(description="The figures a confirmation now charges.")

    @classmethod
    def from_domain_error(cls, error: DomainError, locale: Locale | None) -> TotalChangedError:
        assert isinstance(error, checkout_service.TotalChanged)
        return cls(
            code=error.code,
            message=error.localized(locale),
            field=error.field,
            seen=PurchaseFigures.of(error.seen) if error.seen else None,
            current=PurchaseFigures.of(error.current),
        )


@strawberry.type(description='The billing period is not a month name such as "2026-11" within range.')
class InvalidPeriodError(Error):
    pass


register_errors(
    {
        UnsupportedCurrency: UnsupportedCurrencyError,
        cart_service.CartBusy: CartBusyError,
        cart_service.CartCheckedOut: CartCheckedOutError,
        checkout_service.TotalChanged: TotalChangedError,
        cart_service.AddOnUnavailable: AddOnUnavailableError,
        cart_service.QuantityAboveMaximum: QuantityAboveMaximumError,
        cart_service.NotAvailableForPlan: NotAvailableForPlanError,
        cart_service.RequiredAddOnMissing: RequiredAddOnMissingError,
        coupon_service.CouponNotFound: CouponNotFoundError,
        coupon_service.CouponNotYetValid: CouponNotYetValidError,
        coupon_service.CouponExpired: CouponExpiredError,
        coupon_service.CouponExhausted: CouponExhaustedError,
        coupon_service.CouponAlreadyUsed: CouponAlreadyUsedError,
        coupon_service.CouponNotApplicable: CouponNotApplicableError,
        coupon_service.CouponChanged: CouponChangedError,
        checkout_service.EmptyCart: CartEmptyError,
        checkout_service.PriceChanged: PriceChangedError,
        invoice_service.InvalidPeriod: InvalidPeriodError,
    }
)


# --- Cart --------------------------------------------------------------------------------------


@strawberry.type(description="A line of the cart, priced as the summary shows it.")
class CartLine:
    id: strawberry.ID = strawberry.field(description="The line's id, the same while it stays in the cart.")
    add_on: AddOn = strawberry.field(description="The catalog add-on this line buys.")
    add_on_code: str = strawberry.field(description="The add-on's code.")
    quantity: int = strawberry.field(description="Units to buy.")
    cadence: CadenceEnum = strawberry.field(  # type: ignore[valid-type]
        description="Billed every month or once."
    )
    is_free: bool = strawberry.field(description='Shown as "GRÁTIS": costs nothing.')
    unit_price: Money = strawberry.field(description="The unit price seen when added: what checkout charges.")
    current_unit_price: Money | None = strawberry.field(
        description="The catalog's unit price now; null: no longer sold in this currency."
    )
    price_changed: bool = strawberry.field(
        description="The catalog's price is not the one seen: checkout refuses until the line is updated."
    )
    line_total: Money = strawberry.field(description="Unit price x quantity: per month, or once.")
    amount_due: Money = strawberry.field(
        description="On the next invoice: prorated by day (monthly) or in full (one-off)."
    )
    discount: Money = strawberry.field(description="The coupon's share of the discount on this line.")
    total: Money = strawberry.field(description="The amount due minus the discount.")
    coupon_applies: bool = strawberry.field(description="Whether the cart's coupon discounts this line.")

    @strawberry.field(description="The add-on's name, in the caller's language.")
    def name(self, info: Info) -> str:
        model = self.add_on.model
        return localized(model.names, info.context.current_locale(), model.name)


@strawberry.type(description="The coupon applied to the cart, with its terms.")
class CartCoupon:
    code: str = strawberry.field(description="The coupon's code, in capitals.")
    description: str = strawberry.field(description="What the coupon offers, in words.")
    kind: CouponKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="A percentage or an amount off."
    )
    percent_off: Decimal | None = strawberry.field(description="The percentage off (PERCENT coupons).")
    amount_off: Money | None = strawberry.field(
        description="The amount off, in the environment's currency (FIXED coupons)."
    )
    duration: CouponDurationEnum = strawberry.field(  # type: ignore[valid-type]
        description="How long it keeps discounting."
    )
    duration_months: int | None = strawberry.field(description="The months discounted (REPEATING coupons).")
    applies: bool = strawberry.field(description="Whether it discounts anything in the cart now.")
    changed_since_applied: bool = strawberry.field(
        description="Its terms changed since it was applied: checkout refuses until it is applied again."
    )


@strawberry.type(description='The "finish purchase" summary. Each total is the sum of the lines\' amounts.')
class CartSummary:
    subtotal: Money = strawberry.field(
        description="What this purchase adds to the next invoice, before discount."
    )
    discount: Money = strawberry.field(description="The coupon's discount.")
    total: Money = strawberry.field(description="The subtotal minus the discount: what checkout charges.")
    monthly_increase: Money = strawberry.field(description="What the monthly bill grows by (before coupons).")
    due_on_next_invoice: Money = strawberry.field(
        description="The monthly items prorated by day from today to the end of the billing period."
    )
    one_off_total: Money = strawberry.field(description="One-off items (Start Pack), billed once.")
    new_monthly_total: Money = strawberry.field(
        description="The monthly price afterwards: plan, monthly add-ons and new ones, before coupons."
    )
    period: BillingPeriod = strawberry.field(description="The current billing period.")
    days_left: int = strawberry.field(description="Days charged in the current period, today included.")

    @classmethod
    def of(cls, summary: pricing.Summary) -> CartSummary:
        return cls(
            subtotal=Money.of(summary.subtotal),
            discount=Money.of(summary.discount),
            total=Money.of(summary.total),
            monthly_increase=Money.of(summary.monthly_increase),
            due_on_next_invoice=Money.of(summary.due_on_next_invoice),
            one_off_total=Money.of(summary.one_off_total),
            new_monthly_total=Money.of(summary.new_monthly_total),
            period=BillingPeriod.of(summary.period),
            days_left=summary.days_left,
        )


@strawberry.type(
    description="The caller's cart in the add-on store: its lines, its coupon and their summary."
)
class Cart:
    id: strawberry.ID = strawberry.field(
        description="The caller's cart: the same id before anything is added, while it fills, and once "
        "checkout has emptied it."
    )
    lines: list[CartLine] = strawberry.field(description="What is in the cart, in the order it was added.")
    coupon: CartCoupon | None = strawberry.field(description="The coupon applied; null: none.")
    summary: CartSummary = strawberry.field(description="The figures of the purchase.")

    @classmethod
    def of(cls, view: cart_service.CartView, owner: Principal) -> Cart:
        lines = []
        for line_view, priced in zip(view.lines, view.summary.lines, strict=True):
            line = line_view.line
            lines.append(
                CartLine(
                    id=global_id("CartLine", line.id),
                    add_on=AddOn.of(line.add_on),
                    add_on_code=line.add_on.code,
                    quantity=line.quantity,
                    cadence=line.add_on.cadence,
                    is_free=line.add_on.is_free,
                    unit_price=Money.of(line_view.seen_price),
                    current_unit_price=Money.of(line_view.current_price) if line_view.current_price else None,
                    price_changed=line_view.price_changed,
                    line_total=Money.of(priced.line_total),
                    amount_due=Money.of(priced.amount_due),
                    discount=Money.of(priced.discount),
                    total=Money.of(priced.total),
                    coupon_applies=priced.coupon_applies,
                )
            )
        # One cart per admin, whichever row holds it: the id names the owner, so it outlives checkout.
        assert owner.user is not None  # the store is for admins, who are users
        return cls(
            id=global_id("Cart", owner.user.id),
            lines=lines,
            coupon=coupon_of(view) if view.coupon else None,
            summary=CartSummary.of(view.summary),
        )


def coupon_of(view: cart_service.CartView) -> CartCoupon:
    coupon = view.coupon
    assert coupon is not None
    currency = view.summary.currency
    amount = coupon.amounts_off.get(currency)
    return CartCoupon(
        code=coupon.code,
        description=coupon.description,
        kind=coupon.kind,
        percent_off=coupon.percent_off,
        amount_off=Money.of(money.Money.of(amount, currency)) if amount else None,
        duration=coupon.duration,
        duration_months=coupon.duration_months,
        applies=view.summary.coupon_applies,
        changed_since_applied=view.coupon_changed,
    )


_CART_AFTER = "The cart as this change left it."


@strawberry.type(description="The add-on is in the cart.")
class AddToCartSuccess:
    cart: Cart = strawberry.field(description=_CART_AFTER)


@strawberry.type(description="The line has its new quantity, at the current price.")
class UpdateCartItemSuccess:
    cart: Cart = strawberry.field(description=_CART_AFTER)


@strawberry.type(description="The line is out of the cart.")
class RemoveFromCartSuccess:
    cart: Cart = strawberry.field(description=_CART_AFTER)


@strawberry.type(description="The coupon is applied: the summary shows its discount.")
class ApplyCouponSuccess:
    cart: Cart = strawberry.field(description=_CART_AFTER)


@strawberry.type(description="The cart has no coupon.")
class RemoveCouponSuccess:
    cart: Cart = strawberry.field(description=_CART_AFTER)


_ACCESS = NotAdminError | NotEligibleError | NoActivePlanError
_CONDITIONS = (
    AddOnUnavailableError
    | QuantityAboveMaximumError
    | NotAvailableForPlanError
    | RequiredAddOnMissingError
    | NotSoldForErpError
)
_COUPON = (
    CouponNotFoundError
    | CouponNotYetValidError
    | CouponExpiredError
    | CouponExhaustedError
    | CouponAlreadyUsedError
    | CouponNotApplicableError
)

CartResult = Annotated[Cart | _ACCESS, strawberry.union("CartResult", description="The cart, or why not.")]
AddToCartResult = Annotated[
    AddToCartSuccess
    | _ACCESS
    | InvalidInputError
    | NotFoundError
    | UnsupportedCurrencyError
    | CartBusyError
    | _CONDITIONS,
    strawberry.union("AddToCartResult", description="The cart with the add-on, or why it was not added."),
]
UpdateCartItemResult = Annotated[
    UpdateCartItemSuccess
    | _ACCESS
    | InvalidInputError
    | NotFoundError
    | UnsupportedCurrencyError
    | CartCheckedOutError
    | _CONDITIONS,
    strawberry.union("UpdateCartItemResult", description="The cart with the new quantity, or why not."),
]
RemoveFromCartResult = Annotated[
    RemoveFromCartSuccess | _ACCESS | NotFoundError | CartCheckedOutError,
    strawberry.union("RemoveFromCartResult", description="The cart without the line, or why not."),
]
ApplyCouponResult = Annotated[
    ApplyCouponSuccess | _ACCESS | InvalidInputError | _COUPON | CartCheckedOutError,
    strawberry.union("ApplyCouponResult", description="The cart with the coupon, or why it was refused."),
]
RemoveCouponResult = Annotated[
    RemoveCouponSuccess | _ACCESS | CartCheckedOutError,
    strawberry.union("RemoveCouponResult", description="The cart without a coupon, or why not."),
]


# --- Orders ------------------------------------------------------------------------------------


@strawberry.type(description="A line of a confirmed order: a snapshot of what was bought and charged.")
class OrderLine:
    id: strawberry.ID = strawberry.field(description="The line's id.")
    add_on_code: str = strawberry.field(description="The add-on bought, by code.")
    name: str = strawberry.field(description="The add-on's name when bought.")
    cadence: CadenceEnum = strawberry.field(  # type: ignore[valid-type]
        description="Billed every month or once."
    )
    is_free: bool = strawberry.field(description="It cost nothing.")
    quantity: int = strawberry.field(description="Units bought.")
    unit_price: Money = strawberry.field(description="The unit price charged.")
    line_total: Money = strawberry.field(description="Unit price x quantity: per month, or once.")
    amount_due: Money = strawberry.field(
        description="Added to the next invoice: prorated by day (monthly) or in full (one-off)."
    )
    discount: Money = strawberry.field(description="The coupon's share of the discount on this line.")
    total: Money = strawberry.field(description="The amount due minus the discount.")
    active_add_on: ActiveAddOn | None = strawberry.field(
        description="The add-on this line activated, as My plan lists it; null: a one-off item that "
        "raises no limit (it appears in the order and the invoice only)."
    )

    @classmethod
    def of(cls, line: store_models.OrderLine, currency: str, active_add_on: ActiveAddOn | None) -> OrderLine:
        def amount(value: Decimal) -> Money:
            return Money.of(money.Money.of(value, currency))

        return cls(
            id=global_id("OrderLine", line.id),
            add_on_code=line.add_on_code,
            name=line.name,
            cadence=line.cadence,
            is_free=line.is_free,
            quantity=line.quantity,
            unit_price=amount(line.unit_price),
            line_total=amount(line.line_total),
            amount_due=amount(line.amount_due),
            discount=amount(line.discount),
            total=amount(line.total),
            active_add_on=active_add_on,
        )


@strawberry.type(description="The coupon an order redeemed, with its terms as they were at checkout.")
class OrderCoupon:
    code: str = strawberry.field(description="The coupon's code, in capitals.")
    kind: CouponKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="A percentage or an amount off."
    )
    percent_off: Decimal | None = strawberry.field(description="The percentage off (PERCENT coupons).")
    amount_off: Money | None = strawberry.field(
        description="The amount off, in the order's currency (FIXED coupons)."
    )
    duration: CouponDurationEnum = strawberry.field(  # type: ignore[valid-type]
        description="How long it keeps discounting the items bought."
    )
    duration_months: int | None = strawberry.field(description="The months discounted (REPEATING coupons).")

    @classmethod
    def of(cls, snapshot: dict[str, Any], currency: str) -> OrderCoupon:
        terms = coupon_service.terms_from_snapshot(snapshot)
        return cls(
            code=terms.code,
            kind=terms.kind,
            percent_off=terms.percent_off,
            amount_off=Money.of(money.Money.of(terms.amount_off, currency)) if terms.amount_off else None,
            duration=terms.duration,
            duration_months=terms.duration_months,
        )


@strawberry.type(description="A confirmed purchase, with the figures it was charged at.")
class Order:
    id: strawberry.ID = strawberry.field(description="The order's id.")
    idempotency_key: str = strawberry.field(description="The key the checkout that placed it was sent with.")
    created_at: dt.datetime = strawberry.field(description="When it was confirmed.")
    lines: list[OrderLine] = strawberry.field(description="What was bought.")
    coupon_code: str | None = strawberry.field(description="The coupon redeemed; null: none.")
    subtotal: Money = strawberry.field(description="What it added to the next invoice, before discount.")
    discount: Money = strawberry.field(description="The coupon's discount.")
    total: Money = strawberry.field(description="What it added to the next invoice.")
    monthly_increase: Money = strawberry.field(description="What the monthly bill grew by.")
    due_on_next_invoice: Money = strawberry.field(description="The monthly items prorated by day.")
    one_off_total: Money = strawberry.field(description="The one-off items, billed once.")
    new_monthly_total: Money = strawberry.field(description="The monthly price afterwards, before coupons.")
    period: BillingPeriod = strawberry.field(description="The billing period it was bought in.")
    currency: str = strawberry.field(description='The currency it was charged in (ISO 4217: "EUR").')
    coupon: OrderCoupon | None = strawberry.field(
        description="The coupon redeemed, with its terms at checkout; null: none."
    )
    placed_by: UserAccount | None = strawberry.field(
        description="The admin who confirmed it; null when that user was deleted since."
    )

    @classmethod
    def of(
        cls,
        result: checkout_service.CheckoutResult,
        active: dict[str, ActiveAddOn],
        placed_by: UserAccount | None = None,
    ) -> Order:
        """``active``: the add-ons it activated, by subscription id (loaded with the order, in one query);
        ``placed_by``: the user who confirmed it, when known (``orders`` loads it with the order)."""
        order = result.order
        currency = order.currency

        def amount(value: Decimal) -> Money:
            return Money.of(money.Money.of(value, currency))

        terms: dict[str, Any] | None = order.coupon_terms
        return cls(
            id=global_id("Order", order.id),
            idempotency_key=order.idempotency_key,
            created_at=order.created_at,
            lines=[
                OrderLine.of(line, currency, active.get(str(line.subscription_id))) for line in result.lines
            ],
            coupon_code=str(terms["code"]) if terms else None,
            currency=currency,
            placed_by=placed_by,
            coupon=OrderCoupon.of(terms, currency) if terms else None,
            subtotal=amount(order.subtotal),
            discount=amount(order.discount),
            total=amount(order.total),
            monthly_increase=amount(order.monthly_increase),
            due_on_next_invoice=amount(order.due_on_next_invoice),
            one_off_total=amount(order.one_off_total),
            new_monthly_total=amount(order.new_monthly_total),
            period=BillingPeriod(
                name=f"{order.period_start:%Y-%m}", start=order.period_start, end=order.period_end
            ),
        )


@strawberry.type(description="The purchase is confirmed and its add-ons are active.")
class CheckoutSuccess:
    order: Order = strawberry.field(description="The order placed.")
    active_add_ons: list[ActiveAddOn] = strawberry.field(
        description="The add-ons the purchase activated, as My plan lists them."
    )
    replayed: bool = strawberry.field(description="True when this idempotency key had already confirmed it.")
    principal: strawberry.Private[Principal]
    at: strawberry.Private[dt.datetime]

    # ``cart`` and ``myPlan`` are loaded only when asked for, from the request's one read of the plan
    # after the purchase (the checkout resolver dropped the one read before).
    async def _plan(self, info: Info) -> TenantPlan:
        return await info.context.tenant_plan(self.principal.tenant, self.at)

    @strawberry.field(
        description="The caller's cart after the purchase: emptied, with the same id as before."
    )
    async def cart(self, info: Info) -> Cart:
        view = await cart_service.current_cart(self.principal, await self._plan(info), self.at)
        return Cart.of(view, self.principal)

    @strawberry.field(description="My plan with the purchase counted: new limits included.")
    async def my_plan(self, info: Info) -> MyPlan:
        return MyPlan.of(await self._plan(info))

    @classmethod
    def of(
        cls, result: checkout_service.CheckoutResult, principal: Principal, now: dt.datetime
    ) -> CheckoutSuccess:
        active = {str(s.id): ActiveAddOn.of(s, now=now) for s in result.subscriptions}
        return cls(
            # Only its own admin may replay a checkout (IdempotencyKeyReused otherwise): the caller placed it.
            order=Order.of(
                result, active, placed_by=UserAccount.of(principal.user) if principal.user else None
            ),
            active_add_ons=list(active.values()),
            replayed=result.replayed,
            principal=principal,
            at=now,
        )


CheckoutResult = Annotated[
    CheckoutSuccess
    | _ACCESS
    | InvalidInputError
    | IdempotencyKeyReusedError
    | CartEmptyError
    | PriceChangedError
    | TotalChangedError
    | _CONDITIONS
    | _COUPON
    | CouponChangedError,
    strawberry.union("CheckoutResult", description="The confirmed purchase, or why nothing was charged."),
]


# --- Invoice preview ---------------------------------------------------------------------------


@strawberry.type(description="A line of an invoice.")
class InvoiceLine:
    kind: InvoiceLineKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="What it charges for."
    )
    code: str = strawberry.field(description="The plan's, add-on's or coupon's code.")
    description: str = strawberry.field(description="The line as the invoice words it.")
    quantity: int = strawberry.field(description="Units charged.")
    unit_price: Money = strawberry.field(description="The price of one unit for a whole period, or once.")
    days: int | None = strawberry.field(description="Days charged, for prorated lines; null otherwise.")
    amount: Money = strawberry.field(description="What the line adds to the invoice (negative: a discount).")


@strawberry.type(description="The invoice of a billing period as it stands; the lines add up to the total.")
class InvoicePreview:
    id: strawberry.ID = strawberry.field(description="The environment's invoice of this period.")
    period: BillingPeriod = strawberry.field(description="The billing period invoiced.")
    lines: list[InvoiceLine] = strawberry.field(description="The charges, then the discounts.")
    subtotal: Money = strawberry.field(description="The charges, before discounts.")
    discount: Money = strawberry.field(description="The discounts, as a positive amount.")
    total: Money = strawberry.field(description="The subtotal minus the discounts.")

    @classmethod
    def of(cls, invoice: pricing.Invoice, tenant_id: object) -> InvoicePreview:
        return cls(
            id=global_id("InvoicePreview", tenant_id, invoice.period.name),
            period=BillingPeriod.of(invoice.period),
            lines=[
                InvoiceLine(
                    kind=line.kind,
                    code=line.code,
                    description=line.description,
                    quantity=line.quantity,
                    unit_price=Money.of(line.unit_price),
                    days=line.days,
                    amount=Money.of(line.amount),
                )
                for line in invoice.lines
            ],
            subtotal=Money.of(invoice.subtotal),
            discount=Money.of(invoice.discount),
            total=Money.of(invoice.total),
        )


InvoicePreviewResult = Annotated[
    InvoicePreview | _ACCESS | InvalidPeriodError,
    strawberry.union("InvoicePreviewResult", description="The invoice of the period, or why not."),
]


# --- Root fields -------------------------------------------------------------------------------

AddOnCode = Annotated[
    str, strawberry.argument(description='The add-on\'s code, as the catalog lists it ("users-1").')
]


@strawberry.type
class Query:
    @strawberry.field(
        extensions=allow(scopes.TENANT_READ),
        description="The caller's cart and its summary (an empty one before anything is added). Admins "
        "of eligible environments only.",
    )
    async def cart(self, info: Info) -> CartResult | None:
        principal = await info.context.require_principal()
        view = await cart_service.view_cart(
            principal, eligible_since=info.context.settings.store_eligible_since, now=info.context.clock.now()
        )
        return Cart.of(view, principal)

    @strawberry.field(
        name="invoicePreview",
        extensions=allow(scopes.TENANT_READ),
        description="The invoice of a billing period as it stands. Admins of eligible environments only.",
    )
    async def invoice_preview(
        self,
        info: Info,
        period: Annotated[
            str | None,
            strawberry.argument(description='The billing period ("2026-11"); null: the current one.'),
        ] = None,
    ) -> InvoicePreviewResult | None:
        principal = await info.context.require_principal()
        invoice = await invoice_service.invoice_preview(
            principal,
            period_name=period,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return InvoicePreview.of(invoice, principal.tenant.id)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="addToCart",
        extensions=allow(),
        description="Add units of an add-on to the caller's cart, at the price shown now; an add-on "
        "already in the cart gets more units.",
    )
    async def add_to_cart(
        self,
        info: Info,
        add_on_code: AddOnCode,
        quantity: Annotated[int, strawberry.argument(description="Units to add, at least 1.")] = 1,
    ) -> AddToCartResult | None:
        principal = await info.context.require_principal()
        view = await cart_service.add_to_cart(
            principal,
            add_on_code=add_on_code,
            quantity=quantity,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return AddToCartSuccess(cart=Cart.of(view, principal))

    @strawberry.mutation(
        name="updateCartItem",
        extensions=allow(),
        description="Set the quantity of a line of the caller's cart; the line takes the current price.",
    )
    async def update_cart_item(
        self,
        info: Info,
        add_on_code: AddOnCode,
        quantity: Annotated[int, strawberry.argument(description="The line's new quantity, at least 1.")],
    ) -> UpdateCartItemResult | None:
        principal = await info.context.require_principal()
        view = await cart_service.update_cart_item(
            principal,
            add_on_code=add_on_code,
            quantity=quantity,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return UpdateCartItemSuccess(cart=Cart.of(view, principal))

    @strawberry.mutation(
        name="removeFromCart",
        extensions=allow(),
        description="Take an add-on's line out of the caller's cart.",
    )
    async def remove_from_cart(self, info: Info, add_on_code: AddOnCode) -> RemoveFromCartResult | None:
        principal = await info.context.require_principal()
        view = await cart_service.remove_from_cart(
            principal,
            add_on_code=add_on_code,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return RemoveFromCartSuccess(cart=Cart.of(view, principal))

    @strawberry.mutation(
        name="applyCoupon",
        extensions=allow(),
        description="Apply a discount coupon to the caller's cart, replacing any other.",
    )
    async def apply_coupon(
        self,
        info: Info,
        code: Annotated[
            str,
            strawberry.argument(description="The coupon's code; case and surrounding spaces do not matter."),
        ],
    ) -> ApplyCouponResult | None:
        principal = await info.context.require_principal()
        view = await cart_service.apply_coupon(
            principal,
            code=code,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return ApplyCouponSuccess(cart=Cart.of(view, principal))

    @strawberry.mutation(
        name="removeCoupon", extensions=allow(), description="Take the coupon off the caller's cart."
    )
    async def remove_coupon(self, info: Info) -> RemoveCouponResult | None:
        principal = await info.context.require_principal()
        view = await cart_service.remove_coupon(
            principal, eligible_since=info.context.settings.store_eligible_since, now=info.context.clock.now()
        )
        return RemoveCouponSuccess(cart=Cart.of(view, principal))

    @strawberry.mutation(
        extensions=allow(),
        description="Confirm the purchase of the caller's cart at the figures last shown with it "
        "(`TotalChangedError` otherwise): the add-ons are active at once. The same idempotency key "
        "returns the same order.",
    )
    async def checkout(
        self,
        info: Info,
        idempotency_key: Annotated[
            str,
            strawberry.argument(
                description="A key of the client's choosing for this purchase: a retry with the same key "
                "returns the same order and charges nothing more."
            ),
        ],
        expected_total: Annotated[
            Decimal | None,
            strawberry.argument(
                description="When given, the total this purchase must have (`TotalChangedError` otherwise)."
            ),
        ] = None,
    ) -> CheckoutResult | None:
        principal = await info.context.require_principal()
        now = info.context.clock.now()
        result = await checkout_service.checkout(
            principal,
            idempotency_key=idempotency_key,
            eligible_since=info.context.settings.store_eligible_since,
            now=now,
            expected_total=expected_total,
            broadcaster=info.context.services.broadcaster,
            plan_cache=info.context.services.plan_cache,
        )
        info.context.forget_tenant_plan(principal.tenant)
        return CheckoutSuccess.of(result, principal, now)
