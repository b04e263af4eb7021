"""A tenant's alert settings: the thresholds and the extra recipients (issue 15).

The thresholds (1 to 5 distinct percentages in 1..100, 80, 90 and 100 by default) and the addresses alerted
beside the admins are stored on the tenant. Writers of alerts read them from the database, never from the
tenant a cached credential carries, so a change applies to the next crossing on every instance.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.models.tenancy import Tenant
from app.services import alerts


@dataclass(frozen=True, slots=True)
class AlertSettings:
    thresholds: tuple[int, ...]
    recipients: tuple[str, ...]


async def read_settings(tenant_id: uuid.UUID | str) -> AlertSettings:
    """The settings as committed (one query)."""
    row = await Tenant.filter(id=tenant_id).values("alert_thresholds", "alert_recipients")
    if not row:
        return AlertSettings(alerts.DEFAULT_THRESHOLDS, ())
    return AlertSettings(
        alerts.normalized_thresholds(row[0]["alert_thresholds"]), tuple(row[0]["alert_recipients"] or ())
    )


def may_cross(used: int, limit: int) -> bool:
    """Whether the start bringing a counter to ``used`` crosses some whole percentage of ``limit``: only
    then can it cross a threshold, so only then are the thresholds read (a few times per period)."""
    if limit <= 0:
        return used == 1
    return used * 100 // limit > (used - 1) * 100 // limit  # a whole number in ((used-1)%, used%]


async def counter_crossings(tenant_id: uuid.UUID | str, used: int, limit: int) -> list[int]:
    """The thresholds, as committed, that the start bringing a counter to ``used`` crossed."""
    if not may_cross(used, limit):
        return []
    settings = await read_settings(tenant_id)
    return alerts.counter_crossings(used, limit, settings.thresholds)
