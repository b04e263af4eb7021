"""Limit alerts (docs/design.md, "Credits and processes": alerts before a limit is reached).

For credits, processes, storage, users and integrations, at the tenant's thresholds (80, 90 and
100% by default): each upward crossing alerts once (TRIGGERED); falling back below a threshold
re-arms it (RESOLVED). Alerts are stored, e-mailed to the tenant's admins through the outbox in the
transaction of the change (and to the tenant's extra alert recipients, ``setAlertRecipients``, an
admin also listed once), and published live only after that transaction commits.

Publication is durable, as the outbox is for e-mail: ``LimitAlert.published_at`` is NULL until the
alert has been pushed to the broadcaster. After its commit the writer pushes each alert and marks it
with a conditional UPDATE (``WHERE published_at IS NULL``: one mark, whoever gets there). An alert
whose process died (or whose broadcast failed) between the commit and the mark stays NULL, and the
app's background task (``app.services.alert_publisher``) pushes it once it is older than a short
grace, at start and periodically. Delivery to live subscribers is therefore at least once: a crash
between the push and the mark pushes the alert again after the restart, so subscribers that must not
see it twice dedupe by the alert's ``id``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from app.broadcast import Broadcaster
from app.i18n import DEFAULT_LOCALE, locale_of
from app.models.metering import AlertArming, AlertKind, AlertState, LimitAlert
from app.models.tenancy import Tenant
from app.notifications import emails
from app.notifications.outbox import composed, enqueue
from app.observability import ALERTS_RAISED
from app.services import cursors, webhook_events

logger = logging.getLogger("tollgate.alerts")

DEFAULT_THRESHOLDS = (80, 90, 100)

# The order in which an e-mail names alerts of the same state and threshold.
KIND_ORDER = {kind: position for position, kind in enumerate(AlertKind)}


# --- The rules (pure) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measure:
    kind: AlertKind
    used: int
    limit: int


@dataclass(frozen=True, slots=True)
class Transition:
    kind: AlertKind
    threshold: int
    state: AlertState
    used: int
    limit: int


def normalized_thresholds(values: Iterable[object] | None) -> tuple[int, ...]:
    """The tenant's setting as sorted distinct percentages in 1..1000; the defaults when unusable."""
    valid = sorted(
        {
            value
            for value in values or ()
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 1000
        }
    )
    return tuple(valid) or DEFAULT_THRESHOLDS


def reached(used: int, limit: int, threshold: int) -> bool:
    """``used`` is at or above ``threshold``% of ``limit``, in exact integers. A zero limit is
    reached by any use."""
    if limit <= 0:
        return used > 0
    return used * 100 >= threshold * limit


def transitions(measure: Measure, thresholds: Sequence[int], triggered: set[int]) -> list[Transition]:
    """What changes for one measure: crossings up fire once (ascending), drops re-arm (descending)."""
    fired = [
        Transition(measure.kind, threshold, AlertState.TRIGGERED, measure.used, measure.limit)
        for threshold in sorted(thresholds)
        if threshold not in triggered and reached(measure.used, measure.limit, threshold)
    ]
    rearmed = [
        Transition(measure.kind, threshold, AlertState.RESOLVED, measure.used, measure.limit)
        for threshold in sorted(thresholds, reverse=True)
        if threshold in triggered and not reached(measure.used, measure.limit, threshold)
    ]
    return fired + rearmed


def counter_crossings(used: int, limit: int, thresholds: Sequence[int]) -> list[int]:
    """Thresholds that the start bringing a counter to ``used`` crossed: reached now, not one before.

    A period's process counter only grows, and each value is reached by exactly one start, so each
    crossing is seen once without any stored state.
    """
    return [t for t in sorted(thresholds) if reached(used, limit, t) and not reached(used - 1, limit, t)]


# --- Recording (inside the caller's transaction) -----------------------------------------------


def parse_fired(pairs: str | None) -> set[tuple[AlertKind, int]]:
    """The (kind, threshold) pairs that fired and are not re-armed, from ``KIND:threshold`` joined by commas
    (how a statement that reads more than them returns them in one column; NULL: none)."""
    return {
        (AlertKind(kind), int(threshold))
        for kind, threshold in (pair.split(":") for pair in (pairs or "").split(",") if pair)
    }


