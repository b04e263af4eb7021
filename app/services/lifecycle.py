"""The life of a contracted add-on after checkout: finding the caller's own add-on by id, and the
periodic task behind the "disabled today" e-mail (docs/design.md, "The add-on store": on the date a
cancelled add-on ends it stops counting towards the limits, and the admins are e-mailed).

Whether an add-on still counts is computed from the clock (``AddOnSubscription.is_active_at``), so
the limits never wait for this task: it only tells the admins, once, and records it. ``once`` holds
even with several gateway instances or a task that runs late: each subscription is claimed by one
conditional UPDATE of ``end_notified_at``, and the e-mails carry a dedupe key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from tortoise.transactions import in_transaction

from app.auth.principal import Principal
from app.background import repeating
from app.broadcast import Broadcaster
from app.clock import Clock
from app.i18n import Text, _
from app.models.billing import AddOnSubscription
from app.models.enums import AddOnStatus
from app.models.metering import LimitAlert
from app.notifications import emails
from app.notifications.outbox import notify_admins
from app.services import alerts, audit, usage_reports, webhook_events
from app.services.errors import DomainError, ErrorCode, NotFound
from app.services.limits import Limits
from app.services.locks import lock_tenant
from app.services.plan_changes import apply_due_plan_changes
from app.services.webhook_events import EventType

logger = logging.getLogger("tollgate.lifecycle")


# The argument that names a contracted add-on in the API: the ``field`` of the errors about it.
ID_ARGUMENT = "activeAddOnId"


class AddOnEnded(DomainError):
    """Carries ``ended_at``: the instant the add-on stopped counting."""

    code = ErrorCode.ADD_ON_ENDED
    default_message = _("This add-on has already ended.")


def ended(subscription: AddOnSubscription, message: Text) -> AddOnEnded:
    # An ended add-on always has its end date: it ends only at ``ends_at`` (``status_at``).
    assert subscription.ends_at is not None
    return AddOnEnded(message, field=ID_ARGUMENT, ended_at=subscription.ends_at)


def not_found() -> NotFound:
    # The same answer for a malformed id, an unknown one and another tenant's: ids leak nothing.
    return NotFound(_("This environment has no add-on with this id."), field=ID_ARGUMENT)


async def owned_add_on(principal: Principal, subscription_id: str) -> AddOnSubscription:
    """The caller's tenant's add-on subscription ``subscription_id``, with ``add_on`` loaded."""
    try:
        key = uuid.UUID(str(subscription_id))
    except ValueError:
        raise not_found() from None
    subscription = await AddOnSubscription.get_or_none(id=key, tenant_id=principal.tenant.id).select_related(
        "add_on"
    )
    if subscription is None:
        raise not_found()
    return subscription


def ended_email(subscription: AddOnSubscription, tenant_name: str) -> dict[str, Any]:
    """What the "disabled today" e-mail says: the template ``add_on_ended`` (app/templates/email)."""
    assert subscription.ends_at is not None
    return {"add_on": subscription.add_on, "tenant_name": tenant_name, "ended_on": subscription.ends_at}


async def notify_ended_add_ons(
    now: dt.datetime, *, batch_size: int = 200, broadcaster: Broadcaster | None = None
) -> int:
    """E-mail the admins of every add-on that ended by ``now`` and has not been announced yet.

    Returns how many add-ons were announced. Safe to call from any number of places at once.
    """
    due = (
        await AddOnSubscription.filter(ends_at__lte=now, end_notified_at__isnull=True)
        .select_related("add_on", "tenant")
        .order_by("ends_at", "id")
        .limit(batch_size)
    )
    announced = 0
    raised: list[LimitAlert] = []
    for subscription in due:
        async with in_transaction():
            # First, as a usage report does: the alerts below are judged against the usage committed last.
            await lock_tenant(subscription.tenant_id)
            claimed = await AddOnSubscription.filter(
                id=subscription.id, ends_at__lte=now, end_notified_at__isnull=True
            ).update(end_notified_at=now, status=AddOnStatus.ENDED)
            if not claimed:  # another instance got there first
                continue
            # Lower limits now: the last usage may cross a threshold it was under.
            raised += await usage_reports.reevaluate_alerts(subscription.tenant, now=now)
            assert subscription.ends_at is not None
            await notify_admins(
                subscription.tenant_id,
                emails.ADD_ON_ENDED,
                ended_email(subscription, subscription.tenant.name),
                now=now,
                dedupe_key=f"add-on-ended:{subscription.id}",
            )
            await audit.record(
                tenant_id=subscription.tenant_id,
                principal=None,
                action="add_on.end",
                now=now,
                subject_id=subscription.id,
                add_on=subscription.add_on.code,
                ended_at=subscription.ends_at.isoformat(),
            )
            tenant = subscription.tenant
            await webhook_events.emit_add_on_change(
                EventType.ADD_ON_ENDED, subscription, tenant, ends_at=subscription.ends_at, now=now
            )
            if Limits.increments_of(subscription.add_on) != Limits():
                await webhook_events.emit_limits_changed(tenant, cause=EventType.ADD_ON_ENDED, now=now)
        announced += 1
    await alerts.publish(broadcaster, raised)  # after the commits
    return announced


class AddOnLifecycleTask:
    """Runs ``notify_ended_add_ons`` every ``interval`` seconds in the app's lifespan."""

    def __init__(
        self,
        *,
        clock: Clock,
        interval: float = 60.0,
        on_enqueued: Callable[[], None] | None = None,
        broadcaster: Broadcaster | None = None,
    ) -> None:
        self.clock = clock
        self.broadcaster = broadcaster
        self.interval = interval
        self.on_enqueued = on_enqueued  # e.g. the outbox dispatcher's ``wake``

    async def run_once(self) -> int:
        announced = await notify_ended_add_ons(self.clock.now(), broadcaster=self.broadcaster)
        # The downgrades scheduled for the end of a period: same cadence, same once-only claims.
        announced += await apply_due_plan_changes(self.clock.now(), broadcaster=self.broadcaster)
        if announced and self.on_enqueued is not None:
            self.on_enqueued()
        return announced

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AddOnLifecycleTask]:
        async with repeating(self.run_once, every=self.interval, name="add-on-lifecycle", logger=logger):
            yield self
