"""What a tenant has contracted: its plan and its add-ons."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from app.models.enums import (
    AddOnStatus,
    ConfigurationStatus,
    PlanChangeKind,
    PlanChangeSource,
    PlanChangeStatus,
    PlanSubscriptionStatus,
)

if TYPE_CHECKING:
    from app.models.catalog import AddOn, Plan
    from app.models.tenancy import Tenant, User


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
    # A downgrade scheduled for the end of the period (issue 14): from its ``effective_at`` on, the plan in
    # force is its ``to_plan`` even before the task that applies it has run (``load_tenant_plan``).
    pending_change: fields.ForeignKeyNullableRelation[PlanChange] = fields.ForeignKeyField(
        "models.PlanChange", related_name="pending_for", null=True, on_delete=fields.SET_NULL
    )

    tenant_id: str
    plan_id: str
    pending_change_id: str | None

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


class PlanChange(Model):
    """One change of a tenant's plan, kept for ever: the invoices bill the plan in force on each day from
    these rows (``app.services.invoices``). Names and prices are snapshots taken when it was asked."""

    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="plan_changes", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="plan_changes", null=True, on_delete=fields.SET_NULL
    )
    source = fields.CharEnumField(PlanChangeSource, max_length=16, default=PlanChangeSource.TENANT)
    kind = fields.CharEnumField(PlanChangeKind, max_length=16)
    status = fields.CharEnumField(PlanChangeStatus, max_length=16)
    from_plan: fields.ForeignKeyRelation[Plan] = fields.ForeignKeyField(
        "models.Plan", related_name="changes_from", on_delete=fields.RESTRICT
    )
    from_code = fields.CharField(max_length=64)
    from_name = fields.CharField(max_length=200)
    from_unit_price = fields.DecimalField(max_digits=12, decimal_places=2)  # monthly
    to_plan: fields.ForeignKeyRelation[Plan] = fields.ForeignKeyField(
        "models.Plan", related_name="changes_to", on_delete=fields.RESTRICT
    )
    to_code = fields.CharField(max_length=64)
    to_name = fields.CharField(max_length=200)
    to_unit_price = fields.DecimalField(max_digits=12, decimal_places=2)  # monthly
    currency = fields.CharField(max_length=3)
    change_fee = fields.DecimalField(max_digits=12, decimal_places=2)  # one-off, on the effective period
    requested_at = fields.DatetimeField()
    effective_at = fields.DatetimeField()  # upgrades: when asked; downgrades: the end of the period
    applied_at = fields.DatetimeField(null=True)  # when the subscription row was moved (and admins told)
    cancelled_at = fields.DatetimeField(null=True)
    idempotency_key = fields.CharField(max_length=128, null=True)
    request_fingerprint = fields.CharField(max_length=64, null=True)
    # The key of the cancelPlanChange that withdrew it: that call's retry answers with this change.
    cancel_idempotency_key = fields.CharField(max_length=128, null=True)

    tenant_id: str
    user_id: str | None
    from_plan_id: str
    to_plan_id: str

    class Meta:
        table = "plan_change"
        unique_together = (("tenant", "idempotency_key"), ("tenant", "cancel_idempotency_key"))
        indexes = (("tenant_id", "effective_at"), ("status", "effective_at"))
