"""The add-on store: carts, orders and coupon redemptions (seed 000, "Como contratar um complemento")."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from app.models.enums import Cadence

if TYPE_CHECKING:
    from app.models.billing import AddOnSubscription
    from app.models.catalog import AddOn
    from app.models.coupons import Coupon
    from app.models.tenancy import Tenant, User


class CartStatus(StrEnum):
    OPEN = "OPEN"
    CHECKED_OUT = "CHECKED_OUT"


class Cart(Model):
    """An admin's cart. ``open_owner`` holds the user id while the cart is open and NULL afterwards:
    a unique nullable column gives "one open cart per user" on SQLite and PostgreSQL alike."""

    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="carts", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="carts", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(CartStatus, max_length=16, default=CartStatus.OPEN)
    open_owner = fields.CharField(max_length=36, null=True, unique=True)
    coupon: fields.ForeignKeyNullableRelation[Coupon] = fields.ForeignKeyField(
        "models.Coupon", related_name="carts", null=True, on_delete=fields.SET_NULL
    )
    # The coupon's terms when applied (as ``Order.coupon_terms``): checkout refuses other terms.
    coupon_terms: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    # The summary figures last shown to the admin (totals and period): checkout confirms these or refuses.
    quote: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    checked_out_at = fields.DatetimeField(null=True)

    lines: fields.ReverseRelation[CartLine]

    tenant_id: str
    user_id: str
    coupon_id: str | None

    class Meta:
        table = "cart"


class CartLine(Model):
    """One add-on in a cart. ``unit_price`` is the price the admin saw when adding it: checkout
    refuses to charge a different one silently."""

    id = fields.UUIDField(primary_key=True)
    cart: fields.ForeignKeyRelation[Cart] = fields.ForeignKeyField(
        "models.Cart", related_name="lines", on_delete=fields.CASCADE
    )
    add_on: fields.ForeignKeyRelation[AddOn] = fields.ForeignKeyField(
        "models.AddOn", related_name="cart_lines", on_delete=fields.CASCADE
    )
    position = fields.IntField()  # the order lines were added in (a FIXED coupon is spent in this order)
    quantity = fields.IntField()
    unit_price = fields.DecimalField(max_digits=12, decimal_places=2)
    currency = fields.CharField(max_length=3)
    added_at = fields.DatetimeField()

    cart_id: str
    add_on_id: str

    class Meta:
        table = "cart_line"
        unique_together = (("cart", "add_on"),)


class Order(Model):
    """A confirmed purchase with a snapshot of every amount shown in the summary."""

    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="orders", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="orders", null=True, on_delete=fields.SET_NULL
    )
    cart: fields.ForeignKeyNullableRelation[Cart] = fields.ForeignKeyField(
        "models.Cart", related_name="orders", null=True, on_delete=fields.SET_NULL
    )
    idempotency_key = fields.CharField(max_length=128)
    request_fingerprint = fields.CharField(max_length=64)
    currency = fields.CharField(max_length=3)
    period_start = fields.DateField()
    period_end = fields.DateField()
    subtotal = fields.DecimalField(max_digits=12, decimal_places=2)
    discount = fields.DecimalField(max_digits=12, decimal_places=2)
    total = fields.DecimalField(max_digits=12, decimal_places=2)
    monthly_increase = fields.DecimalField(max_digits=12, decimal_places=2)
    due_on_next_invoice = fields.DecimalField(max_digits=12, decimal_places=2)
    one_off_total = fields.DecimalField(max_digits=12, decimal_places=2)
    new_monthly_total = fields.DecimalField(max_digits=12, decimal_places=2)
    coupon: fields.ForeignKeyNullableRelation[Coupon] = fields.ForeignKeyField(
        "models.Coupon", related_name="orders", null=True, on_delete=fields.SET_NULL
    )
    # The coupon's terms at checkout (code, kind, percent_off, amount_off, duration, duration_months):
    # later invoices apply these, whatever happens to the coupon afterwards.
    coupon_terms: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    created_at = fields.DatetimeField()

    lines: fields.ReverseRelation[OrderLine]

    tenant_id: str
    user_id: str | None
    cart_id: str | None
    coupon_id: str | None

    class Meta:
        table = "store_order"
        unique_together = (("tenant", "idempotency_key"),)
        indexes = (("tenant_id", "created_at"),)


class OrderLine(Model):
    id = fields.UUIDField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="lines", on_delete=fields.CASCADE
    )
    add_on: fields.ForeignKeyRelation[AddOn] = fields.ForeignKeyField(
        "models.AddOn", related_name="order_lines", on_delete=fields.RESTRICT
    )
    position = fields.SmallIntField()
    add_on_code = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200)
    cadence = fields.CharEnumField(Cadence, max_length=16)
    is_free = fields.BooleanField()
    quantity = fields.IntField()
    unit_price = fields.DecimalField(max_digits=12, decimal_places=2)
    line_total = fields.DecimalField(max_digits=12, decimal_places=2)  # unit x quantity
    amount_due = fields.DecimalField(max_digits=12, decimal_places=2)  # prorated (monthly) or full (one-off)
    discount = fields.DecimalField(max_digits=12, decimal_places=2)
    total = fields.DecimalField(max_digits=12, decimal_places=2)  # amount_due - discount
    coupon_applies = fields.BooleanField(default=False)
    subscription: fields.ForeignKeyNullableRelation[AddOnSubscription] = fields.ForeignKeyField(
        "models.AddOnSubscription", related_name="order_lines", null=True, on_delete=fields.SET_NULL
    )

    order_id: str
    add_on_id: str
    subscription_id: str | None

    class Meta:
        table = "store_order_line"
        ordering = ["position"]


class CouponRedemption(Model):
    """A tenant used a coupon: once per tenant, enforced by the unique pair."""

    id = fields.UUIDField(primary_key=True)
    coupon: fields.ForeignKeyRelation[Coupon] = fields.ForeignKeyField(
        "models.Coupon", related_name="redemptions", on_delete=fields.CASCADE
    )
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="coupon_redemptions", on_delete=fields.CASCADE
    )
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="coupon_redemptions", on_delete=fields.CASCADE
    )
    redeemed_at = fields.DatetimeField()

    coupon_id: str
    tenant_id: str
    order_id: str

    class Meta:
        table = "coupon_redemption"
        unique_together = (("coupon", "tenant"),)
