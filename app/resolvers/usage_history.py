"""Usage history: ``usageHistory`` (issue 15), one point per day for charts.

The rules are in ``app.services.usage_history``; the credit forecast is ``creditUsage.forecast``
(``app.resolvers.metering``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from app.auth import scopes
from app.models.metering import ProcessKind
from app.resolvers.context import Info
from app.resolvers.errors import InvalidInputError
from app.resolvers.metering import CreditBreakdown, ProcessKindEnum
from app.resolvers.permissions import allow
from app.resolvers.scalars import Long
from app.services import usage_history as history_service
from app.services.usage_history import MAX_DAYS


@strawberry.type(description="How many processes of one kind started on a day.")
class ProcessCount:
    process: ProcessKindEnum = strawberry.field(description="The kind of process.")  # type: ignore[valid-type]
    starts: int = strawberry.field(description="The starts counted that day (UTC).")


@strawberry.type(
    description="One UTC day: the usage in force at its end (the last report measured on or before it, "
    "carried forward over days without one) and the processes started that day."
)
class UsageDay:
    date: dt.date = strawberry.field(description="The day (UTC).")
    reported: bool = strawberry.field(
        description="Whether the usage in force at the day's end was measured that day; false: carried "
        "forward from an earlier day (or nothing reported yet)."
    )
    credits: int | None = strawberry.field(
        description="Credits used at the day's end: the sum of the breakdown; null: nothing reported yet."
    )
    breakdown: CreditBreakdown | None = strawberry.field(
        description="The credits at the day's end, by kind of record; null: nothing reported yet."
    )
    storage_bytes: Long | None = strawberry.field(
        description="Storage used at the day's end, in bytes; null: nothing reported yet."
    )
    users: int | None = strawberry.field(
        description="User accounts at the day's end (the administrator users when the report did not "
        "count them); null: nothing reported yet."
    )
    integrations: int | None = strawberry.field(
        description="Integrations in use at the day's end, as reported; null: nothing reported yet, or "
        "the report did not count them."
    )
    measured_at: dt.datetime | None = strawberry.field(
        description="When the usage in force at the day's end was measured; null: nothing reported yet."
    )
    processes: int = strawberry.field(description="Processes started that day (UTC), every kind.")
    processes_by_kind: list[ProcessCount] = strawberry.field(
        description="Processes started that day by kind: only the kinds that started, in `ProcessKind` order."
    )

    @classmethod
    def of(cls, day: history_service.UsageDay) -> UsageDay:
        usage = day.usage
        by_kind = [
            ProcessCount(process=kind, starts=day.processes[kind])
            for kind in ProcessKind
            if kind in day.processes
        ]
        return cls(
            date=day.day,
            reported=day.reported,
            credits=usage.credits if usage else None,
            breakdown=CreditBreakdown.of(usage) if usage else None,
            storage_bytes=Long(usage.storage_bytes) if usage else None,
            users=usage.users if usage else None,
            integrations=usage.integrations if usage else None,
            measured_at=usage.measured_at if usage else None,
            processes=day.processes_total,
            processes_by_kind=by_kind,
        )


@strawberry.type(description="The environment's usage day by day, for charts.")
class UsageHistory:
    from_: dt.date = strawberry.field(name="from", description="The first day asked.")
    to: dt.date = strawberry.field(description="The last day asked (days after today are not listed).")
    days: list[UsageDay] = strawberry.field(
        description="One point per day from `from` to `to`, today at the latest, oldest first."
    )


UsageHistoryResult = Annotated[
    UsageHistory | InvalidInputError,
    strawberry.union("UsageHistoryResult", description="The usage day by day, or why the range was refused."),
]


@strawberry.type
class Query:
    @strawberry.field(
        name="usageHistory",
        extensions=allow(scopes.TENANT_READ, scopes.USAGE_REPORT, scopes.QUOTA_CHECK),
        description=f"The caller's environment's usage per UTC day, from `from` to `to` (at most {MAX_DAYS} "
        "days a call; days after today are left out): the credits, their breakdown, storage, users and "
        "integrations in force at each day's end, and the processes started that day.",
    )
    async def usage_history(
        self,
        info: Info,
        from_: Annotated[dt.date, strawberry.argument(name="from", description="The first day (UTC).")],
        to: Annotated[dt.date, strawberry.argument(description="The last day (UTC), included.")],
    ) -> UsageHistoryResult | None:
        principal = await info.context.require_principal()
        days = await history_service.usage_history(
            principal.tenant, start=from_, end=to, now=info.context.clock.now()
        )
        return UsageHistory(from_=from_, to=to, days=[UsageDay.of(day) for day in days])
