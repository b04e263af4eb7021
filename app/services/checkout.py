"""Confirming a purchase (seed 000: "Confirmar compra"): one transaction that revalidates the cart,
records the order, activates the add-ons, redeems the coupon, closes the cart, audits and queues
the e-mails to the tenant's admins.

Decisions:
- The cart holds the unit price the admin saw; if the catalog price moved since, checkout answers
  ``PriceChanged`` listing the lines instead of charging another amount. ``updateCartItem`` (or
  adding again) takes the new price. Likewise the cart keeps the coupon's terms when applied, and
  changed terms are ``CouponChanged``; changed conditions are the condition's own error.
- Monthly items become ``AddOnSubscription`` rows at once (the limits grow the moment the purchase
  is confirmed). One-off items are recorded in the order; they become a subscription row only when
  they raise a limit or grant a feature (the Start Pack does neither, so it appears in the order and
  in the invoice, not in My plan).
- Limits hold across admins and instances: the transaction's first statement takes the tenant's
  lock (``app.services.locks.lock_tenant``), so two checkouts of one tenant run their
  ``max_quantity`` check and their purchase one after the other, on every instance (the lock is the
  tenant's row in the database; SQLite serialises writers anyway). Lock order is tenant, then cart:
  cart edits take the cart row only and never the tenant, and usage reports the tenant only, so no
  two transactions wait on each other in opposite orders. Taking the tenant first also means a
  checkout waiting for another of its tenant holds no cart lock meanwhile, so that admin's cart
  edits are not blocked behind another admin's purchase. A row lock rather than a constraint:
  ``max_quantity`` counts several tables (subscriptions and one-off order lines), which no unique
  index expresses; rather than an advisory lock: the row lock needs no PostgreSQL-only call.
- A checkout confirms the amount the admin saw. Every answer with a cart (the ``cart`` query, each
  cart write) records the purchase figures it showed (``Cart.quote``: period, subtotal, discount,
  total, monthly increase, prorated part, one-off part). Checkout recomputes them, under the lock
  that closes the cart, and refuses with ``TotalChanged`` (code ``TOTAL_CHANGED``, the figures seen
  and the current ones) when they differ: the billing period turned between the summary and the
  confirmation (a prorated 6.39 became a full 198.00), a day passed (fewer days prorated), the
  coupon was removed in another tab... The refusal writes nothing but the new figures as the cart's quote
  (after the rollback), so confirming again, having been shown them, succeeds. ``expectedTotal``,
  when given, must also equal the total. A cart with no quote recorded (older than the rule)
  is confirmed as it stands.
- Coupon and cart edits racing a checkout: checkout reads the cart row (coupon, its terms, the
  quote) from its closing UPDATE (``RETURNING``), under the row lock every cart write also takes
  first (``app.services.cart``): an edit committed before is in the order, one after finds the cart
  closed. Never a copy read before the lock.
- Idempotency: the order is unique per (tenant, idempotency key). A retry with the same key returns
  the stored order; while the caller has another non-empty cart open, or for another admin, it is
  ``IdempotencyKeyReused``. Concurrent
  calls race on the unique index; the losers roll back and read the winner's order outside their
  failed transaction (on PostgreSQL a failed statement aborts the transaction).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app import money
from app.auth.principal import Principal
from app.broadcast import Broadcaster
from app.i18n import Text, _
from app.models.billing import AddOnSubscription
from app.models.catalog import AddOn
from app.models.coupons import Coupon
from app.models.enums import Cadence, ConfigurationStatus
from app.models.store import Cart, CartLine, CartStatus, Order, OrderLine
from app.notifications import emails
from app.notifications.outbox import notify_admins
from app.services import alerts, audit, pricing, sql, usage_reports, webhook_events
from app.services import cart as cart_rules
from app.services import coupons as coupon_rules
from app.services.access import require_store_access
from app.services.errors import DomainError, ErrorCode, InvalidInput
from app.services.idempotency import IdempotencyKeyReused, fingerprint, validate_key
from app.services.limits import Limits, effective_limits
from app.services.locks import lock_tenant
from app.services.plan_cache import PlanCache, plan_changed
from app.services.subscriptions import load_tenant_plan
from app.services.webhook_events import EventType

MAX_AMOUNT = Decimal(10) ** 10  # the amount columns hold 12 digits, 2 of them decimals


class EmptyCart(DomainError):
    code = ErrorCode.CART_EMPTY
    default_message = _("The cart is empty: add something before confirming the purchase.")


@dataclass(frozen=True, slots=True)
class PriceChange:
    add_on_code: str
    name: str
    seen: money.Money
    current: money.Money | None  # None: no longer sold in the tenant's currency


class PriceChanged(DomainError):
    code = ErrorCode.PRICE_CHANGED
    default_message = _("Prices changed since these items were added: review the cart and confirm again.")

    def __init__(self, changes: list[PriceChange]) -> None:
        names = ", ".join(change.add_on_code for change in changes)
        super().__init__(
            _("Prices changed since these items were added: {names}. Review the cart.", names=names)
        )
        self.changes = changes


class TotalChanged(DomainError):
    code = ErrorCode.TOTAL_CHANGED
    default_message = _(
        "The total changed since the summary was shown: review the new figures and confirm again."
    )

    def __init__(
        self, cart_id: str, seen: pricing.Quote | None, current: pricing.Quote, *, reason: Text | None = None
    ) -> None:
        now = {"total": str(current.total), "period": current.period.name}
        if reason is None and seen is None:
            reason = _(
                "The total is now {total} for {period}, not the amount shown: review the new figures and "
                "confirm again.",
                **now,
            )
        elif reason is None and seen is not None:
            reason = _(
                "The total is now {total} for {period}, not the {seen_total} for {seen_period} shown: "
                "review the new figures and confirm again.",
                **now,
                seen_total=str(seen.total),
                seen_period=seen.period.name,
            )
        super().__init__(reason)
        self.cart_id = cart_id
        self.seen = seen
        self.current = current


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    order: Order
    lines: list[OrderLine]
    subscriptions: list[AddOnSubscription]  # activated by the order, with ``add_on`` loaded
    replayed: bool


_CLOSE_CART = (
    'UPDATE "cart" SET "status" = {1}, "open_owner" = NULL, "checked_out_at" = {2}, "updated_at" = {2}'
    ' WHERE "open_owner" = {0} AND "status" = {3}'
)


class _KeyTaken(Exception):
    """Another checkout with the same key committed first."""


def cart_fingerprint(cart: Cart, lines: list[CartLine]) -> str:
    """The request a key stands for: this cart (another cart is another purchase), its lines and coupon."""
    coupon_id = cart.coupon_id
    return fingerprint(
        {
            "cart": str(cart.id),
            "lines": sorted((str(line.add_on_id), line.quantity, str(line.unit_price)) for line in lines),
            "coupon": str(coupon_id) if coupon_id else None,
        }
    )


def activates_subscription(cadence: Cadence, *, has_increments: bool, has_features: bool) -> bool:
    return cadence == Cadence.MONTHLY or has_increments or has_features


async def checkout(
    principal: Principal,
    *,
    idempotency_key: str,
    eligible_since: dt.date,
    now: dt.datetime,
    expected_total: Decimal | None = None,
    broadcaster: Broadcaster | None = None,
    plan_cache: PlanCache | None = None,
) -> CheckoutResult:
    """Confirm the admin's cart at the figures last shown. Same key, same order. The new limits may
    resolve usage alerts."""
    require_store_access(principal, eligible_since=eligible_since)
    key = validate_key(idempotency_key)
    if expected_total is not None and not (expected_total.is_finite() and abs(expected_total) < MAX_AMOUNT):
        raise InvalidInput(_("The expected total must be an amount, e.g. 52.80."), field="expectedTotal")
    existing = await Order.get_or_none(tenant_id=principal.tenant.id, idempotency_key=key)
    if existing is not None:
        return await _replay(principal, existing)
    try:
        async with in_transaction():
            result = await _place_order(principal, key, now, expected_total)
            raised = await usage_reports.reevaluate_alerts(principal.tenant, now=now)
    except (_KeyTaken, DomainError) as error:
        # Outside the rolled-back transaction: a concurrent request with this key may have committed
        # meanwhile (taking the key, closing the cart, redeeming the coupon); this one is its retry.
        winner = await Order.get_or_none(tenant_id=principal.tenant.id, idempotency_key=key)
        if winner is None:
            if isinstance(error, _KeyTaken):  # the winner rolled back after all: an unexpected race
                raise EmptyCart(_("This cart was just confirmed by another request.")) from None
            if isinstance(error, TotalChanged):  # the new figures are shown now: they are the quote
                cart = await Cart.get_or_none(id=error.cart_id)
                if cart is not None:
                    await cart_rules.record_quote_of(cart, error.current)
            raise
        return await _replay(principal, winner)
    # After the commit, never before: the new limits, here and in the other instances.
    await plan_changed(principal.tenant.id, cache=plan_cache, broadcaster=broadcaster)
    await alerts.publish(broadcaster, raised)
    return result


async def load_result(order: Order, *, replayed: bool) -> CheckoutResult:
    lines = await OrderLine.filter(order_id=order.id).order_by("position")
    subscription_ids = [line.subscription_id for line in lines if line.subscription_id]
    subscriptions = await AddOnSubscription.filter(id__in=subscription_ids).select_related("add_on")
    by_id = {str(subscription.id): subscription for subscription in subscriptions}
    return CheckoutResult(
        order=order,
        lines=lines,
        subscriptions=[by_id[str(i)] for i in subscription_ids if str(i) in by_id],
        replayed=replayed,
    )


async def _replay(principal: Principal, order: Order) -> CheckoutResult:
    """The stored order for a retry; an error when the key is reused for another purchase: another
    admin's, or while the caller has a different cart open."""
    assert principal.user is not None
    if str(order.user_id) != str(principal.user.id):
        raise IdempotencyKeyReused(
            _("This idempotency key already confirmed another admin's purchase; use a new key."),
            field="idempotencyKey",
        )
    cart = await Cart.get_or_none(open_owner=str(principal.user.id))
    if cart is not None:
        lines = await CartLine.filter(cart_id=cart.id)
        if lines and cart_fingerprint(cart, lines) != order.request_fingerprint:
            raise IdempotencyKeyReused(
                _("This idempotency key already confirmed another purchase; use a new key for this cart."),
                field="idempotencyKey",
            )
    return await load_result(order, replayed=True)


