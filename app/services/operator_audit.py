"""The operators' audit log: every operator action, with the key that did it, written in the same
transaction as the change it records."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q

from app.auth.operator import Operator
from app.models.operators import OperatorAuditEntry
from app.services.errors import DomainError, ErrorCode


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


class ForeignAuditCursor(DomainError):
    """A cursor the audit log did not issue: a top-level ``BAD_USER_INPUT``, like a page size out of range."""

    code = ErrorCode.BAD_USER_INPUT
    default_message = "This cursor was not issued by the audit log."


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[tuple[str, OperatorAuditEntry]]  # (cursor, entry), newest first
    has_next_page: bool
    total_count: int


def _cursor_of(entry: OperatorAuditEntry) -> str:
    raw = f"audit:{entry.created_at.isoformat()}|{entry.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _position(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor[:200].encode()).decode().partition(":")
        at, _, entry_id = value.partition("|")
        if kind != "audit":
            raise ValueError(kind)
        return dt.datetime.fromisoformat(at), uuid.UUID(entry_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ForeignAuditCursor(field="after") from None


async def page(*, first: int, after: str | None, tenant_slug: str | None = None) -> AuditPage:
    """Operator actions, newest first, ``first`` at a time after the entry of ``after``."""
    entries = OperatorAuditEntry.all()
    if tenant_slug is not None:
        entries = entries.filter(tenant__slug=tenant_slug)
    query = entries
    if after is not None:
        at, entry_id = _position(after)
        query = entries.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=entry_id))
    rows = (
        await query.order_by("-created_at", "-id").limit(first + 1).select_related("operator_key", "tenant")
    )
    return AuditPage(
        items=[(_cursor_of(entry), entry) for entry in rows[:first]],
        has_next_page=len(rows) > first,
        total_count=await entries.count(),
    )
