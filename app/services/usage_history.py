"""A tenant's usage day by day (``usageHistory``) and the credit forecast's reports (issue 15).

Every usage report is kept (``usage_report``); the applied ones are the history. The usage in force at an
instant is the applied report with the latest ``measured_at`` on or before it: a report is applied only when
measured after the one in force, so among applied reports the latest measured wins, and a late report
(measured before the one in force, not applied) never shows. A day's point is the usage in force at its end
(UTC): a day without a report carries the previous value forward, ``reported`` says whether one was measured
that day, and before the first report ever there is no usage (``None``). Processes are the starts counted
that day (``process_start.started_at``, UTC day), per kind.

Bounded work whatever the number of days (at most ``MAX_DAYS``): the last applied report before the range
(one index lookup on ``(tenant_id, measured_at)``), the range's applied reports reduced in SQL to the last of
each day (a window function), and the starts per day and kind. Counting starts is what grows with the
range (a connector starting a process every 10 s makes 3.5 million in 400 days: about a second to count on
PostgreSQL), so each day's counts are counted once: a day over for ``CLOSED_AFTER`` (its starts are final,
whatever the clocks of the instances) is rolled up into ``ProcessDay`` by the first history that shows it,
and read from there afterwards; the open days (today, and yesterday for its first hour) are counted live.
Counting uses the index ``(tenant_id, process, started_at)``, every kind named so that each is one range
scan. Days are computed by the database (``date()`` on SQLite, which stores UTC text; ``AT TIME ZONE 'UTC'``
on PostgreSQL).

The credit forecast reads the applied reports of the last 30 days in one statement and fits them in
``app.services.forecast``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tortoise import connections

from app.i18n import _
from app.models.metering import ProcessDay, ProcessKind, UsageReport
from app.models.tenancy import Tenant
from app.services import sql
from app.services.errors import InvalidInput
from app.services.forecast import CREDIT_WINDOW, CreditForecast, forecast_credits
from app.services.usage import COUNT_FIELDS

MAX_DAYS = 400  # a year and a bit: a chart of 13 months, in one call
# A day's starts are final this long after it ended (a start is stamped with its instance's clock, which may
# lag another instance's by seconds): only then is the day rolled up.
CLOSED_AFTER = dt.timedelta(hours=1)

_USAGE_COLUMNS = (*COUNT_FIELDS, "users", "integrations", "storage_bytes", "measured_at")


@dataclass(frozen=True, slots=True)
class DayUsage:
    """The usage report in force at a day's end."""

    variants: int
    customers: int
    contacts: int
    sales_reps: int
    admin_users: int
    users: int  # as reported, else the administrator users (as the report was applied)
    integrations: int | None  # as reported; None: not reported (then the add-ons of the time counted)
    storage_bytes: int
    measured_at: dt.datetime

    @property
    def credits(self) -> int:
        return self.variants + self.customers + self.contacts + self.sales_reps + self.admin_users


@dataclass(frozen=True, slots=True)
class UsageDay:
    day: dt.date
    reported: bool  # whether a report in force was measured this day
    usage: DayUsage | None  # None: before the tenant's first report
    processes: dict[ProcessKind, int] = field(default_factory=dict)  # kinds started this day only

    @property
    def processes_total(self) -> int:
        return sum(self.processes.values())