async def _place_order(
    principal: Principal, key: str, now: dt.datetime, expected_total: Decimal | None
) -> CheckoutResult:
    """The purchase, in the caller's transaction, in a number of statements that does not grow with the
    cart's lines (docs/design.md); the result is the rows as written, read back by nobody."""
    user = principal.user
    assert user is not None
    # First: the tenant's lock (see the module's docstring), then the cart's row.
    await lock_tenant(principal.tenant.id)
    # Close the cart before reading its lines: the UPDATE locks the cart row, so a concurrent checkout
    # of the same cart waits here, then finds it closed (PostgreSQL re-checks the condition after the
    # first commits) and fails without having written anything; and a concurrent edit of the cart
    # (which touches this row first, see app.services.cart) either lands before the lines are read,
    # and is bought, or after the commit, and goes to a new cart: never into a closed cart unbought.
    # The row it returns is the one under the lock: its coupon and quote as the last write committed
    # them. Any refusal below rolls the transaction back, which reopens the cart. Inserting the order
    # first would deadlock: its foreign key share-locks the cart row that the other transaction updates.
    row = await sql.fetch_first(
        cart_rules.returning_cart(_CLOSE_CART),
        str(user.id),
        CartStatus.CHECKED_OUT.value,
        now,
        CartStatus.OPEN.value,
    )
    if row is None:
        raise EmptyCart()
    cart = cart_rules.cart_of(row)
    lines = await CartLine.filter(cart_id=cart.id).select_related("add_on").order_by("position")
    if not lines:
        raise EmptyCart()
    view = await load_tenant_plan(principal.tenant, now=now)
    currency = view.tenant.currency

    await cart_rules.check_conditions(
        view, [(line.add_on, line.quantity) for line in lines], in_cart={line.add_on.code for line in lines}
    )
    changes = []
    for line in lines:
        seen = money.Money.of(line.unit_price, line.currency)
        current = cart_rules.current_price(line.add_on, currency, view.tenant.erp)
        if current != seen:
            changes.append(PriceChange(line.add_on.code, line.add_on.name, seen, current))
    if changes:
        raise PriceChanged(changes)

    coupon: Coupon | None = None
    terms: pricing.CouponTerms | None = None
    if cart.coupon_id:
        coupon = await Coupon.get(id=cart.coupon_id)
        await coupon_rules.check_usable(coupon, tenant_id=view.tenant.id, now=now)
        terms = coupon_rules.terms_of(coupon, currency)
        if coupon_rules.terms_changed(cart.coupon_terms, terms):
            raise coupon_rules.CouponChanged(
                _(
                    "The terms of coupon {code} changed since it was applied; apply it again to see the "
                    "new total, or remove it.",
                    code=coupon.code,
                ),
                field="code",
            )
    summary = cart_rules.summarize_lines(view, lines, terms, now)
    if coupon is not None and not summary.coupon_applies:
        raise coupon_rules.CouponNotApplicable(
            _("Coupon {code} applies to nothing in the cart; remove it to confirm.", code=coupon.code),
            field="code",
        )
    confirm_figures(cart, summary, expected_total)

    try:
        order = await Order.create(
            tenant_id=view.tenant.id,
            user_id=user.id,
            cart_id=cart.id,
            idempotency_key=key,
            request_fingerprint=cart_fingerprint(cart, lines),
            currency=currency,
            period_start=summary.period.start,
            period_end=summary.period.end,
            subtotal=summary.subtotal.amount,
            discount=summary.discount.amount,
            total=summary.total.amount,
            monthly_increase=summary.monthly_increase.amount,
            due_on_next_invoice=summary.due_on_next_invoice.amount,
            one_off_total=summary.one_off_total.amount,
            new_monthly_total=summary.new_monthly_total.amount,
            coupon_id=coupon.id if coupon else None,
            coupon_terms=coupon_rules.terms_snapshot(terms) if terms else None,
            created_at=now,
        )
    except IntegrityError:
        raise _KeyTaken() from None

    subscriptions: dict[int, AddOnSubscription] = {}  # by the position of the line that activates it
    for position, line in enumerate(lines):
        add_on = line.add_on
        has_increments = Limits.increments_of(add_on) != Limits()
        if activates_subscription(
            add_on.cadence, has_increments=has_increments, has_features=bool(add_on.features)
        ):
            subscriptions[position] = AddOnSubscription(
                tenant_id=view.tenant.id,
                add_on=add_on,
                quantity=line.quantity,
                unit_price=summary.lines[position].item.unit_price.amount,
                currency=currency,
                contracted_at=now,
                configuration_status=ConfigurationStatus.PENDING
                if add_on.requires_configuration
                else ConfigurationStatus.NOT_REQUIRED,
            )
    order_lines = [
        OrderLine(
            order_id=order.id,
            add_on_id=line.add_on.id,
            position=position,
            add_on_code=line.add_on.code,
            name=line.add_on.name,
            cadence=line.add_on.cadence,
            is_free=line.add_on.is_free,
            quantity=line.quantity,
            unit_price=priced.item.unit_price.amount,
            line_total=priced.line_total.amount,
            amount_due=priced.amount_due.amount,
            discount=priced.discount.amount,
            total=priced.total.amount,
            coupon_applies=priced.coupon_applies,
            subscription_id=subscriptions[position].id if position in subscriptions else None,
        )
        for position, (line, priced) in enumerate(zip(lines, summary.lines, strict=True))
    ]
    if subscriptions:
        await AddOnSubscription.bulk_create(list(subscriptions.values()))
    await OrderLine.bulk_create(order_lines)
    events = [
        webhook_events.add_on_purchased(
            view.tenant,
            order_id=order.id,
            add_on_code=line.add_on_code,
            subscription_id=subscriptions[position].id if position in subscriptions else None,
            quantity=line.quantity,
            unit_price=line.unit_price,
            currency=currency,
        )
        for position, line in enumerate(order_lines)
    ]
    if any(Limits.increments_of(line.add_on) != Limits() for line in lines):
        # The limits in force after the purchase: those read under the lock plus what it activated.
        limits = effective_limits(view.subscription.plan, [*view.add_ons, *subscriptions.values()])
        events.append(webhook_events.limits_changed(view.tenant, limits, cause=EventType.ADD_ON_PURCHASED))
    await webhook_events.emit_all(events, now=now)
    if coupon is not None:
        await coupon_rules.redeem(coupon, tenant_id=view.tenant.id, order_id=order.id, now=now)

    await audit.record(
        tenant_id=view.tenant.id,
        principal=principal,
        action="checkout",
        now=now,
        subject_id=order.id,
        idempotency_key=key,
        lines=[
            {
                "add_on": line.item.code,
                "quantity": line.item.quantity,
                "unit_price": str(line.item.unit_price.amount),
                "total": str(line.total.amount),
            }
            for line in summary.lines
        ],
        coupon=coupon.code if coupon else None,
        total=str(summary.total.amount),
        currency=currency,
    )
    await notify_admins(
        view.tenant.id,
        emails.PURCHASE,
        purchase_email(
            order,
            view.tenant.name,
            summary,
            [line.add_on for line in lines],
            coupon.code if coupon else None,
            bought_by=audit.actor_of(principal),
        ),
        now=now,
        dedupe_key=f"order:{order.id}",
    )
    return CheckoutResult(order, order_lines, list(subscriptions.values()), replayed=False)


