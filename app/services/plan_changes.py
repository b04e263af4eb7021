"""Changing a tenant's plan (issue 14, "Plan change").

- An **upgrade** (the new plan's monthly price is at least the current one's: both are billed over the
  same period, so comparing monthly prices compares prices by the day) applies at once: the new limits
  count now, and the invoice of the current period adds the difference of the monthly prices for the
  days left (``pricing.plan_change_lines``).
- A **downgrade** is scheduled for the end of the current period (``PlanSubscription.pending_change``),
  may be withdrawn until then (``cancel_plan_change``), and is refused while the environment would not
  fit the new plan at that instant (``PlanChangeConflicts``): credits, users or integrations in use above
  the limits left (the new plan's plus the add-ons still counting then), or add-ons not sold with it.
  From ``effective_at`` on the new plan is in force (``subscriptions.load_tenant_plan``) even before
  ``apply_due_plan_changes`` moves the subscription row and tells the admins.
- A plan's change fee (``Plan.change_fees``) is charged once, on the invoice of the period the change
  takes effect in.

Every change runs in a transaction that takes the tenant's lock first, so two admins at once make one
change; the same idempotency key and request return the same change.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app import money
from app.auth.principal import Principal
from app.broadcast import Broadcaster
from app.i18n import Locale, Text, _
from app.models.billing import PlanChange, PlanSubscription
from app.models.catalog import Plan
from app.models.enums import PlanChangeKind, PlanChangeSource, PlanChangeStatus, PlanSubscriptionStatus
from app.models.metering import LimitAlert
from app.models.tenancy import Tenant
from app.notifications import emails
from app.notifications.outbox import notify_admins
from app.services import alerts, audit, pricing, usage_reports, webhook_events
from app.services.access import require_store_access
from app.services.cart import current_monthly_total, plan_price
from app.services.catalog import plausible_code
from app.services.errors import DomainError, ErrorCode, NoActivePlan, NotFound, shown
from app.services.idempotency import IdempotencyKeyReused, fingerprint, validate_key
from app.services.invoices import tenant_invoice
from app.services.limits import effective_limits
from app.services.locks import lock_tenant
from app.services.periods import period_containing
from app.services.plan_cache import PlanCache, plan_changed
from app.services.subscriptions import TenantPlan, load_tenant_plan
from app.services.usage import current_usage
from app.services.webhook_events import EventType

logger = logging.getLogger("tollgate.plan_changes")

PLAN_ARGUMENT = "planCode"


# --- Errors ------------------------------------------------------------------------------------


class PlanUnchanged(DomainError):
    code = ErrorCode.PLAN_UNCHANGED
    default_message = _("The environment is already on this plan.")


class PlanChangePending(DomainError):
    """Carries ``change``: the scheduled change."""

    code = ErrorCode.PLAN_CHANGE_PENDING
    default_message = _("A plan change is already scheduled: cancel it first.")


class NoPlanChangePending(DomainError):
    code = ErrorCode.NO_PLAN_CHANGE_PENDING
    default_message = _("There is no scheduled plan change to cancel.")


class PlanNotSold(DomainError):
    code = ErrorCode.PLAN_UNAVAILABLE
    default_message = _("This plan is no longer sold.")


class PlanNotPriced(DomainError):
    """Carries ``priced_currencies``."""

    code = ErrorCode.CURRENCY_NOT_PRICED
    default_message = _("This plan has no price in the environment's currency.")


class ConflictKind(StrEnum):
    CREDITS = "CREDITS"
    USERS = "USERS"
    INTEGRATIONS = "INTEGRATIONS"
    ADD_ON = "ADD_ON"


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: ConflictKind
    message: Text
    used: int | None = None
    limit: int | None = None
    add_on_code: str | None = None


class PlanChangeConflicts(DomainError):
    """Carries ``conflicts``: each reason the environment would not fit the new plan."""

    code = ErrorCode.PLAN_CHANGE_CONFLICTS
    default_message = _("The environment would not fit the new plan.")

    def __init__(self, *, field: str, plan: str, conflicts: list[Conflict]) -> None:
        super().__init__(self._summary(plan, conflicts, None), field=field, conflicts=conflicts)
        self.plan = plan

    @staticmethod
    def _summary(plan: str, conflicts: list[Conflict], locale: Locale | None) -> Text:
        reasons = " ".join(conflict.message.render(locale) for conflict in conflicts)
        return _("The environment would not fit {plan}: {reasons}", plan=plan, reasons=reasons)

    def localized(self, locale: Locale | None) -> str:
        return self._summary(self.plan, self.details["conflicts"], locale).render(locale)


# --- The terms of a change ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanChangeTerms:
    """What changing to ``new_plan`` now would mean (``planChangePreview``)."""

    view: TenantPlan  # the plan as it stands now
    kind: PlanChangeKind
    current_plan: Plan
    new_plan: Plan
    current_price: money.Money  # monthly
    new_price: money.Money  # monthly
    change_fee: money.Money
    effective_at: dt.datetime
    conflicts: list[Conflict]
    invoice: pricing.Invoice  # upgrade: the current period's; downgrade: the period it takes effect in
    current_monthly_total: money.Money
    new_monthly_total: money.Money
    change: PlanChange  # unsaved


def _is_upgrade(current: money.Money, new: money.Money) -> bool:
    # Same billing period for both: the monthly prices compare as prices by the day; equal is an upgrade.
    return new.amount >= current.amount


async def _target_plan(code: str, currency: str) -> Plan:
    code = code.strip() if isinstance(code, str) else ""
    # Only what a code can be reaches the database (no NUL byte, no 10,000 characters).
    plan = await Plan.get_or_none(code=code) if plausible_code(code) else None
    if plan is None:
        raise NotFound(_("No plan has the code {code}.", code=shown(code)), field=PLAN_ARGUMENT)
    if not plan.is_active:
        raise PlanNotSold(_("The plan {name} is no longer sold.", name=plan.name), field=PLAN_ARGUMENT)
    if currency not in plan.prices:
        raise PlanNotPriced(
            _("The plan {name} has no price in {currency}.", name=plan.name, currency=currency),
            field=PLAN_ARGUMENT,
            priced_currencies=sorted(plan.prices),
        )
    return plan


def change_fee_of(plan: Plan, currency: str) -> money.Money:
    fees = plan.change_fees or {}
    return money.price_in(fees, currency) if currency in fees else money.Money.zero(currency)


_CREDITS_CONFLICT = _(
    "{used} credits are in use but {plan} allows {limit} (with the add-ons that still count then): bring "
    "them down to {limit} first."
)
_USERS_CONFLICT = _(
    "{used} users are in use but {plan} allows {limit} (with the add-ons that still count then): bring "
    "them down to {limit} first."
)
_INTEGRATIONS_CONFLICT = _(
    "{used} integrations are in use but {plan} allows {limit} (with the add-ons that still count then): "
    "bring them down to {limit} first."
)


def conflicts_for(
    view: TenantPlan, plan: Plan, usage_credits: int, users: int, integrations: int, at: dt.datetime
) -> list[Conflict]:
    """Why the environment would not fit ``plan`` at ``at``: the limits then are the plan's plus the
    add-ons still counting then (one already cancelled and ending by then neither counts nor conflicts)."""
    remaining = [s for s in view.add_ons if s.is_active_at(at)]
    limits = effective_limits(plan, remaining)
    conflicts: list[Conflict] = []
    for kind, used, limit, message in (
        (ConflictKind.CREDITS, usage_credits, limits.credits, _CREDITS_CONFLICT),
        (ConflictKind.USERS, users, limits.users, _USERS_CONFLICT),
        (ConflictKind.INTEGRATIONS, integrations, limits.integrations, _INTEGRATIONS_CONFLICT),
    ):
        if used > limit:
            conflicts.append(
                Conflict(
                    kind=kind,
                    message=Text(message.template, {"used": used, "plan": plan.name, "limit": limit}),
                    used=used,
                    limit=limit,
                )
            )
    seen: set[str] = set()
    for subscription in remaining:
        add_on = subscription.add_on
        if add_on.code in seen or not add_on.eligible_plan_codes or plan.code in add_on.eligible_plan_codes:
            continue
        seen.add(add_on.code)
        conflicts.append(
            Conflict(
                kind=ConflictKind.ADD_ON,
                message=_(
                    "The add-on {name} is not sold with {plan}: cancel it first.",
                    name=add_on.name,
                    plan=plan.name,
                ),
                add_on_code=add_on.code,
            )
        )
    return conflicts


def _unsaved_change(
    view: TenantPlan,
    plan: Plan,
    *,
    kind: PlanChangeKind,
    current_price: money.Money,
    new_price: money.Money,
    fee: money.Money,
    now: dt.datetime,
    effective_at: dt.datetime,
) -> PlanChange:
    current = view.subscription.plan
    return PlanChange(
        tenant_id=view.tenant.id,
        source=PlanChangeSource.TENANT,
        kind=kind,
        status=PlanChangeStatus.APPLIED if kind == PlanChangeKind.UPGRADE else PlanChangeStatus.SCHEDULED,
        from_plan_id=current.id,
        from_code=current.code,
        from_name=current.name,
        from_unit_price=current_price.amount,
        to_plan_id=plan.id,
        to_code=plan.code,
        to_name=plan.name,
        to_unit_price=new_price.amount,
        currency=view.tenant.currency,
        change_fee=fee.amount,
        requested_at=now,
        effective_at=effective_at,
        applied_at=now if kind == PlanChangeKind.UPGRADE else None,
    )


async def terms_for(tenant: Tenant, plan_code: str, *, now: dt.datetime) -> PlanChangeTerms:
    """The terms of changing ``tenant`` to ``plan_code`` now, with no access check (see ``preview``)."""
    view = await load_tenant_plan(tenant, now=now)
    currency = tenant.currency
    plan = await _target_plan(plan_code, currency)
    current = view.subscription.plan
    if plan.id == current.id:
        raise PlanUnchanged(_("The environment is already on {name}.", name=plan.name), field=PLAN_ARGUMENT)
    current_price = plan_price(view.subscription, currency)
    new_price = money.price_in(plan.prices, currency)
    kind = PlanChangeKind.UPGRADE if _is_upgrade(current_price, new_price) else PlanChangeKind.DOWNGRADE
    effective_at = now if kind == PlanChangeKind.UPGRADE else view.period.end_instant()
    fee = change_fee_of(plan, currency)
    usage = await current_usage(tenant.id)
    conflicts = conflicts_for(view, plan, usage.credits, usage.users, usage.integrations, effective_at)
    change = _unsaved_change(
        view,
        plan,
        kind=kind,
        current_price=current_price,
        new_price=new_price,
        fee=fee,
        now=now,
        effective_at=effective_at,
    )
    period = (
        view.period
        if kind == PlanChangeKind.UPGRADE
        else period_containing(effective_at, tenant.billing_anchor_day)
    )
    invoice = await tenant_invoice(tenant, period, now=now, planned=[change])
    monthly = current_monthly_total(view)
    return PlanChangeTerms(
        view=view,
        kind=kind,
        current_plan=current,
        new_plan=plan,
        current_price=current_price,
        new_price=new_price,
        change_fee=fee,
        effective_at=effective_at,
        conflicts=conflicts,
        invoice=invoice,
        current_monthly_total=monthly,
        new_monthly_total=monthly - current_price + new_price,
        change=change,
    )


async def _scheduled_change(subscription: PlanSubscription) -> PlanChange | None:
    if subscription.pending_change_id is None:
        return None
    return await PlanChange.get_or_none(id=subscription.pending_change_id, status=PlanChangeStatus.SCHEDULED)


def _pending_error(change: PlanChange) -> PlanChangePending:
    day = change.effective_at.date().isoformat()
    return PlanChangePending(
        _(
            "A change to {to_name} is already scheduled for {day}: cancel it first.",
            to_name=change.to_name,
            day=day,
        ),
        field=PLAN_ARGUMENT,
        change=change,
    )


async def preview(
    principal: Principal, *, plan_code: str, eligible_since: dt.date, now: dt.datetime
) -> PlanChangeTerms:
    """``planChangePreview``: the kind, the conflicts, the next invoice and the new monthly total."""
    require_store_access(principal, eligible_since=eligible_since)
    terms = await terms_for(principal.tenant, plan_code, now=now)
    pending = await _scheduled_change(terms.view.subscription)
    if pending is not None:
        raise _pending_error(pending)
    return terms


# --- Changing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    change: PlanChange
    replayed: bool


class _KeyTaken(Exception):
    """A concurrent request with the same key committed first."""


def _request_fingerprint(principal: Principal, plan_code: str) -> str:
    assert principal.user is not None
    return fingerprint({"plan_code": plan_code.strip(), "user": str(principal.user.id)})


def _replay(change: PlanChange, request: str) -> ChangeOutcome:
    if change.request_fingerprint != request:
        raise IdempotencyKeyReused(
            _("This idempotency key already changed the plan for another request; use a new key."),
            field="idempotencyKey",
        )
    return ChangeOutcome(change=change, replayed=True)


def _plan_data(tenant: Tenant, change: PlanChange) -> dict[str, object]:
    # The shape provisioning emits (``_emit_plan_change``), plus the change's own figures.
    return {
        "environment": tenant.slug,
        "from_plan_code": change.from_code,
        "to_plan_code": change.to_code,
        "kind": change.kind.value,
        "source": change.source.value,
        "effective_at": change.effective_at.isoformat(),
        "currency": change.currency,
        "from_unit_price": str(change.from_unit_price),
        "to_unit_price": str(change.to_unit_price),
        "change_fee": str(change.change_fee),
    }


async def emit_plan_changed(tenant: Tenant, change: PlanChange, *, now: dt.datetime) -> None:
    await webhook_events.emit(
        EventType.PLAN_CHANGED, tenant_id=tenant.id, data=_plan_data(tenant, change), now=now
    )
    await webhook_events.emit_limits_changed(tenant, cause=EventType.PLAN_CHANGED, now=now)


async def change_email(change: PlanChange, **more: Any) -> dict[str, Any]:
    """What the plan-change e-mails say (templates ``plan_*``, app/templates/email): both plans by their
    names in each reader's locale, the prices as money."""
    rows = await Plan.filter(id__in=[change.from_plan_id, change.to_plan_id]).values_list("id", "names")
    names = {str(plan_id): plan_names for plan_id, plan_names in rows}
    currency = change.currency
    return {
        "from_plan": emails.Named(change.from_name, names.get(str(change.from_plan_id)) or {}),
        "to_plan": emails.Named(change.to_name, names.get(str(change.to_plan_id)) or {}),
        "from_price": money.Money.of(change.from_unit_price, currency),
        "to_price": money.Money.of(change.to_unit_price, currency),
        "change_fee": money.Money.of(change.change_fee, currency) if change.change_fee > 0 else None,
        "effective_on": change.effective_at,
        **more,
    }


