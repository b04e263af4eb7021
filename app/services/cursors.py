"""Cursors and pages of the lists the API serves by page (the Relay connection spec): one opaque cursor format
and one refusal for a cursor a list did not issue, shared by every list.

A cursor is the base64url of ``<kind>:<position>``; a list decodes only its own kind, so a cursor of another
list (or garbage) is refused as ``BAD_USER_INPUT``, the caller's mistake like a page size out of range.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from app.i18n import _
from app.services.errors import DomainError, ErrorCode

T = TypeVar("T")
M = TypeVar("M", bound=Model)

# More than any cursor we issue: a longer one is not decoded at all (issue 11: bounded work per input).
MAX_CURSOR = 200


class ForeignCursor(DomainError):
    """A cursor this list did not issue: a top-level ``BAD_USER_INPUT``, like a page size out of range."""

    code = ErrorCode.BAD_USER_INPUT
    default_message = _("This cursor was not issued by this list.")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[tuple[str, T]]  # (cursor, item), in the list's order
    has_next_page: bool
    total_count: int


def encode(kind: str, position: object) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode()


def decode(cursor: str, kind: str) -> str:
    """The position of a cursor of ``kind``; ``ForeignCursor`` for anything else."""
    try:
        found, _, position = base64.urlsafe_b64decode(cursor[:MAX_CURSOR].encode()).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        found, position = "", ""
    if found != kind or not position:
        raise ForeignCursor(field="after")
    return position


def decode_id(cursor: str, kind: str) -> int:
    """The positive 64-bit id of a cursor of ``kind``."""
    position = decode(cursor, kind)
    # ASCII digits only: int() also takes "٣", "-5", "1_0" and 10**30.
    if not position.isascii() or not position.isdigit() or not 0 < int(position) < 2**63:
        raise ForeignCursor(field="after")
    return int(position)


async def newest_first(
    rows: QuerySet[M], kind: str, *, first: int, after: str | None, related: tuple[str, ...] = ()
) -> Page[M]:
    """``rows`` (UUID ids, a ``created_at``) newest first, ``first`` at a time after the row of ``after``."""
    query = rows
    if after is not None:
        at, row_id = _moment(decode(after, kind))
        query = rows.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=row_id))
    found = await query.order_by("-created_at", "-id").limit(first + 1).select_related(*related)
    return Page(
        items=[(encode(kind, f"{_created_at(row).isoformat()}|{row.pk}"), row) for row in found[:first]],
        has_next_page=len(found) > first,
        total_count=await rows.count(),
    )


def _created_at(row: Model) -> dt.datetime:
    created_at: dt.datetime = getattr(row, "created_at")  # noqa: B009 (every model paged this way has one)
    return created_at


def _moment(position: str) -> tuple[dt.datetime, uuid.UUID]:
    at, _, row_id = position.partition("|")
    try:
        return dt.datetime.fromisoformat(at), uuid.UUID(row_id)
    except ValueError:
        raise ForeignCursor(field="after") from None


async def by_key(rows: QuerySet[M], kind: str, key: str, *, first: int, after: str | None) -> Page[M]:
    """``rows`` by a unique text ``key`` (a slug, a code), ``first`` at a time after the row of ``after``."""
    query = rows if after is None else rows.filter(**{f"{key}__gt": decode(after, kind)})
    found = await query.order_by(key).limit(first + 1)
    return Page(
        items=[(encode(kind, getattr(row, key)), row) for row in found[:first]],
        has_next_page=len(found) > first,
        total_count=await rows.count(),
    )
