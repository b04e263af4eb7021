"""Cancelling an add-on (seed 000, "Como cancelar um complemento contratado"; docs/design.md, "The add-on
store", Cancellation).

- ``preview``: until when the add-on stays available (the last day of the current billing period)
  and what its loss would break: current usage (``app.services.usage.current_usage``) above the
  limits left once it ends, or another add-on that requires it.
- ``cancel``: records ``ends_at`` (the end of the current billing period) with one conditional
  UPDATE, so of two cancellations, concurrent or not, exactly one wins and the other gets
  ``AddOnAlreadyCancelled``; audits it and e-mails every admin with the date, in the same transaction.
- ``undo``: before ``ends_at`` only, again one conditional UPDATE.

From ``ends_at`` on the add-on stops counting in the effective limits because they are computed
from the clock (``subscriptions.counting_at``); nothing has to run on that day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tortoise.transactions import in_transaction

from app.auth.principal import Principal
from app.broadcast import Broadcaster
from app.i18n import _
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import Plan
from app.models.enums import AddOnStatus, Cadence, PlanSubscriptionStatus, StoragePolicy
from app.notifications import emails
from app.notifications.outbox import notify_admins
from app.services import audit, webhook_events
from app.services.access import require_store_access
from app.services.credits import BYTES_PER_MB
from app.services.errors import DomainError, ErrorCode, NoActivePlan
from app.services.lifecycle import ID_ARGUMENT, ended, not_found, owned_add_on
from app.services.limits import Limits, effective_limits
from app.services.periods import BillingPeriod
from app.services.plan_cache import PlanCache, plan_changed
from app.services.subscriptions import TenantPlan, load_tenant_plan
from app.services.usage import CurrentUsage, current_usage
from app.services.webhook_events import EventType


class AddOnAlreadyCancelled(DomainError):
    """Carries ``ends_at``: when the add-on stops counting."""

    code = ErrorCode.ADD_ON_ALREADY_CANCELLED
    default_message = _("This add-on is already cancelled.")


class AddOnNotCancelled(DomainError):
    code = ErrorCode.ADD_ON_NOT_CANCELLED
    default_message = _("This add-on is not cancelled: there is nothing to undo.")


class AddOnNotCancellable(DomainError):
    code = ErrorCode.ADD_ON_NOT_CANCELLABLE
    default_message = _("This add-on cannot be cancelled.")


class WarningKind(StrEnum):
    CREDITS = "CREDITS"
    USERS = "USERS"
    INTEGRATIONS = "INTEGRATIONS"
    STORAGE = "STORAGE"
    REQUIRED_BY = "REQUIRED_BY"  # another add-on that stays needs this one


@dataclass(frozen=True, slots=True)
class CancellationWarning:
    kind: WarningKind
    message: str
    used: int | None = None  # storage in bytes
    limit_now: int | None = None
    limit_after: int | None = None
    required_by_add_on_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancellationTerms:
    subscription: AddOnSubscription  # with ``add_on`` loaded
    period: BillingPeriod
    ends_at: dt.datetime  # the first instant it no longer counts
    warnings: list[CancellationWarning]

    @property
    def available_until(self) -> dt.date:
        return self.period.last_day


def _usage_by_kind(usage: CurrentUsage) -> dict[WarningKind, int]:
    return {
        WarningKind.CREDITS: usage.credits,
        WarningKind.USERS: usage.users,
        WarningKind.INTEGRATIONS: usage.integrations,
        WarningKind.STORAGE: usage.storage_bytes,
    }


def _limits_by_kind(limits: Limits) -> dict[WarningKind, int]:
    return {
        WarningKind.CREDITS: limits.credits,
        WarningKind.USERS: limits.users,
        WarningKind.INTEGRATIONS: limits.integrations,
        WarningKind.STORAGE: limits.storage_mb * BYTES_PER_MB,
    }


_CONSEQUENCE = {
    WarningKind.CREDITS: "no sync process will be launched while credits used exceed the limit",
    WarningKind.USERS: "no more users can be added",
    WarningKind.INTEGRATIONS: "no more integrations can be connected",
}


def _consequence(kind: WarningKind, plan: Plan) -> str:
    if kind == WarningKind.STORAGE:
        if plan.storage_policy == StoragePolicy.OVERAGE:
            return "the extra storage will be billed as overage per started GB"
        return "uploads will be refused while storage is full"
    return _CONSEQUENCE[kind]


def _shown(kind: WarningKind, amount: int) -> str:
    """A figure for the warning's message: storage in MB (rounded up), as people read it."""
    return f"{-(-amount // BYTES_PER_MB)} MB" if kind == WarningKind.STORAGE else str(amount)