async def apply_measures(
    tenant_id: uuid.UUID | str,
    measures: Sequence[Measure],
    thresholds: Sequence[int],
    *,
    now: dt.datetime,
    triggered: set[tuple[AlertKind, int]] | None = None,
) -> list[LimitAlert]:
    """Fire or re-arm each (kind, threshold) whose state differs from the measures.

    ``triggered``: the pairs that fired and are not re-armed, when the caller read them under the tenant's
    lock (by default they are read here). A pair without an arming row has not fired: its row is created
    when it first fires. Each change is one conditional UPDATE on its arming row, so two concurrent
    evaluations cannot both fire the same crossing.
    """
    if triggered is None:
        rows = await AlertArming.filter(
            tenant_id=tenant_id, kind__in=[measure.kind for measure in measures], triggered=True
        ).values_list("kind", "threshold")
        triggered = {(AlertKind(kind), threshold) for kind, threshold in rows}
    candidates = [
        change
        for measure in measures
        for change in transitions(measure, thresholds, {t for kind, t in triggered if kind == measure.kind})
    ]
    firing = [change for change in candidates if change.state == AlertState.TRIGGERED]
    if firing:
        await AlertArming.bulk_create(
            [
                AlertArming(
                    tenant_id=tenant_id, kind=change.kind, threshold=change.threshold, triggered=False
                )
                for change in firing
            ],
            ignore_conflicts=True,
        )
    changes: list[Transition] = []
    for change in candidates:
        fire = change.state == AlertState.TRIGGERED
        won = await AlertArming.filter(
            tenant_id=tenant_id, kind=change.kind, threshold=change.threshold, triggered=not fire
        ).update(triggered=fire)
        if won:
            changes.append(change)
    return await record(tenant_id, changes, now=now)


async def record(
    tenant_id: uuid.UUID | str, changes: Sequence[Transition], *, now: dt.datetime, period: str | None = None
) -> list[LimitAlert]:
    """Store the alerts and queue their e-mail to the tenant's admins and its extra recipients: one
    e-mail per call (a report, a start, a re-evaluation) and recipient, however many thresholds it
    crossed, headed by the most pressing alert and naming the others."""
    alerts: list[LimitAlert] = []
    for change in changes:
        alerts.append(
            await LimitAlert.create(
                tenant_id=tenant_id,
                kind=change.kind,
                threshold=change.threshold,
                state=change.state,
                used=change.used,
                limit=change.limit,
                period=period,
                created_at=now,
            )
        )
    if alerts:
        context = {"alerts": [_email_alert(alert) for alert in by_urgency(alerts)], "period": period}
        await enqueue(
            [
                composed(emails.LIMIT_ALERT, recipient, context, dedupe_key=f"limit-alert:{alerts[0].id}")
                for recipient in await alert_recipients(tenant_id)
            ],
            now=now,
            tenant_id=tenant_id,
        )
    await webhook_events.emit_alerts(tenant_id, alerts, now=now)
    return alerts


def by_urgency(alerts: Iterable[LimitAlert]) -> list[LimitAlert]:
    """Triggered before resolved, then the highest threshold, then the kinds' order: the first one heads
    the e-mail."""
    return sorted(
        alerts,
        key=lambda alert: (alert.state != AlertState.TRIGGERED, -alert.threshold, KIND_ORDER[alert.kind]),
    )


def _email_alert(alert: LimitAlert) -> dict[str, object]:
    return {
        "kind": alert.kind.value,
        "threshold": alert.threshold,
        "state": alert.state.value,
        "used": alert.used,
        "limit": alert.limit,
    }


async def alert_recipients(tenant_id: uuid.UUID | str) -> list[emails.Recipient]:
    """Who is e-mailed an alert, each in their language: the tenant's admins (their own language, else the
    tenant's), then its extra recipients (``setAlertRecipients``, as committed; the tenant's language) who
    are not admins, compared without regard to case, so that nobody gets it twice."""
    admins = await emails.admin_recipients(tenant_id)
    rows = await Tenant.filter(id=tenant_id).values_list("locale", "alert_recipients")
    tenant_locale, addresses = rows[0] if rows else (None, [])
    default = locale_of(tenant_locale) or DEFAULT_LOCALE
    known = {admin.address.lower() for admin in admins}
    extra: list[emails.Recipient] = []
    for address in addresses or []:
        if isinstance(address, str) and address.lower() not in known:
            known.add(address.lower())
            extra.append(emails.Recipient(address, default))
    return [*admins, *extra]


