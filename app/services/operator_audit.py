"""The operators' audit log: every operator action, with the key that did it, written in the same
transaction as the change it records."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from app.auth.operator import Operator
from app.models.operators import OperatorAuditEntry
from app.services import cursors
from app.services.cursors import Page


async def record(
    operator: Operator,
    action: str,
    *,
    now: dt.datetime,
    tenant_id: uuid.UUID | str | None = None,
    subject_id: uuid.UUID | str | None = None,
    **details: Any,
) -> OperatorAuditEntry:
    return await OperatorAuditEntry.create(
        operator_key_id=operator.key.id,
        tenant_id=tenant_id,
        action=action,
        subject_id=str(subject_id) if subject_id is not None else None,
        details=details,
        created_at=now,
    )


async def page(*, first: int, after: str | None, tenant_slug: str | None = None) -> Page[OperatorAuditEntry]:
    """Operator actions, newest first, ``first`` at a time after the entry of ``after``."""
    entries = OperatorAuditEntry.all()
    if tenant_slug is not None:
        entries = entries.filter(tenant__slug=tenant_slug)
    return await cursors.newest_first(
        entries, "audit", first=first, after=after, related=("operator_key", "tenant")
    )