def days_asked(start: dt.date, end: dt.date, *, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """``start..end`` checked (at most ``MAX_DAYS``, in order) and cut at today (UTC): the days to show,
    possibly none (``end`` before ``start`` after the cut)."""
    if end < start:
        raise InvalidInput(_("to must be on or after from."), field="to")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(
            _("At most {max_days} days a call, from and to included.", max_days=MAX_DAYS), field="from"
        )
    return start, min(end, now.astimezone(dt.UTC).date())


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _postgres() -> bool:
    return bool(connections.get("default").capabilities.dialect == "postgres")


def _day_of(column: str) -> str:
    if _postgres():
        return f"CAST({column} AT TIME ZONE 'UTC' AS DATE)"
    return f"date({column})"  # SQLite: the stored text is UTC; date() gives YYYY-MM-DD


def _instant(value: dt.datetime) -> Any:
    # SQLite compares the stored text: pass the same text the ORM writes ("2026-11-23 00:00:00+00:00").
    return value if _postgres() else value.isoformat(" ")


def _as_date(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


_MEASURED_AT = UsageReport._meta.fields_map["measured_at"]


def _usage_of(row: dict[str, Any]) -> DayUsage:
    counts = {name: int(row[name]) for name in COUNT_FIELDS}
    return DayUsage(
        **counts,
        users=counts["admin_users"] if row["users"] is None else int(row["users"]),
        integrations=None if row["integrations"] is None else int(row["integrations"]),
        storage_bytes=int(row["storage_bytes"]),
        measured_at=_MEASURED_AT.to_python_value(row["measured_at"]),
    )


async def in_force_before(tenant_id: uuid.UUID | str, instant: dt.datetime) -> DayUsage | None:
    """The last applied report measured before ``instant``: the usage in force then (None: none yet)."""
    rows = (
        await UsageReport.filter(tenant_id=tenant_id, applied=True, measured_at__lt=instant)
        .order_by("-measured_at")
        .limit(1)
        .values(*_USAGE_COLUMNS)
    )
    return _usage_of(rows[0]) if rows else None


_LAST_OF_EACH_DAY = (
    "SELECT {columns}, day FROM ("
    " SELECT {columns}, {day} AS day,"
    " ROW_NUMBER() OVER (PARTITION BY {day} ORDER BY measured_at DESC) AS latest"
    " FROM usage_report WHERE tenant_id = {{0}} AND applied AND measured_at >= {{1}} AND measured_at < {{2}}"
    ") AS r WHERE latest = 1"
)


async def _last_of_each_day(
    tenant_id: uuid.UUID, since: dt.datetime, until: dt.datetime
) -> dict[dt.date, DayUsage]:
    statement = _LAST_OF_EACH_DAY.format(columns=", ".join(_USAGE_COLUMNS), day=_day_of("measured_at"))
    rows = await sql.fetch_all(statement, tenant_id, _instant(since), _instant(until))
    return {_as_date(row["day"]): _usage_of(row) for row in rows}


_KINDS = ", ".join(f"'{kind.value}'" for kind in ProcessKind)  # the enum's own constants, not input
_STARTS_BY_DAY = (
    "SELECT {day} AS day, process, COUNT(*) AS starts FROM process_start"
    " WHERE tenant_id = {{0}} AND process IN ({kinds}) AND started_at >= {{1}} AND started_at < {{2}}"
    " GROUP BY 1, 2"
)


async def _count_starts(
    tenant_id: uuid.UUID, first: dt.date, last: dt.date
) -> dict[dt.date, dict[ProcessKind, int]]:
    """The starts of days ``first..last`` by day and kind, counted from ``process_start`` (kinds with
    starts only)."""
    statement = _STARTS_BY_DAY.format(day=_day_of("started_at"), kinds=_KINDS)
    since, until = _midnight(first), _midnight(last) + dt.timedelta(days=1)
    rows = await sql.fetch_all(statement, tenant_id, _instant(since), _instant(until))
    starts: dict[dt.date, dict[ProcessKind, int]] = defaultdict(dict)
    for row in rows:
        starts[_as_date(row["day"])][ProcessKind(row["process"])] = int(row["starts"])
    return starts


def _kinds_of(row: ProcessDay) -> dict[ProcessKind, int]:
    return {kind: row.started(kind) for kind in ProcessKind if row.started(kind)}


async def _rolled_up(
    tenant_id: uuid.UUID, first: dt.date, last: dt.date
) -> dict[dt.date, dict[ProcessKind, int]]:
    """The starts of closed days ``first..last``: from the rollup, after rolling up the days not in it yet
    (one count over their span, one insert; concurrent histories insert the same rows, the first wins)."""
    rows = await ProcessDay.filter(tenant_id=tenant_id, day__gte=first, day__lte=last)
    starts = {row.day: _kinds_of(row) for row in rows}
    missing = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    missing = [day for day in missing if day not in starts]
    if missing:
        counted = await _count_starts(tenant_id, missing[0], missing[-1])
        days = [ProcessDay(tenant_id=tenant_id, day=day) for day in missing]
        for row in days:
            for kind, count in counted.get(row.day, {}).items():
                setattr(row, ProcessDay.column_of(kind), count)
            starts[row.day] = _kinds_of(row)
        await ProcessDay.bulk_create(days, ignore_conflicts=True, batch_size=500)
    return starts


async def _starts_by_day(
    tenant_id: uuid.UUID, first: dt.date, last: dt.date, *, now: dt.datetime
) -> dict[dt.date, dict[ProcessKind, int]]:
    """The starts of days ``first..last`` by day and kind: the closed days' from the rollup, the open
    days' counted live."""
    last_closed = (now - CLOSED_AFTER).astimezone(dt.UTC).date() - dt.timedelta(days=1)
    starts: dict[dt.date, dict[ProcessKind, int]] = {}
    if first <= last_closed:
        starts.update(await _rolled_up(tenant_id, first, min(last, last_closed)))
    if last > last_closed:
        starts.update(await _count_starts(tenant_id, max(first, last_closed + dt.timedelta(days=1)), last))
    return starts


async def usage_history(tenant: Tenant, *, start: dt.date, end: dt.date, now: dt.datetime) -> list[UsageDay]:
    """One point per UTC day from ``start`` to ``end`` (included), today at the latest: the usage in force
    at the day's end and the processes started that day. At most ``MAX_DAYS`` days (``InvalidInput``).
    Days before the environment existed started nothing: they are neither counted nor rolled up (a caller
    asking for the year 1 writes nothing)."""
    first, last = days_asked(start, end, now=now)
    if last < first:
        return []  # every day asked is in the future
    tenant_id = uuid.UUID(str(tenant.id))
    since, until = _midnight(first), _midnight(last) + dt.timedelta(days=1)
    in_force = await in_force_before(tenant_id, since)
    reported = await _last_of_each_day(tenant_id, since, until)
    opened = tenant.created_at.astimezone(dt.UTC).date()
    starts = await _starts_by_day(tenant_id, max(first, opened), last, now=now) if last >= opened else {}
    days: list[UsageDay] = []
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        in_force = reported.get(day, in_force)
        days.append(
            UsageDay(day=day, reported=day in reported, usage=in_force, processes=starts.get(day, {}))
        )
    return days


# --- The credit forecast's reports ---------------------------------------------------------------


async def credit_points(tenant_id: uuid.UUID | str, *, now: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """The applied reports measured in the 30 days before ``now`` (and the few minutes of clock skew a
    report may be ahead by), oldest first: (measured at, credits), in one statement."""
    rows = (
        await UsageReport.filter(tenant_id=tenant_id, applied=True, measured_at__gt=now - CREDIT_WINDOW)
        .order_by("measured_at")
        .values_list("measured_at", *COUNT_FIELDS)
    )
    return [(measured_at, sum(counts)) for measured_at, *counts in rows]


async def credit_forecast(
    tenant_id: uuid.UUID | str, limit: int, *, now: dt.datetime
) -> CreditForecast | None:
    """The credits' trend over the last 30 days of reports and when it passes ``limit``."""
    return forecast_credits(await credit_points(tenant_id, now=now), limit=limit, now=now)
