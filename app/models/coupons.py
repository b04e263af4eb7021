"""Discount coupons (seed 000: "cupom de desconto")."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import CouponDuration, CouponKind


class Coupon(Model):
    id = fields.UUIDField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)  # stored upper-case
    description = fields.CharField(max_length=300, default="")
    kind = fields.CharEnumField(CouponKind, max_length=16)
    percent_off = fields.DecimalField(max_digits=5, decimal_places=2, null=True)  # PERCENT: 10.00 = 10%
    amounts_off: fields.Field[dict[str, str]] = fields.JSONField(default=dict)  # FIXED: per currency
    duration = fields.CharEnumField(CouponDuration, max_length=16, default=CouponDuration.ONCE)
    duration_months = fields.SmallIntField(null=True)  # REPEATING only
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    max_redemptions = fields.IntField(null=True)  # in all, across tenants
    times_redeemed = fields.IntField(default=0)  # changed by one conditional UPDATE, never read-modify-write
    # Restrictions: empty lists mean the coupon applies to every line.
    applies_to_categories: fields.Field[list[str]] = fields.JSONField(default=list)
    applies_to_add_on_codes: fields.Field[list[str]] = fields.JSONField(default=list)
    is_active = fields.BooleanField(default=True)

    class Meta:
        table = "coupon"
