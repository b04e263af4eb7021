"""Pushes the limit alerts that were committed but never pushed live (docs/design.md: events after commit).

A gateway that dies between committing an alert and publishing it leaves the alert stored and e-mailed
but with ``published_at`` NULL (see ``app.services.alerts``). This task of the app's lifespan, beside the
outbox dispatcher, pushes such alerts once they are older than a short grace (so that it does not race
the writer that is about to publish its own), oldest first, at start and then periodically.

Several instances may run it: each pass takes the due rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` in
one transaction on PostgreSQL, so an alert is pushed by one instance and marked before its lock is
released; SQLite serves one process, whose transactions are serialised anyway. A crash after the push
and before the commit pushes it again later: at least once, deduplicated by subscribers on the id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

from tortoise.transactions import in_transaction

from app.background import repeating
from app.broadcast import Broadcaster
from app.clock import Clock
from app.models.metering import LimitAlert
from app.services.alerts import push

logger = logging.getLogger("tollgate.alerts")


async def publish_pending(
    broadcaster: Broadcaster, *, now: dt.datetime, grace: dt.timedelta, batch_size: int = 200
) -> int:
    """Push and mark the unpublished alerts raised before ``now - grace``; returns how many."""
    published = 0
    async with in_transaction():
        due = (
            await LimitAlert.filter(published_at__isnull=True, created_at__lte=now - grace)
            .order_by("id")
            .limit(batch_size)
            .select_for_update(skip_locked=True)
        )
        for alert in due:
            if not await push(broadcaster, alert):
                break  # the broadcaster is away: the next pass tries again, in order
            # Under the row lock: nobody else marks it meanwhile. A failure here rolls the pass back
            # (logged by ``repeating``); the pushed alerts go again next pass, which subscribers dedupe.
            published += await LimitAlert.filter(id=alert.id, published_at__isnull=True).update(
                published_at=now
            )
    if published:
        logger.info("published %d alert(s) left unpublished", published)
    return published


class PendingAlertsTask:
    """Runs ``publish_pending`` at start and every ``interval`` seconds in the app's lifespan."""

    def __init__(
        self,
        broadcaster: Broadcaster,
        *,
        clock: Clock,
        grace: dt.timedelta = dt.timedelta(seconds=5),
        interval: float = 5.0,
    ) -> None:
        self.broadcaster = broadcaster
        self.clock = clock
        self.grace = grace
        self.interval = interval

    async def run_once(self) -> int:
        return await publish_pending(self.broadcaster, now=self.clock.now(), grace=self.grace)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PendingAlertsTask]:
        async with repeating(self.run_once, every=self.interval, name="pending-alerts", logger=logger):
            yield self