def assess(view: TenantPlan, subscription: AddOnSubscription, usage: CurrentUsage) -> CancellationTerms:
    """When ``subscription`` would end if cancelled now, and what its loss would put over a limit."""
    period = view.period
    ends_at = period.end_instant()
    # What still counts once it ends: the other add-ons that have not ended by then.
    remaining = [s for s in view.add_ons if s.id != subscription.id and s.is_active_at(ends_at)]
    after = _limits_by_kind(effective_limits(view.subscription.plan, remaining))
    now = _limits_by_kind(view.effective_limits)
    increments = _limits_by_kind(Limits.increments_of(subscription.add_on).times(subscription.quantity))
    used = _usage_by_kind(usage)
    name = subscription.add_on.name
    warnings = []
    for kind in (WarningKind.CREDITS, WarningKind.USERS, WarningKind.INTEGRATIONS, WarningKind.STORAGE):
        if increments[kind] > 0 and used[kind] > after[kind]:
            warnings.append(
                CancellationWarning(
                    kind=kind,
                    message=(
                        f"Without {name}, the {kind.lower()} limit drops to {_shown(kind, after[kind])} "
                        f"while {_shown(kind, used[kind])} are in use: "
                        f"{_consequence(kind, view.subscription.plan)}."
                    ),
                    used=used[kind],
                    limit_now=now[kind],
                    limit_after=after[kind],
                )
            )
    code = subscription.add_on.code
    still_provided = any(s.add_on.code == code for s in remaining)
    dependants = sorted(
        {s.add_on.code for s in remaining if code in s.add_on.requires_add_on_codes}
        if not still_provided
        else ()
    )
    if dependants:
        warnings.append(
            CancellationWarning(
                kind=WarningKind.REQUIRED_BY,
                message=f"Contracted add-ons that require {name}: {', '.join(dependants)}. "
                "They stay contracted but lose what it provides.",
                required_by_add_on_codes=tuple(dependants),
            )
        )
    return CancellationTerms(subscription=subscription, period=period, ends_at=ends_at, warnings=warnings)


def _refuse_if_not_cancellable(subscription: AddOnSubscription, now: dt.datetime) -> None:
    name = subscription.add_on.name
    status = subscription.status_at(now)
    if status == AddOnStatus.ENDED:
        raise ended(subscription, _("{name} already ended.", name=name))
    # A cancellation sets CANCELLING and ``ends_at`` together (an undo clears both): the date says it.
    if subscription.ends_at is not None:
        last_day = (subscription.ends_at - dt.timedelta(days=1)).date().isoformat()
        raise AddOnAlreadyCancelled(
            _(
                "{name} is already cancelled: it stays available until {last_day}.",
                name=name,
                last_day=last_day,
            ),
            field=ID_ARGUMENT,
            ends_at=subscription.ends_at,
        )
    if subscription.add_on.cadence == Cadence.ONE_OFF:
        raise AddOnNotCancellable(
            _("{name} was billed once: there is nothing to cancel.", name=name), field=ID_ARGUMENT
        )


async def _terms(principal: Principal, subscription_id: str, now: dt.datetime) -> CancellationTerms:
    subscription = await owned_add_on(principal, subscription_id)
    if subscription.contracted_at > now:
        raise not_found()
    _refuse_if_not_cancellable(subscription, now)
    view = await load_tenant_plan(principal.tenant, now=now)
    return assess(view, subscription, await current_usage(principal.tenant.id))


async def preview(
    principal: Principal, *, subscription_id: str, eligible_since: dt.date, now: dt.datetime
) -> CancellationTerms:
    """``cancellationPreview``: until when it stays available, and the warnings."""
    require_store_access(principal, eligible_since=eligible_since)
    return await _terms(principal, subscription_id, now)


def cancelled_email(terms: CancellationTerms, *, tenant_name: str, actor: str) -> dict[str, Any]:
    """What the cancellation e-mail says: the template ``add_on_cancelled`` (app/templates/email)."""
    return {
        "actor": actor,
        "tenant_name": tenant_name,
        "add_on": terms.subscription.add_on,
        "available_until": terms.available_until,
        "ends_at": terms.ends_at,
        "warnings": [warning.message for warning in terms.warnings],
    }


