"""Environments (tenants), their users and machine API keys."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model
from tortoise.validators import MaxValueValidator, MinValueValidator

from app.models.enums import Role


class Tenant(Model):
    """An environment: one store or ERP installation with its own plan and currency."""

    id = fields.UUIDField(primary_key=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    currency = fields.CharField(max_length=3)
    # The day each billing period starts, 1..31: in shorter months, their last day (app.services.periods).
    # Refused outside 1..31 on every write (Tortoise validates values before they reach the database).
    billing_anchor_day = fields.SmallIntField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(31)]
    )
    created_at = fields.DatetimeField()  # environment creation date: decides store eligibility
    # Percentages of a limit at which the admins are alerted: 1 to 5 distinct values in 1..100.
    alert_thresholds: fields.Field[list[int]] = fields.JSONField(default=[80, 90, 100])
    # Addresses alerted beside the tenant's admins (``setAlertRecipients``).
    alert_recipients: fields.Field[list[str]] = fields.JSONField(default=list, db_default=[])
    is_active = fields.BooleanField(default=True)
    # The default language of its users and e-mails (a BCP 47 tag: "pt-BR", "es", "en").
    locale = fields.CharField(max_length=16, default="en", db_default="en")
    # Which ERP the environment runs ("bling", "holded"...): decides where the Start Pack is sold (issue 14).
    erp = fields.CharField(max_length=64, null=True)

    users: fields.ReverseRelation[User]
    api_keys: fields.ReverseRelation[ApiKey]

    class Meta:
        table = "tenant"

    def __str__(self) -> str:
        return self.slug


class User(Model):
    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="users", on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=254, unique=True)
    name = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=16)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The SaaS's own id of the user (provisioning, and the subject of its identity provider's tokens).
    external_id = fields.CharField(max_length=255, null=True)
    locale = fields.CharField(max_length=16, null=True)  # the user's own choice; else the tenant's

    tenant_id: str

    class Meta:
        table = "user"
        unique_together = (("tenant_id", "external_id"),)


class ApiKey(Model):
    """A machine credential. Only a SHA-256 hash of the secret is stored, and the key is shown once."""

    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="api_keys", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    prefix = fields.CharField(max_length=16)  # shown in listings to recognise a key
    key_hash = fields.CharField(max_length=64, unique=True)
    scopes: fields.Field[list[str]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)

    tenant_id: str

    class Meta:
        table = "api_key"
