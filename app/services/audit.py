"""The audit log: written in the same transaction as the change it records."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from app.auth.principal import Principal
from app.models.audit import AuditEntry


def actor_of(principal: Principal | None) -> str:
    if principal is None:
        return "system"
    if principal.user is not None:
        return principal.user.email
    assert principal.api_key is not None
    return f"api-key:{principal.api_key.prefix}"


async def record(
    *,
    tenant_id: uuid.UUID | str,
    principal: Principal | None,
    action: str,
    now: dt.datetime,
    subject_id: uuid.UUID | str | None = None,
    **details: Any,
) -> None:
    await AuditEntry.create(
        tenant_id=tenant_id,
        actor=actor_of(principal),
        action=action,
        subject_id=str(subject_id) if subject_id is not None else None,
        details=details,
        created_at=now,
    )