async def cancel(
    principal: Principal,
    *,
    subscription_id: str,
    eligible_since: dt.date,
    now: dt.datetime,
    plan_cache: PlanCache | None = None,
    broadcaster: Broadcaster | None = None,
) -> CancellationTerms:
    """``cancelAddOn``: ends the add-on at the end of the current billing period."""
    require_store_access(principal, eligible_since=eligible_since)
    terms = await _terms(principal, subscription_id, now)
    subscription = terms.subscription
    async with in_transaction():
        # The one write that decides: a concurrent or repeated cancellation matches no row.
        won = await AddOnSubscription.filter(
            id=subscription.id, tenant_id=principal.tenant.id, status=AddOnStatus.ACTIVE, ends_at__isnull=True
        ).update(status=AddOnStatus.CANCELLING, cancelled_at=now, ends_at=terms.ends_at)
        if not won:
            current = await AddOnSubscription.get(id=subscription.id).select_related("add_on")
            _refuse_if_not_cancellable(current, now)
            # Any cancellation in this period ends it when this one would have (even one undone since).
            raise AddOnAlreadyCancelled(
                _("{name} was just cancelled.", name=subscription.add_on.name),
                field=ID_ARGUMENT,
                ends_at=current.ends_at or terms.ends_at,
            )
        await audit.record(
            tenant_id=principal.tenant.id,
            principal=principal,
            action="add_on.cancel",
            now=now,
            subject_id=subscription.id,
            add_on=subscription.add_on.code,
            ends_at=terms.ends_at.isoformat(),
            warnings=[warning.kind.value for warning in terms.warnings],
        )
        await webhook_events.emit_add_on_change(
            EventType.ADD_ON_CANCELLED, subscription, principal.tenant, ends_at=terms.ends_at, now=now
        )
        await notify_admins(
            principal.tenant.id,
            emails.ADD_ON_CANCELLED,
            cancelled_email(terms, tenant_name=principal.tenant.name, actor=audit.actor_of(principal)),
            now=now,
        )
    await plan_changed(principal.tenant.id, cache=plan_cache, broadcaster=broadcaster)  # after the commit
    subscription.status = AddOnStatus.CANCELLING
    subscription.cancelled_at = now
    subscription.ends_at = terms.ends_at
    return terms


async def undo(
    principal: Principal,
    *,
    subscription_id: str,
    eligible_since: dt.date,
    now: dt.datetime,
    plan_cache: PlanCache | None = None,
    broadcaster: Broadcaster | None = None,
) -> AddOnSubscription:
    """``undoCancellation``: before the end date only; the add-on is ACTIVE again."""
    require_store_access(principal, eligible_since=eligible_since)
    subscription = await owned_add_on(principal, subscription_id)
    # As a cancellation does: without an active plan there is no My plan for the add-on to return to.
    if not await PlanSubscription.exists(tenant_id=principal.tenant.id, status=PlanSubscriptionStatus.ACTIVE):
        raise NoActivePlan()
    name = subscription.add_on.name
    async with in_transaction():
        won = await AddOnSubscription.filter(
            id=subscription.id, tenant_id=principal.tenant.id, status=AddOnStatus.CANCELLING, ends_at__gt=now
        ).update(status=AddOnStatus.ACTIVE, cancelled_at=None, ends_at=None)
        if not won:
            current = await AddOnSubscription.get(id=subscription.id)
            if current.ends_at is not None and current.ends_at <= now:
                raise ended(
                    current, _("{name} already ended: contract it again in the add-on store.", name=name)
                )
            raise AddOnNotCancelled(
                _("{name} is not cancelled: there is nothing to undo.", name=name), field=ID_ARGUMENT
            )
        await audit.record(
            tenant_id=principal.tenant.id,
            principal=principal,
            action="add_on.undo_cancellation",
            now=now,
            subject_id=subscription.id,
            add_on=subscription.add_on.code,
            cancelled_ends_at=subscription.ends_at.isoformat() if subscription.ends_at else None,
        )
        await webhook_events.emit_add_on_change(
            EventType.ADD_ON_CANCELLATION_UNDONE, subscription, principal.tenant, ends_at=None, now=now
        )
        await notify_admins(
            principal.tenant.id,
            emails.CANCELLATION_UNDONE,
            {
                "actor": audit.actor_of(principal),
                "tenant_name": principal.tenant.name,
                "add_on": subscription.add_on,
            },
            now=now,
        )
    await plan_changed(principal.tenant.id, cache=plan_cache, broadcaster=broadcaster)  # after the commit
    subscription.status = AddOnStatus.ACTIVE
    subscription.cancelled_at = None
    subscription.ends_at = None
    return subscription