def confirm_figures(cart: Cart, summary: pricing.Summary, expected_total: Decimal | None) -> None:
    """The purchase is charged at the figures last shown with this cart (and ``expected_total``)."""
    current = pricing.Quote.of(summary)
    seen = pricing.Quote.from_json(cart.quote)
    if cart.quote is not None and seen != current:
        raise TotalChanged(str(cart.id), seen, current)
    if expected_total is not None and expected_total != summary.total.amount:
        raise TotalChanged(
            str(cart.id),
            seen,
            current,
            reason=_(
                "The total is {total}, not the {expected} expected: review the figures and confirm again.",
                total=str(summary.total),
                expected=str(expected_total),
            ),
        )


def purchase_email(
    order: Order,
    tenant_name: str,
    summary: pricing.Summary,
    add_ons: list[AddOn],
    coupon_code: str | None,
    *,
    bought_by: str,
) -> dict[str, Any]:
    """What the purchase e-mail to the admins says (seed 000: "receberão um e-mail informando que a
    assinatura foi atualizada"): the template ``purchase`` (app/templates/email)."""
    return {
        "order_ref": str(order.id)[:8],
        "tenant_name": tenant_name,
        "bought_by": bought_by,
        "lines": [
            {
                "add_on": add_on,
                "quantity": line.item.quantity,
                "free": line.item.is_free,
                "monthly": line.item.cadence == Cadence.MONTHLY,
                "price": line.line_total,
            }
            for add_on, line in zip(add_ons, summary.lines, strict=True)
        ],
        "monthly_increase": summary.monthly_increase,
        "days_left": summary.days_left,
        "period_last_day": summary.period.last_day,
        "due_on_next_invoice": summary.due_on_next_invoice,
        "one_off_total": summary.one_off_total,
        "coupon_code": coupon_code,
        "discount": summary.discount,
        "total": summary.total,
        "new_monthly_total": summary.new_monthly_total,
        "to_configure": [
            {
                "add_on": add_on,
                "fields": [str(spec.get("label", spec.get("name"))) for spec in add_on.configuration_fields],
            }
            for add_on in add_ons
            if add_on.requires_configuration
        ],
    }
