"""Quote requests: an environment asks the vendor for a price it cannot buy from the store (issue 14 adds
the tenant's ``requestQuote``); operators list them in the operations view and mark them handled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.operators import OperatorKey
    from app.models.tenancy import Tenant

# The customer's own words, bounded: it is shown to operators and must not grow a row without limit.
QUOTE_MESSAGE_MAX_LENGTH = 2000


class QuoteRequest(Model):
    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="quote_requests", on_delete=fields.CASCADE
    )
    add_on_code = fields.CharField(max_length=64)  # a catalog code, kept as text: the add-on may be withdrawn
    message = fields.CharField(max_length=QUOTE_MESSAGE_MAX_LENGTH, default="")
    requested_by = fields.CharField(max_length=254)  # the e-mail of the user who asked
    created_at = fields.DatetimeField()
    handled_at = fields.DatetimeField(null=True)  # NULL: still waiting for the vendor
    # The admin's retry of the same request finds this row instead of asking twice (issue 14).
    idempotency_key = fields.CharField(max_length=128, null=True)
    # The operator key that marked it handled (the audit log has the same, with the time).
    handled_by: fields.ForeignKeyNullableRelation[OperatorKey] = fields.ForeignKeyField(
        "models.OperatorKey", related_name="handled_quote_requests", null=True, on_delete=fields.SET_NULL
    )

    tenant_id: str
    handled_by_id: str | None

    class Meta:
        table = "quote_request"
        indexes = (("handled_at", "created_at"),)
        unique_together = (("tenant", "idempotency_key"),)
