"""The add-on store: ``cart``, ``invoicePreview``; ``addToCart``, ``updateCartItem``, ``removeFromCart``,
``applyCoupon``, ``removeCoupon``, ``checkout``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from app import money
from app.auth import scopes
from app.models import store as store_models
from app.models.enums import CouponDuration, CouponKind
from app.resolvers.account import ActiveAddOn
from app.resolvers.catalog import AddOn, CadenceEnum
from app.resolvers.common import BillingPeriod, Money
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
from app.services import cart as cart_service
from app.services import checkout as checkout_service
from app.services import coupons as coupon_service
from app.services import invoices as invoice_service
from app.services import pricing
from app.services.errors import DomainError

CouponKindEnum = strawberry.enum(CouponKind, name="CouponKind")
CouponDurationEnum = strawberry.enum(CouponDuration, name="CouponDuration")
InvoiceLineKindEnum = strawberry.enum(pricing.InvoiceLineKind, name="InvoiceLineKind")


# --- Errors ------------------------------------------------------------------------------------


@strawberry.type
class AddOnUnavailableError(Error):
    pass


@strawberry.type
class QuantityAboveMaximumError(Error):
    maximum: int | None = None
    already_contracted: int | None = strawberry.field(default=None, description="Units active or bought.")

    @classmethod
    def from_domain_error(cls, error: DomainError) -> QuantityAboveMaximumError:
        return cls(
            code=error.code,
            message=error.message,
            field=error.field,
            maximum=error.details.get("maximum"),
            already_contracted=error.details.get("already_contracted"),
        )


@strawberry.type
class NotAvailableForPlanError(Error):
    pass


@strawberry.type
class RequiredAddOnMissingError(Error):
    pass


@strawberry.type
class CouponNotFoundError(Error):
    pass


@strawberry.type
class CouponNotYetValidError(Error):
    pass


@strawberry.type
class CouponExpiredError(Error):
    pass


@strawberry.type
class CouponExhaustedError(Error):
    pass


@strawberry.type
class CouponAlreadyUsedError(Error):
    pass


@strawberry.type
class CouponNotApplicableError(Error):
    pass


@strawberry.type(description="The coupon's terms changed since it was applied: apply it again or remove it.")
class CouponChangedError(Error):
    pass


@strawberry.type
class CartEmptyError(Error):
    pass


@strawberry.type(description="A line whose catalog price is not the one seen when it was added.")
class PriceChange:
    add_on_code: str
    name: str
    seen_unit_price: Money
    current_unit_price: Money | None = strawberry.field(description="Null: no longer sold.")


@strawberry.type(description="Checkout refused to charge prices other than those shown: review the cart.")
class PriceChangedError(Error):
    changes: list[PriceChange]

    @classmethod
    def from_domain_error(cls, error: DomainError) -> PriceChangedError:
        assert isinstance(error, checkout_service.PriceChanged)
        return cls(
            code=error.code,
            message=error.message,
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


@strawberry.type(description="A purchase's figures, as a summary shows them.")
class PurchaseFigures:
    period: BillingPeriod
    subtotal: Money
    discount: Money
    total: Money
    monthly_increase: Money
    due_on_next_invoice: Money
    one_off_total: Money

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
    def from_domain_error(cls, error: DomainError) -> TotalChangedError:
        assert isinstance(error, checkout_service.TotalChanged)
        return cls(
            code=error.code,
            message=error.message,
            field=error.field,
            seen=PurchaseFigures.of(error.seen) if error.seen else None,
            current=PurchaseFigures.of(error.current),
        )


register_errors(
    {
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
    }
)


# --- Cart --------------------------------------------------------------------------------------


@strawberry.type(description="A line of the cart, priced as the summary shows it.")
class CartLine:
    add_on: AddOn
    add_on_code: str
    name: str
    quantity: int
    cadence: CadenceEnum  # type: ignore[valid-type]
    is_free: bool = strawberry.field(description='Shown as "GRÁTIS": costs nothing.')
    unit_price: Money = strawberry.field(description="The unit price seen when added: what checkout charges.")
    current_unit_price: Money | None = strawberry.field(description="The catalog price now; null: not sold.")
    price_changed: bool
    line_total: Money = strawberry.field(description="Unit price x quantity: per month, or once.")
    amount_due: Money = strawberry.field(
        description="On the next invoice: prorated by day (monthly) or in full."
    )
    discount: Money
    total: Money = strawberry.field(description="amountDue - discount.")
    coupon_applies: bool


@strawberry.type
class CartCoupon:
    code: str
    description: str
    kind: CouponKindEnum  # type: ignore[valid-type]
    percent_off: Decimal | None
    amount_off: Money | None
    duration: CouponDurationEnum  # type: ignore[valid-type]
    duration_months: int | None
    applies: bool = strawberry.field(description="Whether it discounts anything in the cart now.")
    changed_since_applied: bool = strawberry.field(
        description="Its terms changed since it was applied: checkout refuses until it is applied again."
    )


@strawberry.type(description='The "finish purchase" summary. Each total is the sum of the lines\' amounts.')
class CartSummary:
    subtotal: Money = strawberry.field(
        description="What this purchase adds to the next invoice, before discount."
    )
    discount: Money
    total: Money = strawberry.field(description="subtotal - discount.")
    monthly_increase: Money = strawberry.field(description="What the monthly bill grows by (before coupons).")
    due_on_next_invoice: Money = strawberry.field(
        description="The monthly items prorated by day from today to the end of the billing period."
    )
    one_off_total: Money = strawberry.field(description="One-off items (Start Pack), billed once.")
    new_monthly_total: Money = strawberry.field(
        description="The monthly price afterwards: plan, monthly add-ons and new ones, before coupons."
    )
    period: BillingPeriod
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


@strawberry.type
class Cart:
    id: strawberry.ID | None = strawberry.field(description="Null until something is added.")
    lines: list[CartLine]
    coupon: CartCoupon | None
    summary: CartSummary

    @classmethod
    def of(cls, view: cart_service.CartView) -> Cart:
        lines = []
        for line_view, priced in zip(view.lines, view.summary.lines, strict=True):
            line = line_view.line
            lines.append(
                CartLine(
                    add_on=AddOn.of(line.add_on),
                    add_on_code=line.add_on.code,
                    name=line.add_on.name,
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
        return cls(
            id=strawberry.ID(str(view.cart.id)) if view.cart else None,
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


@strawberry.type
class CartPayload:
    cart: Cart


_ACCESS = NotAdminError | NotEligibleError | NoActivePlanError
_LINE = NotFoundError | InvalidInputError | AddOnUnavailableError | QuantityAboveMaximumError
_CONDITIONS = NotAvailableForPlanError | RequiredAddOnMissingError
_COUPON = (
    CouponNotFoundError
    | CouponNotYetValidError
    | CouponExpiredError
    | CouponExhaustedError
    | CouponAlreadyUsedError
    | CouponNotApplicableError
)

AddToCartResult = Annotated[CartPayload | _ACCESS | _LINE | _CONDITIONS, strawberry.union("AddToCartResult")]
UpdateCartItemResult = Annotated[
    CartPayload | _ACCESS | _LINE | _CONDITIONS, strawberry.union("UpdateCartItemResult")
]
RemoveFromCartResult = Annotated[
    CartPayload | _ACCESS | NotFoundError, strawberry.union("RemoveFromCartResult")
]
ApplyCouponResult = Annotated[
    CartPayload | _ACCESS | InvalidInputError | _COUPON | CartCheckedOutError,
    strawberry.union("ApplyCouponResult"),
]
RemoveCouponResult = Annotated[
    CartPayload | _ACCESS | CartCheckedOutError, strawberry.union("RemoveCouponResult")
]


# --- Orders ------------------------------------------------------------------------------------


@strawberry.type(description="A line of a confirmed order: a snapshot of what was bought and charged.")
class OrderLine:
    add_on_code: str
    name: str
    cadence: CadenceEnum  # type: ignore[valid-type]
    is_free: bool
    quantity: int
    unit_price: Money
    line_total: Money
    amount_due: Money
    discount: Money
    total: Money
    subscription_id: strawberry.ID | None = strawberry.field(
        description="The add-on subscription it activated."
    )

    @classmethod
    def of(cls, line: store_models.OrderLine, currency: str) -> OrderLine:
        def amount(value: Decimal) -> Money:
            return Money.of(money.Money.of(value, currency))

        return cls(
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
            subscription_id=strawberry.ID(str(line.subscription_id)) if line.subscription_id else None,
        )


@strawberry.type
class Order:
    id: strawberry.ID
    idempotency_key: str
    created_at: dt.datetime
    lines: list[OrderLine]
    coupon_code: str | None
    subtotal: Money
    discount: Money
    total: Money
    monthly_increase: Money
    due_on_next_invoice: Money
    one_off_total: Money
    new_monthly_total: Money
    period: BillingPeriod

    @classmethod
    def of(cls, result: checkout_service.CheckoutResult) -> Order:
        order = result.order
        currency = order.currency

        def amount(value: Decimal) -> Money:
            return Money.of(money.Money.of(value, currency))

        terms: dict[str, Any] | None = order.coupon_terms
        return cls(
            id=strawberry.ID(str(order.id)),
            idempotency_key=order.idempotency_key,
            created_at=order.created_at,
            lines=[OrderLine.of(line, currency) for line in result.lines],
            coupon_code=str(terms["code"]) if terms else None,
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
    order: Order
    activated_add_ons: list[ActiveAddOn]
    replayed: bool = strawberry.field(description="True when this idempotency key had already confirmed it.")


CheckoutResult = Annotated[
    CheckoutSuccess
    | _ACCESS
    | InvalidInputError
    | IdempotencyKeyReusedError
    | CartEmptyError
    | PriceChangedError
    | TotalChangedError
    | AddOnUnavailableError
    | QuantityAboveMaximumError
    | _CONDITIONS
    | _COUPON
    | CouponChangedError,
    strawberry.union("CheckoutResult"),
]


# --- Invoice preview ---------------------------------------------------------------------------


@strawberry.type
class InvoiceLine:
    kind: InvoiceLineKindEnum  # type: ignore[valid-type]
    code: str
    description: str
    quantity: int
    unit_price: Money
    days: int | None = strawberry.field(description="Days charged, for prorated lines.")
    amount: Money


@strawberry.type(description="The invoice of a billing period as it stands; the lines add up to the total.")
class InvoicePreview:
    period: BillingPeriod
    lines: list[InvoiceLine]
    subtotal: Money
    discount: Money
    total: Money

    @classmethod
    def of(cls, invoice: pricing.Invoice) -> InvoicePreview:
        return cls(
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


# --- Root fields -------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(
        extensions=allow(scopes.TENANT_READ),
        description="The caller's open cart and its summary. Admins of eligible environments only.",
    )
    async def cart(self, info: Info) -> Cart:
        view = await cart_service.view_cart(
            await info.context.require_principal(),
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return Cart.of(view)

    @strawberry.field(
        name="invoicePreview",
        extensions=allow(scopes.TENANT_READ),
        description='The invoice of a billing period ("2026-11"; default: the current one). A bad period '
        "is an error with extensions.code INVALID_PERIOD (the type is API.md's, not a union).",
    )
    async def invoice_preview(self, info: Info, period: str | None = None) -> InvoicePreview:
        invoice = await invoice_service.invoice_preview(
            await info.context.require_principal(),
            period_name=period,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return InvoicePreview.of(invoice)


@strawberry.type
class Mutation:
    @strawberry.mutation(name="addToCart", extensions=allow())
    async def add_to_cart(self, info: Info, add_on_code: str, quantity: int | None = 1) -> AddToCartResult:
        view = await cart_service.add_to_cart(
            await info.context.require_principal(),
            add_on_code=add_on_code,
            quantity=quantity,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return CartPayload(cart=Cart.of(view))

    @strawberry.mutation(name="updateCartItem", extensions=allow())
    async def update_cart_item(self, info: Info, add_on_code: str, quantity: int) -> UpdateCartItemResult:
        view = await cart_service.update_cart_item(
            await info.context.require_principal(),
            add_on_code=add_on_code,
            quantity=quantity,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return CartPayload(cart=Cart.of(view))

    @strawberry.mutation(name="removeFromCart", extensions=allow())
    async def remove_from_cart(self, info: Info, add_on_code: str) -> RemoveFromCartResult:
        view = await cart_service.remove_from_cart(
            await info.context.require_principal(),
            add_on_code=add_on_code,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return CartPayload(cart=Cart.of(view))

    @strawberry.mutation(
        name="applyCoupon",
        extensions=allow(),
        description="Codes are case-insensitive; surrounding spaces are ignored.",
    )
    async def apply_coupon(self, info: Info, code: str) -> ApplyCouponResult:
        view = await cart_service.apply_coupon(
            await info.context.require_principal(),
            code=code,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return CartPayload(cart=Cart.of(view))

    @strawberry.mutation(name="removeCoupon", extensions=allow())
    async def remove_coupon(self, info: Info) -> RemoveCouponResult:
        view = await cart_service.remove_coupon(
            await info.context.require_principal(),
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
        )
        return CartPayload(cart=Cart.of(view))

    @strawberry.mutation(
        extensions=allow(),
        description="Confirm the purchase at the figures last shown with the cart (TOTAL_CHANGED "
        "otherwise): the same idempotency key returns the same order.",
    )
    async def checkout(
        self,
        info: Info,
        idempotency_key: str,
        expected_total: Annotated[
            Decimal | None,
            strawberry.argument(description="When given, the total this purchase must have (TOTAL_CHANGED)."),
        ] = None,
    ) -> CheckoutResult:
        result = await checkout_service.checkout(
            await info.context.require_principal(),
            idempotency_key=idempotency_key,
            eligible_since=info.context.settings.store_eligible_since,
            now=info.context.clock.now(),
            expected_total=expected_total,
            broadcaster=info.context.services.broadcaster,
            plan_cache=info.context.services.plan_cache,
        )
        return CheckoutSuccess(
            order=Order.of(result),
            activated_add_ons=[ActiveAddOn.of(s, now=info.context.clock.now()) for s in result.subscriptions],
            replayed=result.replayed,
        )