async def change_plan(
    principal: Principal,
    *,
    plan_code: str,
    idempotency_key: str,
    eligible_since: dt.date,
    now: dt.datetime,
    plan_cache: PlanCache | None = None,
    broadcaster: Broadcaster | None = None,
) -> ChangeOutcome:
    """``changePlan``: an upgrade applies now, a downgrade is scheduled for the end of the period."""
    require_store_access(principal, eligible_since=eligible_since)
    key = validate_key(idempotency_key)
    if not isinstance(plan_code, str):
        raise NotFound(_("No plan has this code."), field=PLAN_ARGUMENT)
    request = _request_fingerprint(principal, plan_code)
    tenant = principal.tenant
    existing = await PlanChange.get_or_none(tenant_id=tenant.id, idempotency_key=key)
    if existing is not None:
        return _replay(existing, request)
    raised: list[LimitAlert] = []
    try:
        async with in_transaction():
            await lock_tenant(tenant.id)  # first: two admins at once, one after the other
            existing = await PlanChange.get_or_none(tenant_id=tenant.id, idempotency_key=key)
            if existing is not None:
                raise _KeyTaken()
            terms = await terms_for(tenant, plan_code, now=now)
            pending = await _scheduled_change(await PlanSubscription.get(id=terms.view.subscription.id))
            if pending is not None:
                raise _pending_error(pending)
            if terms.conflicts:
                raise PlanChangeConflicts(
                    field=PLAN_ARGUMENT, plan=terms.new_plan.name, conflicts=terms.conflicts
                )
            change = terms.change
            change.user_id = str(principal.user.id) if principal.user is not None else None
            change.idempotency_key = key
            change.request_fingerprint = request
            try:
                await change.save()
            except IntegrityError:
                raise _KeyTaken() from None
            subscription_id = terms.view.subscription.id
            actor = audit.actor_of(principal)
            if terms.kind == PlanChangeKind.UPGRADE:
                await PlanSubscription.filter(id=subscription_id).update(
                    plan_id=terms.new_plan.id, unit_price=terms.new_price.amount, currency=tenant.currency
                )
                raised = await usage_reports.reevaluate_alerts(tenant, now=now)
                await emit_plan_changed(tenant, change, now=now)
                kind = emails.PLAN_UPGRADED
                more: dict[str, Any] = {"new_monthly_total": terms.new_monthly_total}
            else:
                scheduled = await PlanSubscription.filter(
                    id=subscription_id, pending_change_id__isnull=True
                ).update(pending_change_id=change.id)
                if not scheduled:  # cannot happen under the lock; refuse rather than lose one
                    raise PlanChangePending(field=PLAN_ARGUMENT)
                kind, more = emails.PLAN_CHANGE_SCHEDULED, {}
            await audit.record(
                tenant_id=tenant.id,
                principal=principal,
                action="plan_change.upgrade"
                if terms.kind == PlanChangeKind.UPGRADE
                else "plan_change.schedule",
                now=now,
                subject_id=change.id,
                idempotency_key=key,
                from_plan=change.from_code,
                to_plan=change.to_code,
                effective_at=change.effective_at.isoformat(),
                change_fee=str(change.change_fee),
                currency=change.currency,
            )
            context = await change_email(change, actor=actor, tenant_name=tenant.name, **more)
            await notify_admins(tenant.id, kind, context, now=now)
    except _KeyTaken:
        winner = await PlanChange.get(tenant_id=tenant.id, idempotency_key=key)
        return _replay(winner, request)
    # After the commit, never before: every gateway's plan cache, then the alerts.
    await plan_changed(tenant.id, cache=plan_cache, broadcaster=broadcaster)
    await alerts.publish(broadcaster, raised)
    return ChangeOutcome(change=change, replayed=False)


