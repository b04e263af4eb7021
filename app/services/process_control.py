"""Pausing and capping one kind of process: ``setProcessControl`` (issue 15).

An environment's admins may pause a kind of process (``PRODUCT_SYNC``...) or cap its starts per billing
period; the other kinds go on. The rules:

- Admins only (``NotAdmin``); unlike the store, any environment may, whatever its creation date.
- A call replaces the kind's control whole: a cap left out is no cap. A cap is 0 to 1,000,000,000 starts
  per billing period (0: none may start); anything else is ``InvalidInput`` on ``monthlyCap``.
- Each change is audited (``process_control.set``, the old and the new values) in its transaction.
- The start decides in the database: its conditional UPDATE reads the control row and the kind's counter
  column (``app.services.processes``), so a pause or a cap holds on every instance from the next start on,
  and concurrent starts never pass a cap. The credit limit still stops every kind first.
- ``quota`` answers from the figures cache (``app.services.figures_cache``), whose one statement reads
  the controls with the counts: no statement more on the hot path, even on a miss. A change drops the
  tenant's entry there at once and, through the broadcaster, in every other instance; an entry whose
  broadcast was lost lives ``ttl`` seconds at most. A quota answer is advice; the start decides.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tortoise.transactions import in_transaction

from app.auth.principal import Principal
from app.broadcast import Broadcaster
from app.i18n import _
from app.models.metering import ProcessControl, ProcessKind
from app.services import audit
from app.services.errors import InvalidInput, NotAdmin
from app.services.figures_cache import FiguresCache, usage_changed
from app.services.locks import lock_tenant

MAX_MONTHLY_CAP = 1_000_000_000
AUDIT_ACTION = "process_control.set"


def validate_cap(monthly_cap: int | None) -> None:
    if monthly_cap is not None and not 0 <= monthly_cap <= MAX_MONTHLY_CAP:
        raise InvalidInput(
            _(
                "A monthly cap is 0 to {max_monthly_cap} starts per billing period, or null for none.",
                max_monthly_cap=format(MAX_MONTHLY_CAP, ","),
            ),
            field="monthlyCap",
        )


def _values(row: ProcessControl | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"paused": row.paused, "monthlyCap": row.monthly_cap}


async def set_process_control(
    principal: Principal,
    process: ProcessKind,
    *,
    paused: bool,
    monthly_cap: int | None,
    now: dt.datetime,
    figures_cache: FiguresCache | None = None,
    broadcaster: Broadcaster | None = None,
) -> ProcessControl:
    """Replace the control of ``process`` in the caller's environment; audited in the same transaction,
    the caches told after the commit."""
    if not principal.is_admin:
        raise NotAdmin()
    validate_cap(monthly_cap)
    tenant_id = principal.tenant.id
    actor = audit.actor_of(principal)
    async with in_transaction():
        await lock_tenant(tenant_id)  # two admins at once: one creates the row, the other updates it
        row = await ProcessControl.get_or_none(tenant_id=tenant_id, process=process)
        old = _values(row)
        if row is None:
            row = await ProcessControl.create(
                tenant_id=tenant_id,
                process=process,
                paused=paused,
                monthly_cap=monthly_cap,
                updated_at=now,
                updated_by=actor,
            )
        else:
            row.paused, row.monthly_cap, row.updated_at, row.updated_by = paused, monthly_cap, now, actor
            await row.save(update_fields=["paused", "monthly_cap", "updated_at", "updated_by"])
        await audit.record(
            tenant_id=tenant_id,
            principal=principal,
            action=AUDIT_ACTION,
            now=now,
            subject_id=str(row.id),
            process=process.value,
            old=old,
            new=_values(row),
        )
    # After the commit: the quota check's cached figures hold the controls.
    await usage_changed(tenant_id, cache=figures_cache, broadcaster=broadcaster)
    return row
