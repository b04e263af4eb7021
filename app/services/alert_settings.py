"""A tenant's alert settings: the thresholds and the extra recipients (issue 15).

The thresholds (1 to 5 distinct percentages in 1..100, 80, 90 and 100 by default) and the addresses alerted
beside the admins are stored on the tenant. Writers of alerts read them from the database, never from the
tenant a cached credential carries, so a change applies to the next crossing on every instance.

Admins change them (``set_alert_thresholds``, ``set_alert_recipients``), each change audited with the values
before and after. Input is refused, never repaired: a duplicate threshold or address is an error naming it
(a client that sent it twice has a bug worth seeing), and an address is checked before any query touches it
(NUL bytes and control characters would otherwise reach the database). Up to ``MAX_RECIPIENTS`` addresses,
stored as given (trimmed), compared without regard to case; an admin also listed is e-mailed once.

A change of thresholds applies to the current state at once, in its own transaction under the tenant's lock
(``app.services.locks``), so no usage report or purchase is judged in between:

- credits, storage, users and integrations are judged again against the new list (a threshold now below the
  usage fires); the arming of a threshold removed is forgotten, so one added again later is judged afresh;
- processes: a threshold new to the list that this period's counter already reached fires once now. The
  crossing of a later start would never see it (the counter is past it), and a start racing the change is
  serialised with it on the counter's row, so it is judged by one side, never both, never neither.

Removing a threshold raises nothing. The alerts raised are published after the commit, as everywhere.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.auth.principal import Principal
from app.broadcast import Broadcaster
from app.i18n import _
from app.models.metering import AlertArming, AlertKind, AlertState, LimitAlert, ProcessCounter
from app.models.tenancy import Tenant
from app.services import alerts, audit, provisioning, usage_reports
from app.services.credits import process_allowance, processes_used
from app.services.errors import InvalidInput, NotAdmin, shown
from app.services.locks import lock_tenant
from app.services.subscriptions import active_plan

MIN_THRESHOLDS, MAX_THRESHOLDS = 1, 5
THRESHOLD_MIN, THRESHOLD_MAX = 1, 100
MAX_RECIPIENTS = 10


@dataclass(frozen=True, slots=True)
class AlertSettings:
    thresholds: tuple[int, ...]
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """The settings as the change left them, and the alerts its re-evaluation raised (thresholds only)."""

    settings: AlertSettings
    alerts: list[LimitAlert]


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


# --- Validation (pure) -------------------------------------------------------------------------


def valid_thresholds(values: Sequence[object]) -> tuple[int, ...]:
    """1 to 5 distinct whole percentages in 1..100, sorted; anything else is refused, naming the value."""
    if not MIN_THRESHOLDS <= len(values) <= MAX_THRESHOLDS:
        raise InvalidInput(
            _(
                "Choose {minimum} to {maximum} thresholds; {count} were given.",
                minimum=MIN_THRESHOLDS,
                maximum=MAX_THRESHOLDS,
                count=len(values),
            ),
            field="thresholds",
        )
    seen: set[int] = set()
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(
                _("The threshold {value} is not a whole number.", value=shown(value)), field="thresholds"
            )
        if not THRESHOLD_MIN <= value <= THRESHOLD_MAX:
            raise InvalidInput(
                _(
                    "The threshold {value} is not a percentage from {threshold_min} to {threshold_max}.",
                    value=value,
                    threshold_min=THRESHOLD_MIN,
                    threshold_max=THRESHOLD_MAX,
                ),
                field="thresholds",
            )
        if value in seen:
            raise InvalidInput(_("The threshold {value} is listed twice.", value=value), field="thresholds")
        seen.add(value)
    return tuple(sorted(seen))


def valid_recipient(value: object) -> str:
    """A plausible address of at most 254 characters, trimmed, as given; checked before any query."""
    if not isinstance(value, str):
        raise InvalidInput(_("{value} is not an e-mail address.", value=shown(value)), field="recipients")
    if provisioning.has_control_characters(value):
        raise InvalidInput(_("{value} contains control characters.", value=shown(value)), field="recipients")
    address = value.strip()
    if not address or len(address) > provisioning.EMAIL_MAX:
        raise InvalidInput(
            _(
                "{value} is not an e-mail address of 1 to {email_max} characters.",
                value=shown(value),
                email_max=provisioning.EMAIL_MAX,
            ),
            field="recipients",
        )
    provisioning.valid_email(address, field="recipients")  # the pattern users' addresses are held to
    return address


def valid_recipients(values: Sequence[object]) -> tuple[str, ...]:
    """0 to 10 valid addresses, none twice (compared without regard to case), in the order given."""
    if len(values) > MAX_RECIPIENTS:
        raise InvalidInput(
            _("At most {maximum} recipients; {count} were given.", maximum=MAX_RECIPIENTS, count=len(values)),
            field="recipients",
        )
    addresses: list[str] = []
    seen: set[str] = set()
    for value in values:
        address = valid_recipient(value)
        if address.lower() in seen:
            raise InvalidInput(_("{address} is listed twice.", address=shown(address)), field="recipients")
        seen.add(address.lower())
        addresses.append(address)
    return tuple(addresses)


# --- Changes -----------------------------------------------------------------------------------


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise NotAdmin()


async def set_alert_thresholds(
    principal: Principal,
    thresholds: Sequence[object],
    *,
    now: dt.datetime,
    broadcaster: Broadcaster | None = None,
) -> SettingsChange:
    """Replace the thresholds, audited, and judge the current state against them at once."""
    _require_admin(principal)
    new = valid_thresholds(thresholds)
    tenant = principal.tenant
    async with in_transaction():
        await lock_tenant(tenant.id)
        before = await read_settings(tenant.id)
        await Tenant.filter(id=tenant.id).update(alert_thresholds=list(new))
        # A threshold removed forgets whether it fired: added again later, it is judged afresh.
        await AlertArming.filter(tenant_id=tenant.id).exclude(threshold__in=new).delete()
        await audit.record(
            tenant_id=tenant.id,
            principal=principal,
            action="alert_thresholds.set",
            now=now,
            before=list(before.thresholds),
            after=list(new),
        )
        raised = await usage_reports.reevaluate_alerts(tenant, now=now, thresholds=new)
        added = [t for t in new if t not in before.thresholds]
        raised += await _processes_already_past(tenant, added, now=now)
    await alerts.publish(broadcaster, raised)
    return SettingsChange(AlertSettings(new, before.recipients), raised)


async def _processes_already_past(
    tenant: Tenant, added: Sequence[int], *, now: dt.datetime
) -> list[LimitAlert]:
    """TRIGGERED for each threshold just added that this period's process counter already reached.

    The counter's row is updated (a no-op) first: a start racing this change either counted before it,
    and is seen here (it read the old thresholds), or counts after its commit, and reads the new ones.
    """
    if not added:
        return []
    plan = await active_plan(tenant, now=now)
    if plan is None:
        return []
    period = plan.period.name
    await ProcessCounter.filter(tenant_id=tenant.id, period=period).update(used=F("used"))
    used = await processes_used(tenant.id, period)
    allowance = process_allowance(
        plan.effective_limits.credits, plan.subscription.plan.process_buffer_percent
    )
    changes = [
        alerts.Transition(AlertKind.PROCESSES, t, AlertState.TRIGGERED, used, allowance)
        for t in sorted(added)
        if alerts.reached(used, allowance, t)
    ]
    if not changes:
        return []
    return await alerts.record(tenant.id, changes, now=now, period=period)


async def set_alert_recipients(
    principal: Principal, recipients: Sequence[object], *, now: dt.datetime
) -> SettingsChange:
    """Replace the addresses alerted beside the admins, audited; they receive the next alert."""
    _require_admin(principal)
    new = valid_recipients(recipients)
    tenant = principal.tenant
    async with in_transaction():
        await lock_tenant(tenant.id)
        before = await read_settings(tenant.id)
        await Tenant.filter(id=tenant.id).update(alert_recipients=list(new))
        await audit.record(
            tenant_id=tenant.id,
            principal=principal,
            action="alert_recipients.set",
            now=now,
            before=list(before.recipients),
            after=list(new),
        )
    return SettingsChange(AlertSettings(before.thresholds, new), [])