# --- Cancelling a scheduled change -------------------------------------------------------------


async def cancel_plan_change(
    principal: Principal,
    *,
    idempotency_key: str | None,
    eligible_since: dt.date,
    now: dt.datetime,
    plan_cache: PlanCache | None = None,
    broadcaster: Broadcaster | None = None,
) -> PlanChange:
    """``cancelPlanChange``: withdraw the scheduled downgrade before it takes effect."""
    require_store_access(principal, eligible_since=eligible_since)
    key = validate_key(idempotency_key) if idempotency_key is not None else None
    tenant = principal.tenant
    if not await PlanSubscription.exists(tenant_id=tenant.id, status=PlanSubscriptionStatus.ACTIVE):
        raise NoActivePlan()
    async with in_transaction():
        await lock_tenant(tenant.id)
        subscription = await PlanSubscription.get(tenant_id=tenant.id)
        change = await _scheduled_change(subscription)
        if change is None or change.effective_at <= now:
            if key is not None:
                done = await PlanChange.get_or_none(tenant_id=tenant.id, cancel_idempotency_key=key)
                if done is not None:  # the retry of a cancellation that was made
                    return done
            if change is not None:
                raise NoPlanChangePending(
                    _(
                        "The change to {to_name} already took effect on {effective_at}.",
                        to_name=change.to_name,
                        effective_at=change.effective_at.date().isoformat(),
                    ),
                )
            raise NoPlanChangePending()
        await PlanChange.filter(id=change.id, status=PlanChangeStatus.SCHEDULED).update(
            status=PlanChangeStatus.CANCELLED, cancelled_at=now, cancel_idempotency_key=key
        )
        await PlanSubscription.filter(id=subscription.id, pending_change_id=change.id).update(
            pending_change_id=None
        )
        await audit.record(
            tenant_id=tenant.id,
            principal=principal,
            action="plan_change.cancel",
            now=now,
            subject_id=change.id,
            idempotency_key=key,
            from_plan=change.from_code,
            to_plan=change.to_code,
            effective_at=change.effective_at.isoformat(),
        )
        await notify_admins(
            tenant.id,
            emails.PLAN_CHANGE_CANCELLED,
            await change_email(change, actor=audit.actor_of(principal), tenant_name=tenant.name),
            now=now,
        )
    await plan_changed(tenant.id, cache=plan_cache, broadcaster=broadcaster)  # after the commit
    change.status = PlanChangeStatus.CANCELLED
    change.cancelled_at = now
    return change


