"""The cart of the add-on store (seed 000, "Como contratar um complemento"): one open cart per admin,
conditions checked on every change, a coupon, and the "finish purchase" summary.

Writes racing a checkout (issue 11): every write of a cart (its lines, its coupon) runs in a
transaction whose first statement is a conditional UPDATE of the cart row while it is open
(``_hold_open``). That takes the row's lock, which checkout's closing UPDATE also takes, so a write
and a checkout of one cart happen one after the other, never interleaved: a write that came first is
in the order; a write that came second finds the cart closed and says so (lines and coupon edits
answer an error, ``addToCart`` goes to a new cart). The answer is built in the same transaction,
from the row re-read under the lock, so it shows what was written and nothing else.

The quote: every answer with a cart (the ``cart`` query and each write) records the purchase
figures it showed in ``Cart.quote`` (one conditional UPDATE, only when they changed; a write
records them in its own transaction). Checkout confirms those figures or refuses
(``app.services.checkout``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from app import money
from app.auth.principal import Principal
from app.i18n import _
from app.models.billing import PlanSubscription
from app.models.catalog import AddOn
from app.models.coupons import Coupon
from app.models.enums import Cadence
from app.models.store import Cart, CartLine, CartStatus, OrderLine
from app.services import coupons as coupon_rules
from app.services import pricing, sql
from app.services.access import require_store_access
from app.services.catalog import MAX_CODE_LENGTH, plausible_code, prices_for, require_sold_for
from app.services.errors import DomainError, ErrorCode, InvalidInput, NotFound, UnsupportedCurrency
from app.services.subscriptions import TenantPlan, load_tenant_plan

MAX_LINE_QUANTITY = 1000  # a sanity bound for add-ons without a maximum of their own


class CartBusy(DomainError):
    code = ErrorCode.CART_BUSY
    default_message = _("The cart was being confirmed at the same moment; try again.")


class CartCheckedOut(DomainError):
    code = ErrorCode.CART_CHECKED_OUT
    default_message = _("This cart was just confirmed by a checkout: the change was not made.")


class AddOnUnavailable(DomainError):
    code = ErrorCode.ADD_ON_UNAVAILABLE
    default_message = _("This add-on is no longer sold.")


class QuantityAboveMaximum(DomainError):
    code = ErrorCode.QUANTITY_ABOVE_MAXIMUM
    default_message = _("That is more than this add-on may be contracted.")


class NotAvailableForPlan(DomainError):
    code = ErrorCode.NOT_AVAILABLE_FOR_PLAN
    default_message = _("This add-on is not available for the environment's plan.")


class RequiredAddOnMissing(DomainError):
    code = ErrorCode.REQUIRED_ADD_ON_MISSING
    default_message = _("This add-on needs another add-on, active or in the cart.")


@dataclass(frozen=True, slots=True)
class CartLineView:
    line: CartLine  # with ``add_on`` loaded
    current_price: money.Money | None  # the catalog price now; None when no longer sold

    @property
    def seen_price(self) -> money.Money:
        return money.Money.of(self.line.unit_price, self.line.currency)

    @property
    def price_changed(self) -> bool:
        return self.current_price is None or self.current_price != self.seen_price


@dataclass(frozen=True, slots=True)
class CartView:
    cart: Cart | None  # None until the admin adds something
    lines: list[CartLineView]
    coupon: Coupon | None
    summary: pricing.Summary
    coupon_changed: bool = False  # its terms are no longer those shown when it was applied


def catalog_price(add_on: AddOn, currency: str, erp: str | None) -> money.Money:
    """The price of one unit for an environment in ``currency`` running ``erp`` (an add-on sold per
    ERP: its ERP's price, ``NotSoldForErp`` where it is quote-only)."""
    prices = require_sold_for(add_on, erp)
    try:
        return money.price_in(prices, currency)
    except money.UnsupportedCurrencyError:
        raise UnsupportedCurrency(
            _("{name} is not sold in {currency}.", name=add_on.name, currency=currency),
            field="addOnCode",
            currency=currency,
            available_currencies=sorted(prices),
        ) from None


def current_price(add_on: AddOn, currency: str, erp: str | None) -> money.Money | None:
    """The catalog price now for this environment; None when it cannot be bought (withdrawn, not sold
    in the currency or for the ERP)."""
    prices = prices_for(add_on, erp) if add_on.is_active else None
    if prices is None or currency not in prices:
        return None
    return money.price_in(prices, currency)


def plan_price(subscription: PlanSubscription, currency: str) -> money.Money:
    """The plan's monthly price for this subscription: the price it was contracted at, which a later
    change of the catalog never alters (docs/catalog.md); the catalog's price for a row without one."""
    if subscription.unit_price is not None and subscription.currency == currency:
        return money.Money.of(subscription.unit_price, currency)
    return money.price_in(subscription.plan.prices, currency)


def current_monthly_total(view: TenantPlan) -> money.Money:
    """What the subscription costs per month from the next period on: the plan and the monthly
    add-ons that are not being cancelled (add-ons are billed at their contract price)."""
    currency = view.tenant.currency
    total = plan_price(view.subscription, currency)
    for subscription in view.add_ons:
        if subscription.add_on.cadence == Cadence.MONTHLY and subscription.ends_at is None:
            total += money.Money.of(subscription.unit_price, subscription.currency).times(
                subscription.quantity
            )
    return total


async def one_off_quantities_ordered(
    tenant_id: uuid.UUID | str, add_on_ids: Iterable[uuid.UUID | str]
) -> dict[str, int]:
    """Quantities of one-off items already bought that left no subscription behind (Start Pack)."""
    rows = (
        await OrderLine.filter(
            order__tenant_id=tenant_id, add_on_id__in=list(add_on_ids), subscription_id__isnull=True
        )
        .group_by("add_on_id")
        .annotate(total=Sum("quantity"))
        .values("add_on_id", "total")
    )
    return {str(row["add_on_id"]): int(row["total"] or 0) for row in rows}


async def already_contracted(view: TenantPlan, add_ons: Iterable[AddOn]) -> dict[str, int]:
    """Units of each add-on the tenant already has, by code: the subscriptions counting now, plus
    one-off items bought that left no subscription behind (a Start Pack is bought once)."""
    active_quantity: dict[str, int] = {}
    for subscription in view.add_ons:
        code = subscription.add_on.code
        active_quantity[code] = active_quantity.get(code, 0) + subscription.quantity
    one_offs = [add_on for add_on in add_ons if add_on.cadence == Cadence.ONE_OFF]
    ordered = await one_off_quantities_ordered(view.tenant.id, [a.id for a in one_offs]) if one_offs else {}
    for add_on in one_offs:
        active_quantity[add_on.code] = active_quantity.get(add_on.code, 0) + ordered.get(str(add_on.id), 0)
    return active_quantity


def maximum_of(add_on: AddOn) -> int:
    return add_on.max_quantity if add_on.max_quantity is not None else MAX_LINE_QUANTITY


async def room_for(view: TenantPlan, add_on: AddOn) -> int:
    """How many units of ``add_on`` a cart line may hold at most."""
    return maximum_of(add_on) - (await already_contracted(view, [add_on])).get(add_on.code, 0)


async def contracted_quantity(view: TenantPlan, add_on: AddOn) -> int:
    return (await already_contracted(view, [add_on])).get(add_on.code, 0)


async def check_conditions(
    view: TenantPlan, wanted: list[tuple[AddOn, int]], *, in_cart: set[str], field: str = "addOnCode"
) -> None:
    """The add-on's own conditions (seed 000: "Cada complemento possui condições próprias"):
    still sold, the plan may buy it, at most ``max_quantity`` counting what is already active,
    and the add-ons it requires active or in the cart."""
    plan_code = view.subscription.plan.code
    contracted = await already_contracted(view, [add_on for add_on, _ in wanted])
    active_codes = {subscription.add_on.code for subscription in view.add_ons}
    for add_on, quantity in wanted:
        if not add_on.is_active:
            raise AddOnUnavailable(
                _("{name} ({code}) is no longer sold.", name=add_on.name, code=add_on.code),
                field=field,
                add_on_code=add_on.code,
            )
        require_sold_for(add_on, view.tenant.erp, field=field)  # its ERP may have changed since
        if add_on.eligible_plan_codes and plan_code not in add_on.eligible_plan_codes:
            raise NotAvailableForPlan(
                _(
                    "{name} is available for the plans {plans} only.",
                    name=add_on.name,
                    plans=", ".join(add_on.eligible_plan_codes),
                ),
                field=field,
                add_on_code=add_on.code,
                eligible_plan_codes=list(add_on.eligible_plan_codes),
            )
        already = contracted.get(add_on.code, 0)
        maximum = maximum_of(add_on)
        if already + quantity > maximum:
            raise QuantityAboveMaximum(
                _(
                    "{name}: at most {maximum} in all; {already} already contracted, {quantity} requested.",
                    name=add_on.name,
                    maximum=maximum,
                    already=already,
                    quantity=quantity,
                ),
                field="quantity",
                add_on_code=add_on.code,
                maximum=maximum,
                already_contracted=already,
            )
        missing = [
            code for code in add_on.requires_add_on_codes if code not in active_codes and code not in in_cart
        ]
        if missing:
            raise RequiredAddOnMissing(
                _(
                    "{name} requires {required}, active or in the cart.",
                    name=add_on.name,
                    required=", ".join(missing),
                ),
                field=field,
                add_on_code=add_on.code,
                required_add_on_codes=missing,
            )


def validate_quantity(quantity: int | None) -> int:
    """At least 1 (the schema's ``quantity: Int = 1`` also lets a client send an explicit null)."""
    if quantity is None or quantity < 1:
        raise InvalidInput(
            _("The quantity must be at least 1; use removeFromCart to remove a line."), field="quantity"
        )
    return quantity


async def _open_cart(principal: Principal) -> Cart | None:
    assert principal.user is not None  # require_store_access: admins are users
    return await Cart.get_or_none(open_owner=str(principal.user.id))


async def _get_or_create_cart(principal: Principal, now: dt.datetime, cart: Cart | None) -> Cart:
    """``cart``, the open cart just read (None: there was none), or a new one."""
    assert principal.user is not None
    if cart is not None:
        return cart
    try:
        return await Cart.create(
            tenant_id=principal.tenant.id,
            user_id=principal.user.id,
            open_owner=str(principal.user.id),
            created_at=now,
            updated_at=now,
        )
    except IntegrityError:  # a concurrent request opened it first (autocommit: nothing to roll back)
        return await Cart.get(open_owner=str(principal.user.id))


async def _lines_of(cart: Cart | None) -> list[CartLine]:
    if cart is None:
        return []
    return await CartLine.filter(cart_id=cart.id).select_related("add_on").order_by("position")


async def add_on_on_sale(code: str) -> AddOn:
    """The add-on with this code: unknown codes are ``NotFound``, withdrawn ones ``AddOnUnavailable``."""
    normalised = plausible_code(code)
    add_on = await AddOn.get_or_none(code=normalised) if normalised else None
    if add_on is None:
        raise NotFound(_("No add-on with code {code}.", code=repr(code[:MAX_CODE_LENGTH])), field="addOnCode")
    if not add_on.is_active:
        raise AddOnUnavailable(
            _("{name} ({code}) is no longer sold.", name=add_on.name, code=add_on.code),
            field="addOnCode",
            add_on_code=add_on.code,
        )
    return add_on


def summarize_lines(
    view: TenantPlan, lines: list[CartLine], coupon: pricing.CouponTerms | None, now: dt.datetime
) -> pricing.Summary:
    items = [
        pricing.CartItem(
            code=line.add_on.code,
            name=line.add_on.name,
            category=line.add_on.category.value,
            cadence=line.add_on.cadence,
            is_free=line.add_on.is_free,
            unit_price=money.Money.of(line.unit_price, line.currency),
            quantity=line.quantity,
        )
        for line in lines
    ]
    return pricing.summarize(
        items,
        currency=view.tenant.currency,
        period=view.period,
        today=now.astimezone(dt.UTC).date(),
        coupon=coupon,
        current_monthly_total=current_monthly_total(view),
    )


async def build_view(view: TenantPlan, cart: Cart | None, now: dt.datetime) -> CartView:
    lines = await _lines_of(cart)
    coupon = await Coupon.get_or_none(id=cart.coupon_id) if cart is not None and cart.coupon_id else None
    terms = None
    if coupon is not None and coupon.is_active:
        try:
            terms = coupon_rules.terms_of(coupon, view.tenant.currency)
        except coupon_rules.CouponNotApplicable:
            terms = None
    currency = view.tenant.currency
    line_views = []
    for line in lines:
        line_views.append(CartLineView(line, current_price(line.add_on, currency, view.tenant.erp)))
    changed = coupon is not None and cart is not None and coupon_rules.terms_changed(cart.coupon_terms, terms)
    return CartView(cart, line_views, coupon, summarize_lines(view, lines, terms, now), changed)


async def record_quote(cart: Cart, summary: pricing.Summary) -> None:
    """Remember the purchase figures shown with this open cart (only when they changed)."""
    await record_quote_of(cart, pricing.Quote.of(summary))


async def record_quote_of(cart: Cart, quote: pricing.Quote) -> None:
    figures = quote.to_json()
    if cart.quote != figures:
        await Cart.filter(id=cart.id, status=CartStatus.OPEN).update(quote=figures)
        cart.quote = figures


async def _answer(view: TenantPlan, cart: Cart, now: dt.datetime) -> CartView:
    """The cart as a write leaves it, its figures recorded (call in the write's transaction)."""
    answer = await build_view(view, cart, now)
    await record_quote(cart, answer.summary)
    return answer


async def _access(principal: Principal, eligible_since: dt.date, now: dt.datetime) -> TenantPlan:
    require_store_access(principal, eligible_since=eligible_since)
    return await load_tenant_plan(principal.tenant, now=now)


async def view_cart(principal: Principal, *, eligible_since: dt.date, now: dt.datetime) -> CartView:
    """The admin's open cart with its summary (an empty one if none is open). The figures shown are
    recorded as the cart's quote, which checkout confirms."""
    return await current_cart(principal, await _access(principal, eligible_since, now), now)


async def current_cart(principal: Principal, view: TenantPlan, now: dt.datetime) -> CartView:
    """The admin's open cart as it stands (an empty one if none is open), priced with ``view``, its
    figures recorded as its quote: the ``cart`` query, and the emptied cart a checkout answers with."""
    answer = await build_view(view, await _open_cart(principal), now)
    if answer.cart is not None:
        await record_quote(answer.cart, answer.summary)
    return answer


async def add_to_cart(
    principal: Principal, *, add_on_code: str, quantity: int | None, eligible_since: dt.date, now: dt.datetime
) -> CartView:
    """Add ``quantity`` units; a repeated add-on merges into its line. The line keeps the price
    shown now, which checkout holds the purchase to.

    Concurrent adds of one add-on cannot pass its maximum together: the line's quantity only moves
    through one conditional upsert (``quantity + n <= room``) in the service's transaction.
    """
    view = await _access(principal, eligible_since, now)
    quantity = validate_quantity(quantity)
    add_on = await add_on_on_sale(add_on_code)
    price = catalog_price(add_on, view.tenant.currency, view.tenant.erp)
    open_cart = await _open_cart(principal)
    lines = await _lines_of(open_cart)
    existing = next((line for line in lines if line.add_on_id == add_on.id), None)
    in_cart = {line.add_on.code for line in lines} | {add_on.code}
    await check_conditions(
        view, [(add_on, quantity + (existing.quantity if existing else 0))], in_cart=in_cart
    )
    room = await room_for(view, add_on)
    for _attempt in range(3):
        cart = await _get_or_create_cart(principal, now, open_cart)
        async with in_transaction():
            held = await _hold_open(cart, now)
            if held is None:
                open_cart = await _open_cart(principal)  # checked out meanwhile: the add goes to a new cart
                continue
            await _add_line(held, add_on, quantity, price, room, lines, view, now)
            return await _answer(view, held, now)
    raise CartBusy()


async def _hold_open(cart: Cart, now: dt.datetime) -> Cart | None:
    """Touch the cart row while it is open, first in the transaction: this takes the row's lock, so a
    checkout of this cart either finished before (and this edit goes elsewhere) or waits for this edit
    and buys it. Never an edit landing in a cart that was closed without it. Returns the row as it is
    under the lock (its coupon and quote as the last write left them; the UPDATE returns it), None when
    it is closed."""
    row = await sql.fetch_first(
        returning_cart('UPDATE "cart" SET "updated_at" = {1} WHERE "id" = {0} AND "status" = {2}'),
        cart.id,
        now,
        CartStatus.OPEN.value,
    )
    return None if row is None else cart_of(row)


@cache
def returning_cart(update: str) -> str:
    """``update``, an UPDATE of the cart table (``app.services.sql`` template), returning every column of
    the row it leaves: built on first use, once the ORM knows every column (foreign keys included)."""
    return f"{update} RETURNING " + ", ".join(f'"{column}"' for column in sorted(Cart._meta.db_fields))


def cart_of(row: dict[str, Any]) -> Cart:
    """The cart a ``returning_cart`` statement returned, converted as the ORM converts."""
    return Cart._init_from_db(**{column: row[column] for column in Cart._meta.db_fields})


# A line's quantity moves here only (besides ``updateCartItem``): inserted, or added to within the room.
_ADD_LINE = (
    'INSERT INTO "cart_line" ("id", "cart_id", "add_on_id", "position", "quantity", "unit_price", "currency",'
    ' "added_at") VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})'
    ' ON CONFLICT ("cart_id", "add_on_id") DO UPDATE'
    ' SET "quantity" = "cart_line"."quantity" + {4}, "unit_price" = {5}, "currency" = {6}'
    ' WHERE "cart_line"."quantity" <= {8} RETURNING "id"'
)


async def _add_line(
    cart: Cart,
    add_on: AddOn,
    quantity: int,
    price: money.Money,
    room: int,
    lines: list[CartLine],
    view: TenantPlan,
    now: dt.datetime,
) -> None:
    """Merge ``quantity`` into the add-on's line, within ``room``: one upsert, whose update only passes
    while the line holds at most ``room - quantity`` (a new line holds ``quantity``, which
    ``check_conditions`` found within ``room``; a concurrent add of the same add-on makes it an update)."""
    added = await sql.fetch_all(
        _ADD_LINE,
        uuid.uuid4(),
        cart.id,
        add_on.id,
        max((line.position for line in lines), default=-1) + 1,
        quantity,
        price.amount,
        price.currency,
        now,
        room - quantity,
    )
    if not added:
        raise QuantityAboveMaximum(
            _(
                "{name}: the cart may hold at most {maximum} (another request just added some).",
                name=add_on.name,
                maximum=max(room, 0),
            ),
            field="quantity",
            add_on_code=add_on.code,
            maximum=maximum_of(add_on),
            already_contracted=await contracted_quantity(view, add_on),
        )


async def update_cart_item(
    principal: Principal, *, add_on_code: str, quantity: int, eligible_since: dt.date, now: dt.datetime
) -> CartView:
    """Set a line's quantity (at least 1). The line takes the current price, which the admin sees."""
    view = await _access(principal, eligible_since, now)
    validate_quantity(quantity)
    cart = await _open_cart(principal)
    lines = await _lines_of(cart)
    line = next((line for line in lines if line.add_on.code == plausible_code(add_on_code)), None)
    if cart is None or line is None:
        raise NotFound(
            _("{add_on_code} is not in the cart.", add_on_code=repr(add_on_code[:MAX_CODE_LENGTH])),
            field="addOnCode",
        )
    await check_conditions(view, [(line.add_on, quantity)], in_cart={line.add_on.code for line in lines})
    price = catalog_price(line.add_on, view.tenant.currency, view.tenant.erp)
    async with in_transaction():
        held = await _hold_open(cart, now)
        if held is None:
            raise CartCheckedOut(
                _("This cart was just confirmed by a checkout: the quantity was not changed.")
            )
        await CartLine.filter(id=line.id).update(
            quantity=quantity, unit_price=price.amount, currency=price.currency
        )
        return await _answer(view, held, now)


async def remove_from_cart(
    principal: Principal, *, add_on_code: str, eligible_since: dt.date, now: dt.datetime
) -> CartView:
    view = await _access(principal, eligible_since, now)
    cart = await _open_cart(principal)
    line = None
    code = plausible_code(add_on_code)
    if cart is not None and code is not None:
        line = await CartLine.get_or_none(cart_id=cart.id, add_on__code=code)
    if cart is None or line is None:
        raise NotFound(
            _("{add_on_code} is not in the cart.", add_on_code=repr(add_on_code[:MAX_CODE_LENGTH])),
            field="addOnCode",
        )
    async with in_transaction():
        held = await _hold_open(cart, now)
        if held is None:
            raise CartCheckedOut(
                _("This cart was just confirmed by a checkout, with this line: it was not removed.")
            )
        await CartLine.filter(id=line.id).delete()
        return await _answer(view, held, now)


async def apply_coupon(
    principal: Principal, *, code: str, eligible_since: dt.date, now: dt.datetime
) -> CartView:
    """Attach a coupon to the cart; the summary shows the discount at once. Rejections say why.
    A cart confirmed meanwhile is ``CartCheckedOut``: its order was placed without this coupon."""
    view = await _access(principal, eligible_since, now)
    coupon = await coupon_rules.find_coupon(code)
    await coupon_rules.check_usable(coupon, tenant_id=view.tenant.id, now=now)
    terms = coupon_rules.terms_of(coupon, view.tenant.currency)
    cart = await _open_cart(principal)
    if cart is None:
        raise coupon_rules.CouponNotApplicable(
            _("Coupon {code} applies to nothing in the cart.", code=coupon.code), field="code"
        )
    async with in_transaction():
        held = await _hold_open(cart, now)
        if held is None:
            raise CartCheckedOut(
                _(
                    "This cart was just confirmed without coupon {code}: it was not applied.",
                    code=coupon.code,
                ),
                field="code",
            )
        if not summarize_lines(view, await _lines_of(held), terms, now).coupon_applies:
            raise coupon_rules.CouponNotApplicable(
                _("Coupon {code} applies to nothing in the cart.", code=coupon.code), field="code"
            )
        # The terms shown now are kept: checkout refuses to apply other terms silently.
        snapshot = coupon_rules.terms_snapshot(terms)
        await Cart.filter(id=held.id).update(coupon_id=coupon.id, coupon_terms=snapshot)
        held.coupon_id = str(coupon.id)
        held.coupon_terms = snapshot
        return await _answer(view, held, now)


async def remove_coupon(principal: Principal, *, eligible_since: dt.date, now: dt.datetime) -> CartView:
    """Take the coupon off the open cart. A cart confirmed meanwhile is ``CartCheckedOut``: its order
    kept the coupon (the answer never reports a removal that did not happen)."""
    view = await _access(principal, eligible_since, now)
    cart = await _open_cart(principal)
    if cart is None:
        assert principal.user is not None
        if await Cart.exists(user_id=principal.user.id, status=CartStatus.CHECKED_OUT):
            # Most likely the cart the admin is looking at, confirmed meanwhile with its coupon.
            raise CartCheckedOut(
                _("There is no open cart: the last one was confirmed, with its coupon if it had one.")
            )
        return await build_view(view, None, now)
    async with in_transaction():
        held = await _hold_open(cart, now)
        if held is None:
            raise CartCheckedOut(
                _("This cart was just confirmed with its coupon: the coupon was not removed.")
            )
        if held.coupon_id is not None:
            await Cart.filter(id=held.id).update(coupon_id=None, coupon_terms=None)
            held.coupon_id = None
            held.coupon_terms = None
        return await _answer(view, held, now)
