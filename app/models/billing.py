"""What a tenant has contracted: its plan and its add-ons."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from app.models.enums import AddOnStatus, ConfigurationStatus, PlanSubscriptionStatus

if TYPE_CHECKING:
    from app.models.catalog import AddOn, Plan
    from app.models.tenancy import Tenant


class PlanSubscription(Model):
    id = fields.UUIDField(primary_key=True)
    tenant: fields.OneToOneRelation[Tenant] = fields.OneToOneField(
        "models.Tenant", related_name="plan_subscription", on_delete=fields.CASCADE
    )
    plan: fields.ForeignKeyRelation[Plan] = fields.ForeignKeyField(
        "models.Plan", related_name="subscriptions", on_delete=fields.RESTRICT
    )
    status = fields.CharEnumField(
        PlanSubscriptionStatus, max_length=16, default=PlanSubscriptionStatus.ACTIVE
    )
    started_at = fields.DatetimeField()
    # The plan's monthly price when it was contracted, in the tenant's currency: a later change of the
    # catalog's price never alters it (issue 13). Rows older than migration 0004 were filled by it.
    unit_price = fields.DecimalField(max_digits=12, decimal_places=2, null=True)
    currency = fields.CharField(max_length=3, null=True)

    tenant_id: str
    plan_id: str

    class Meta:
        table = "plan_subscription"


class AddOnSubscription(Model):
    """One contracted add-on. ``ends_at`` is the instant it stops counting (set on cancellation).

    Whether it still counts is computed from the clock (``is_active_at``), so nothing depends on a
    periodic job having run on the day it ends.
    """

    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="add_on_subscriptions", on_delete=fields.CASCADE
    )
    add_on: fields.ForeignKeyRelation[AddOn] = fields.ForeignKeyField(
        "models.AddOn", related_name="subscriptions", on_delete=fields.RESTRICT
    )
    quantity = fields.IntField(default=1)
    unit_price = fields.DecimalField(max_digits=12, decimal_places=2)  # snapshot at contract time
    currency = fields.CharField(max_length=3)
    contracted_at = fields.DatetimeField()
    status = fields.CharEnumField(AddOnStatus, max_length=16, default=AddOnStatus.ACTIVE)
    cancelled_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField(null=True)
    # When the admins were told it ended (the "disabled today" e-mail): set once, by one conditional UPDATE.
    end_notified_at = fields.DatetimeField(null=True)
    configuration_status = fields.CharEnumField(
        ConfigurationStatus, max_length=16, default=ConfigurationStatus.NOT_REQUIRED
    )
    # Integration settings; secret values are Fernet tokens, never plaintext.
    configuration: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)

    tenant_id: str
    add_on_id: str

    class Meta:
        table = "add_on_subscription"
        indexes = (("tenant_id", "status"),)

    def is_active_at(self, now: dt.datetime) -> bool:
        return self.contracted_at <= now and (self.ends_at is None or now < self.ends_at)

    def status_at(self, now: dt.datetime) -> AddOnStatus:
        if self.ends_at is not None and now >= self.ends_at:
            return AddOnStatus.ENDED
        return self.status