# --- The task that applies scheduled changes ---------------------------------------------------


async def apply_due_plan_changes(
    now: dt.datetime,
    *,
    batch_size: int = 200,
    broadcaster: Broadcaster | None = None,
    plan_cache: PlanCache | None = None,
) -> int:
    """Apply every scheduled change whose ``effective_at`` has come: move the subscription, tell the
    admins, audit, emit the webhooks. Each change is claimed by one conditional UPDATE, so this is safe
    from any number of places at once. Returns how many were applied."""
    due = (
        await PlanChange.filter(status=PlanChangeStatus.SCHEDULED, effective_at__lte=now)
        .select_related("tenant")
        .order_by("effective_at", "id")
        .limit(batch_size)
    )
    applied: list[Tenant] = []
    raised: list[LimitAlert] = []
    for change in due:
        tenant = change.tenant
        async with in_transaction():
            await lock_tenant(change.tenant_id)
            claimed = await PlanChange.filter(id=change.id, status=PlanChangeStatus.SCHEDULED).update(
                status=PlanChangeStatus.APPLIED, applied_at=now
            )
            if not claimed:  # another instance got there first, or it was cancelled meanwhile
                continue
            await PlanSubscription.filter(tenant_id=change.tenant_id, pending_change_id=change.id).update(
                plan_id=change.to_plan_id,
                unit_price=change.to_unit_price,
                currency=change.currency,
                pending_change_id=None,
            )
            change.status, change.applied_at = PlanChangeStatus.APPLIED, now
            raised += await usage_reports.reevaluate_alerts(tenant, now=now)
            await notify_admins(
                change.tenant_id,
                emails.PLAN_CHANGE_APPLIED,
                await change_email(change, tenant_name=tenant.name),
                now=now,
                dedupe_key=f"plan-change-applied:{change.id}",
            )
            await audit.record(
                tenant_id=change.tenant_id,
                principal=None,
                action="plan_change.apply",
                now=now,
                subject_id=change.id,
                from_plan=change.from_code,
                to_plan=change.to_code,
                effective_at=change.effective_at.isoformat(),
            )
            await emit_plan_changed(tenant, change, now=now)
        applied.append(tenant)
    for tenant in applied:  # after the commits
        await plan_changed(tenant.id, cache=plan_cache, broadcaster=broadcaster)
    await alerts.publish(broadcaster, raised)
    return len(applied)