# --- Publishing (after commit) -----------------------------------------------------------------


def channel_of(tenant_id: uuid.UUID | str) -> str:
    return f"alerts:{tenant_id}"


def encode(alert: LimitAlert) -> str:
    return orjson.dumps(
        {
            "id": alert.id,
            "tenant_id": str(alert.tenant_id),
            "kind": alert.kind.value,
            "threshold": alert.threshold,
            "state": alert.state.value,
            "used": alert.used,
            "limit": alert.limit,
            "period": alert.period,
            "at": alert.created_at.isoformat(),
        }
    ).decode()


def decode(message: str) -> LimitAlert:
    data = orjson.loads(message)
    return LimitAlert(
        id=data["id"],
        tenant_id=uuid.UUID(data["tenant_id"]),
        kind=AlertKind(data["kind"]),
        threshold=data["threshold"],
        state=AlertState(data["state"]),
        used=data["used"],
        limit=data["limit"],
        period=data["period"],
        created_at=dt.datetime.fromisoformat(data["at"]),
    )


async def publish(broadcaster: Broadcaster | None, alerts: Sequence[LimitAlert]) -> None:
    """Call after the commit: count the alerts, push them to live subscribers and mark them published
    (at the instant they were raised: the writer's clock). They are already stored and e-mailed, so a
    broadcast failure is logged, not raised: the caller's change stands, and the alert, still
    unpublished, is pushed later by the background task. Without a broadcaster (a service called
    outside the app) the alerts are left to that task too."""
    for alert in alerts:
        ALERTS_RAISED.labels(
            kind=alert.kind.value, threshold=str(alert.threshold), state=alert.state.value
        ).inc()
    if broadcaster is None:
        return
    for alert in alerts:
        if await push(broadcaster, alert):
            await mark_published(alert, alert.created_at)


async def push(broadcaster: Broadcaster, alert: LimitAlert) -> bool:
    """Push one alert to its tenant's channel; ``False`` (logged) when the broadcaster failed."""
    try:
        await broadcaster.publish(channel_of(alert.tenant_id), encode(alert))
    except Exception:  # Redis away: the alert stays in the store and the outbox, unpublished
        logger.warning("alert not broadcast", exc_info=True, extra={"alert_id": alert.id})
        return False
    return True


async def mark_published(alert: LimitAlert, now: dt.datetime) -> bool:
    """Record that ``alert`` was pushed: a conditional UPDATE, so only the first mark counts. A failed
    mark is logged: the alert will be pushed again (at least once)."""
    try:
        marked = await LimitAlert.filter(id=alert.id, published_at__isnull=True).update(published_at=now)
    except Exception:  # the database briefly away: pushed again later, which subscribers dedupe
        logger.warning("alert publication not recorded", exc_info=True, extra={"alert_id": alert.id})
        return False
    return bool(marked)


# --- Reading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertPage:
    alerts: list[LimitAlert]
    has_next_page: bool
    has_previous_page: bool
    total_count: int


def cursor_of(alert: LimitAlert) -> str:
    return cursors.encode("alert", alert.id)


async def list_alerts(tenant_id: uuid.UUID | str, *, first: int, after: str | None) -> AlertPage:
    """The tenant's alerts, newest first, ``first`` at a time after ``after``: a cursor of one of this
    tenant's alerts (another tenant's is as foreign as garbage, and says nothing about its list)."""
    alerts = LimitAlert.filter(tenant_id=tenant_id)
    query = alerts
    if after is not None:
        position = cursors.decode_id(after, "alert")
        if not await alerts.filter(id=position).exists():
            raise cursors.ForeignCursor(field="after")
        query = alerts.filter(id__lt=position)
    rows = await query.order_by("-id").limit(first + 1)
    return AlertPage(
        alerts=rows[:first],
        has_next_page=len(rows) > first,
        # The alert the cursor names precedes the page (alerts are never deleted).
        has_previous_page=after is not None,
        total_count=await alerts.count(),
    )