# --- Operator changes --------------------------------------------------------------------------


async def record_operator_change(
    tenant: Tenant,
    subscription: PlanSubscription,
    plan: Plan,
    *,
    new_price: Decimal,
    now: dt.datetime,
) -> PlanChange:
    """The vendor moved the subscription to ``plan`` directly (provisioning): record it as applied now,
    and cancel any scheduled change of the tenant's (the invoices bill the plans from this history).
    Runs in the caller's transaction, with the subscription row as it was before the move."""
    currency = tenant.currency
    current = await Plan.get(id=subscription.plan_id)
    if subscription.unit_price is not None and subscription.currency == currency:
        old_price = Decimal(subscription.unit_price)
    elif currency in current.prices:
        old_price = Decimal(current.prices[currency])
    else:
        old_price = new_price
    pending_id = subscription.pending_change_id
    if pending_id is not None:
        await PlanChange.filter(id=pending_id, status=PlanChangeStatus.SCHEDULED).update(
            status=PlanChangeStatus.CANCELLED, cancelled_at=now
        )
        await PlanSubscription.filter(id=subscription.id).update(pending_change_id=None)
    return await PlanChange.create(
        tenant_id=tenant.id,
        source=PlanChangeSource.OPERATOR,
        kind=PlanChangeKind.UPGRADE if new_price >= old_price else PlanChangeKind.DOWNGRADE,
        status=PlanChangeStatus.APPLIED,
        from_plan_id=current.id,
        from_code=current.code,
        from_name=current.name,
        from_unit_price=old_price,
        to_plan_id=plan.id,
        to_code=plan.code,
        to_name=plan.name,
        to_unit_price=new_price,
        currency=currency,
        change_fee=Decimal(0),
        requested_at=now,
        effective_at=now,
        applied_at=now,
    )
