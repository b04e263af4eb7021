"""Provisioning by the SaaS (issue 13): environments, their users and API keys, through the operator API.

The SaaS calls it on every sign-up and every sync, so each write is an idempotent upsert by a key the SaaS
owns (an environment's ``slug``, a user's ``externalId``): the same input twice changes nothing the second
time and says so (``created``, ``changed_fields``). Each change is audited with the operator key that made
it, in the transaction of the change; a call that changes nothing writes nothing, not even an audit entry
(the audit log records changes, and a sync on every sign-in would otherwise drown them).

Rules:

- An environment's ``slug`` is 2..64 lowercase letters, digits and hyphens, starting and ending with a
  letter or a digit. Its ``currency`` is one its plan is priced in; it may change only while no add-on
  contracted in the current currency still counts (their prices and the invoices are in that currency).
  Its ``locale`` is one of ``LOCALES``. A new subscription (a new environment, or a change of plan) needs
  a plan that is sold (``Plan.is_active``), and takes the plan's price in the environment's currency as its
  contracted price (``PlanSubscription.unit_price``).
- A change of plan keeps the subscription's start (billing periods do not move), emits ``plan.changed``
  and ``limits.changed`` in its transaction, and drops the plan caches of every gateway after the commit.
- Deactivating an environment keeps every row (usage, add-ons, keys, users): its credentials are refused
  with ``TENANT_INACTIVE`` at once on every gateway that hears the broadcast, within
  ``TOLLGATE_AUTH_CACHE_SECONDS`` on the others, and its live sessions are closed (4403). Reactivating it
  restores all of it.
- A user is found by (environment, ``externalId``); else an existing user of the environment with the same
  e-mail and no external id is adopted; else created. E-mail addresses are unique across environments.
  Deactivating a user is announced after the commit (``announce_user_disabled``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.auth.api_keys import generate_api_key
from app.auth.operator import Operator
from app.auth.principal import (
    REVOKED_CHANNEL,
    PrincipalCache,
    announce_tenant_deactivated,
    announce_user_disabled,
)
from app.auth.scopes import ALL_SCOPES
from app.broadcast import Broadcaster
from app.i18n import _
from app.models.billing import AddOnSubscription, PlanChange, PlanSubscription
from app.models.catalog import Plan
from app.models.enums import Role
from app.models.tenancy import ApiKey, Tenant, User
from app.services import cursors, invalidation, operator_audit, plan_changes, webhook_events
from app.services.cursors import Page
from app.services.errors import DomainError, ErrorCode, InvalidInput, NotFound, shown
from app.services.locks import lock_tenant
from app.services.plan_cache import PlanCache, plan_changed
from app.services.webhook_events import EventType, emit

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
SLUG_MIN = 2
LOCALES = ("en", "es", "pt-BR")  # the languages of the back office and of the e-mails
CURRENCY = re.compile(r"[A-Z]{3}")
ERP = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
NAME_MAX = 200
EXTERNAL_ID_MAX = 255
EMAIL_MAX = 254
EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
ATTEMPTS = 3  # a write that lost a race on a unique key (slug, e-mail) is run again, and then finds it

UNSET: Any = object()  # an optional input left out: kept as it is (an explicit None clears it)
T = TypeVar("T")


# --- Errors ------------------------------------------------------------------------------------


class PlanUnavailable(DomainError):
    code = ErrorCode.PLAN_UNAVAILABLE
    default_message = _("This plan is no longer sold: no new subscription may start on it.")


class CurrencyNotPriced(DomainError):
    """Details: ``priced_currencies``, the currencies the plan has a price in."""

    code = ErrorCode.CURRENCY_NOT_PRICED
    default_message = _("The plan has no price in this currency.")


class CurrencyLocked(DomainError):
    """Details: ``currency`` (the environment's), ``add_on_codes`` (the add-ons contracted in it)."""

    code = ErrorCode.CURRENCY_LOCKED
    default_message = _("The environment has add-ons contracted in its currency.")


class EmailTaken(DomainError):
    code = ErrorCode.EMAIL_TAKEN
    default_message = _("Another user already has this e-mail address.")


# --- Who acts, and what they need ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provisioning:
    """One operator request's collaborators: who acts (audited), when, and the gateways' caches to tell."""

    operator: Operator
    now: dt.datetime
    broadcaster: Broadcaster | None = None
    plan_cache: PlanCache | None = None
    principals: PrincipalCache | None = None


# --- Validation ------------------------------------------------------------------------------------


def has_control_characters(text: str) -> bool:
    """Control characters, line and paragraph separators, bidirectional overrides: never in a name."""
    return any(
        unicodedata.category(c) in ("Cc", "Zl", "Zp")
        or "\u202a" <= c <= "\u202e"
        or "\u2066" <= c <= "\u2069"
        for c in text
    )


def valid_slug(slug: str, *, field: str = "slug") -> str:
    if not (SLUG_MIN <= len(slug) <= 64 and SLUG.fullmatch(slug)):
        raise InvalidInput(
            _(
                "The slug {slug} is not 2 to 64 lowercase letters, digits and hyphens, starting and ending "
                "with a letter or a digit.",
                slug=shown(slug),
            ),
            field=field,
        )
    return slug


def valid_name(name: str, *, field: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX or has_control_characters(name):
        raise InvalidInput(
            _("A name is 1 to {name_max} characters, without control characters.", name_max=NAME_MAX),
            field=field,
        )
    return name


def valid_locale(locale: str, *, field: str) -> str:
    if locale not in LOCALES:
        raise InvalidInput(
            _(
                "The locale {locale} is not one of {locales}.",
                locale=shown(locale),
                locales=", ".join(LOCALES),
            ),
            field=field,
        )
    return locale


def valid_email(email: str, *, field: str = "input.email") -> str:
    address = email.strip().lower()
    local, _at, _domain = address.partition("@")
    if len(address) > EMAIL_MAX or len(local) > 64 or not EMAIL.fullmatch(address):
        raise InvalidInput(_("{email} is not an e-mail address.", email=shown(email)), field=field)
    return address


def valid_external_id(external_id: str, *, field: str = "input.externalId") -> str:
    if not 1 <= len(external_id) <= EXTERNAL_ID_MAX or has_control_characters(external_id):
        raise InvalidInput(
            _(
                "An external id is 1 to {external_id_max} characters, without control characters.",
                external_id_max=EXTERNAL_ID_MAX,
            ),
            field=field,
        )
    return external_id


def valid_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown or not scopes:
        among = ", ".join(sorted(ALL_SCOPES))
        raise InvalidInput(
            _(
                "Choose at least one scope among {scopes}; unknown: {unknown}.",
                scopes=among,
                unknown=shown(", ".join(unknown)),
            )
            if unknown
            else _("Choose at least one scope among {scopes}.", scopes=among),
            field="scopes",
        )
    return sorted(set(scopes))


async def _retrying(work: Callable[[], Awaitable[T]]) -> T:
    """``work`` in a transaction, run again when it lost a race on a unique key: the next run finds the
    row the winner committed, and updates it (or finds nothing left to change)."""
    for attempt in range(ATTEMPTS):
        try:
            async with in_transaction():
                return await work()
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _tenant(slug: str, *, field: str = "environmentSlug") -> Tenant:
    tenant = await Tenant.get_or_none(slug=slug[:64])
    if tenant is None:
        raise NotFound(_("No environment has the slug {slug}.", slug=shown(slug)), field=field)
    return tenant


# --- Environments --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvironmentInput:
    """What the SaaS sends; ``UNSET`` fields are kept on an update and take their default on a creation
    (locale "en", created now, anchor day 1, no ERP)."""

    slug: str
    name: str
    currency: str
    plan_code: str
    locale: str | None = UNSET
    erp: str | None = UNSET
    created_at: dt.datetime | None = UNSET
    billing_anchor_day: int | None = UNSET


@dataclass(frozen=True, slots=True)
class EnvironmentOutcome:
    tenant: Tenant
    created: bool
    changed_fields: list[str] = field(default_factory=list)


def _validated(spec: EnvironmentInput, now: dt.datetime) -> dict[str, Any]:
    """The input's values by GraphQL field name, checked; fields left out are absent."""
    values: dict[str, Any] = {
        "name": valid_name(spec.name, field="input.name"),
        "currency": spec.currency,
        "planCode": spec.plan_code,
    }
    if not CURRENCY.fullmatch(spec.currency):
        raise InvalidInput(
            _("{currency} is not an ISO 4217 code such as EUR.", currency=shown(spec.currency)),
            field="input.currency",
        )
    if spec.locale is not UNSET and spec.locale is not None:
        values["locale"] = valid_locale(spec.locale, field="input.locale")
    if spec.erp is not UNSET:
        if spec.erp is not None and not ERP.fullmatch(spec.erp):
            raise InvalidInput(
                _(
                    "The ERP code {erp} is not 1 to 64 lowercase letters, digits, dots, hyphens or "
                    "underscores.",
                    erp=shown(spec.erp),
                ),
                field="input.erp",
            )
        values["erp"] = spec.erp
    if spec.created_at is not UNSET and spec.created_at is not None:
        if spec.created_at > now:
            raise InvalidInput(_("An environment cannot be created in the future."), field="input.createdAt")
        values["createdAt"] = spec.created_at
    if spec.billing_anchor_day is not UNSET and spec.billing_anchor_day is not None:
        if not 1 <= spec.billing_anchor_day <= 31:
            raise InvalidInput(
                _("The billing anchor day is between 1 and 31."), field="input.billingAnchorDay"
            )
        values["billingAnchorDay"] = spec.billing_anchor_day
    return values


_TENANT_FIELDS = {
    "name": "name",
    "currency": "currency",
    "locale": "locale",
    "erp": "erp",
    "createdAt": "created_at",
    "billingAnchorDay": "billing_anchor_day",
}


async def _plan_for_new_subscription(code: str, currency: str) -> Plan:
    plan = await Plan.get_or_none(code=code[:64])
    if plan is None:
        raise NotFound(_("No plan has the code {code}.", code=shown(code)), field="input.planCode")
    if not plan.is_active:
        raise PlanUnavailable(
            _("The plan {code} is no longer sold.", code=shown(code)), field="input.planCode"
        )
    _require_priced(plan, currency)
    return plan


def _require_priced(plan: Plan, currency: str) -> None:
    if currency not in plan.prices:
        raise CurrencyNotPriced(
            _("The plan {code} has no price in {currency}.", code=repr(plan.code), currency=currency),
            field="input.currency",
            priced_currencies=sorted(plan.prices),
        )


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


async def provision_environment(ctx: Provisioning, spec: EnvironmentInput) -> EnvironmentOutcome:
    """Create or update the environment ``spec.slug`` (see the module's rules)."""
    slug = valid_slug(spec.slug, field="input.slug")
    values = _validated(spec, ctx.now)
    outcome = await _retrying(lambda: _upsert_environment(ctx, slug, values))
    if outcome.changed_fields and not outcome.created:
        # After the commit: the plan, limits and tenant (currency, anchor day) the gateways hold. The
        # plan caches of every gateway are told; the credential cache (which holds the tenant's row) is
        # dropped here, and expires elsewhere within its ttl.
        await plan_changed(outcome.tenant.id, cache=ctx.plan_cache, broadcaster=ctx.broadcaster)
        if ctx.principals is not None:
            ctx.principals.drop_tenant(str(outcome.tenant.id))
    return outcome


async def _upsert_environment(ctx: Provisioning, slug: str, values: dict[str, Any]) -> EnvironmentOutcome:
    tenant = await Tenant.get_or_none(slug=slug)
    if tenant is None:
        return await _create_environment(ctx, slug, values)
    await lock_tenant(tenant.id)  # concurrent provisioning of one environment: one after the other
    tenant = await Tenant.get(id=tenant.id)
    subscription = await PlanSubscription.get_or_none(tenant_id=tenant.id).select_related("plan")
    changes = {
        name: (getattr(tenant, attribute), values[name])
        for name, attribute in _TENANT_FIELDS.items()
        if name in values and getattr(tenant, attribute) != values[name]
    }
    currency = values["currency"]
    old_plan = subscription.plan if subscription is not None else None
    plan = old_plan
    if old_plan is None or old_plan.code != values["planCode"]:
        plan = await _plan_for_new_subscription(values["planCode"], currency)
        changes["planCode"] = (old_plan.code if old_plan else None, plan.code)
    elif "currency" in changes:
        _require_priced(old_plan, currency)
    if "currency" in changes:
        await _require_no_add_ons_in(tenant, now=ctx.now)
    if not changes:
        return EnvironmentOutcome(tenant=tenant, created=False)
    for name, (_old, new) in changes.items():
        if name in _TENANT_FIELDS:
            setattr(tenant, _TENANT_FIELDS[name], new)
    await tenant.save()
    assert plan is not None
    change = None
    if "planCode" in changes or "currency" in changes:
        change = await _contract(tenant, subscription, plan, now=ctx.now)
    if change is not None:
        await plan_changes.emit_plan_changed(tenant, change, now=ctx.now)
    elif "planCode" in changes:  # a first subscription: no plan it changed from
        await _emit_plan_change(tenant, None, plan.code, now=ctx.now)
    await operator_audit.record(
        ctx.operator,
        "tenant.update",
        now=ctx.now,
        tenant_id=tenant.id,
        subject_id=tenant.slug,
        changes={name: [_json(old), _json(new)] for name, (old, new) in changes.items()},
    )
    return EnvironmentOutcome(tenant=tenant, created=False, changed_fields=sorted(changes))


async def _create_environment(ctx: Provisioning, slug: str, values: dict[str, Any]) -> EnvironmentOutcome:
    plan = await _plan_for_new_subscription(values["planCode"], values["currency"])
    tenant = await Tenant.create(
        slug=slug,
        name=values["name"],
        currency=values["currency"],
        locale=values.get("locale", "en"),
        erp=values.get("erp"),
        created_at=values.get("createdAt", ctx.now),
        billing_anchor_day=values.get("billingAnchorDay", 1),
    )
    await _contract(tenant, None, plan, now=ctx.now)
    described = {
        "name": tenant.name,
        "currency": tenant.currency,
        "locale": tenant.locale,
        "erp": tenant.erp,
        "planCode": plan.code,
        "createdAt": tenant.created_at.isoformat(),
        "billingAnchorDay": tenant.billing_anchor_day,
    }
    await operator_audit.record(
        ctx.operator, "tenant.create", now=ctx.now, tenant_id=tenant.id, subject_id=slug, **described
    )
    return EnvironmentOutcome(tenant=tenant, created=True, changed_fields=sorted(described))


async def _require_no_add_ons_in(tenant: Tenant, *, now: dt.datetime) -> None:
    """Add-ons contracted in the environment's currency that still count (or will): their prices, and the
    invoices that bill them, are in that currency, so it stays."""
    contracted = await AddOnSubscription.filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now), tenant_id=tenant.id, currency=tenant.currency
    ).select_related("add_on")
    if contracted:
        codes = sorted({subscription.add_on.code for subscription in contracted})
        raise CurrencyLocked(
            _(
                "The environment has add-ons contracted in {currency} ({codes}): its currency can change "
                "only once they have ended.",
                currency=tenant.currency,
                codes=", ".join(codes),
            ),
            field="input.currency",
            currency=tenant.currency,
            add_on_codes=codes,
        )


async def _contract(
    tenant: Tenant, subscription: PlanSubscription | None, plan: Plan, *, now: dt.datetime
) -> PlanChange | None:
    """The environment's subscription on ``plan``, at the plan's price in its currency today; the change of
    plan it made, if it made one."""
    price = Decimal(plan.prices[tenant.currency])
    if subscription is None:
        # A new environment's subscription starts with it (a past creation date: an environment moved in).
        started_at = min(tenant.created_at, now)
        await PlanSubscription.create(
            tenant=tenant, plan=plan, started_at=started_at, unit_price=price, currency=tenant.currency
        )
        return None
    change = None
    if subscription.plan_id != plan.id:
        # Kept in the plan history the invoices bill from; a change the tenant scheduled is withdrawn.
        change = await plan_changes.record_operator_change(
            tenant, subscription, plan, new_price=price, now=now
        )
    # The start stays: billing periods follow the anchor day, not the change.
    await PlanSubscription.filter(id=subscription.id).update(
        plan_id=plan.id, unit_price=price, currency=tenant.currency
    )
    return change


async def _emit_plan_change(tenant: Tenant, from_code: str | None, to_code: str, *, now: dt.datetime) -> None:
    await emit(
        EventType.PLAN_CHANGED,
        tenant_id=tenant.id,
        data={"environment": tenant.slug, "from_plan_code": from_code, "to_plan_code": to_code},
        now=now,
    )
    await webhook_events.emit_limits_changed(tenant, cause=EventType.PLAN_CHANGED, now=now)


async def set_environment_active(ctx: Provisioning, slug: str, *, active: bool) -> tuple[Tenant, bool]:
    """Deactivate or reactivate an environment; its data stays. ``(tenant, changed)``."""
    tenant = await _tenant(valid_slug(slug), field="slug")
    async with in_transaction():
        changed = await Tenant.filter(id=tenant.id, is_active=not active).update(is_active=active)
        if changed:
            await operator_audit.record(
                ctx.operator,
                "tenant.reactivate" if active else "tenant.deactivate",
                now=ctx.now,
                tenant_id=tenant.id,
                subject_id=tenant.slug,
            )
    tenant = await Tenant.get(id=tenant.id)
    if changed and not active:  # after the commit: every gateway refuses its credentials from now on
        if ctx.principals is not None:
            ctx.principals.drop_tenant(str(tenant.id))
        await announce_tenant_deactivated(str(tenant.id), ctx.broadcaster)
    return tenant, bool(changed)


# --- Users ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserInput:
    environment_slug: str
    external_id: str
    email: str
    name: str
    role: Role
    locale: str | None = UNSET  # left out: kept (the environment's on a creation); None: cleared
    active: bool = True


@dataclass(frozen=True, slots=True)
class UserOutcome:
    user: User
    created: bool
    changed_fields: list[str] = field(default_factory=list)


_USER_FIELDS = {
    "externalId": "external_id",
    "email": "email",
    "name": "name",
    "role": "role",
    "locale": "locale",
    "active": "is_active",
}


async def provision_user(ctx: Provisioning, spec: UserInput) -> UserOutcome:
    """Create, update, adopt or deactivate the user ``spec.external_id`` of an environment."""
    slug = valid_slug(spec.environment_slug, field="input.environmentSlug")
    values: dict[str, Any] = {
        "externalId": valid_external_id(spec.external_id),
        "email": valid_email(spec.email),
        "name": valid_name(spec.name, field="input.name"),
        "role": Role(spec.role),
        "active": spec.active,
    }
    if spec.locale is not UNSET:
        values["locale"] = None if spec.locale is None else valid_locale(spec.locale, field="input.locale")
    tenant = await _tenant(slug, field="input.environmentSlug")
    try:
        outcome, disabled = await _retrying(lambda: _upsert_user(ctx, tenant, values))
    except IntegrityError:  # lost every race on the e-mail: someone else holds it
        raise EmailTaken(field="input.email") from None
    await _after_user_change(ctx, outcome.user, disabled=disabled, changed=bool(outcome.changed_fields))
    return outcome


async def _after_user_change(ctx: Provisioning, user: User, *, disabled: bool, changed: bool) -> None:
    if disabled:  # after the commit: every gateway refuses the user's tokens and ends their sessions
        await announce_user_disabled(str(user.id), ctx.broadcaster)
    if changed and ctx.principals is not None:  # a new role or e-mail: here at once, elsewhere within ttl
        ctx.principals.drop_user(str(user.id))


async def _upsert_user(ctx: Provisioning, tenant: Tenant, values: dict[str, Any]) -> tuple[UserOutcome, bool]:
    email = values["email"]
    # One read for both (two could straddle a concurrent creation's commit and see half of it).
    found = await User.filter(Q(tenant_id=tenant.id, external_id=values["externalId"]) | Q(email=email))
    user = next(
        (u for u in found if u.tenant_id == tenant.id and u.external_id == values["externalId"]), None
    )
    holder = next((u for u in found if u.email == email), None)
    if holder is not None and (user is None or holder.id != user.id):
        if user is None and holder.tenant_id == tenant.id and holder.external_id is None:
            user = holder  # adopted: the SaaS now knows this user by its own id
        else:
            raise EmailTaken(
                _("Another user already has this e-mail address in another environment.")
                if holder.tenant_id != tenant.id
                else _("Another user already has this e-mail address."),
                field="input.email",
            )
    if user is None:
        user = await User.create(
            tenant_id=tenant.id,
            external_id=values["externalId"],
            email=email,
            name=values["name"],
            role=values["role"],
            locale=values.get("locale"),
            is_active=values["active"],
        )
        described = {name: _json_user(getattr(user, attribute)) for name, attribute in _USER_FIELDS.items()}
        await operator_audit.record(
            ctx.operator, "user.create", now=ctx.now, tenant_id=tenant.id, subject_id=user.id, **described
        )
        return UserOutcome(user=user, created=True, changed_fields=sorted(described)), False
    return await _update_user(ctx, user, values)


def _json_user(value: Any) -> Any:
    return value.value if isinstance(value, Role) else value


async def _update_user(ctx: Provisioning, user: User, values: dict[str, Any]) -> tuple[UserOutcome, bool]:
    changes = {
        name: (getattr(user, attribute), values[name])
        for name, attribute in _USER_FIELDS.items()
        if name in values and getattr(user, attribute) != values[name]
    }
    if not changes:
        return UserOutcome(user=user, created=False), False
    for name, (_old, new) in changes.items():
        setattr(user, _USER_FIELDS[name], new)
    await user.save()
    await operator_audit.record(
        ctx.operator,
        "user.update",
        now=ctx.now,
        tenant_id=user.tenant_id,
        subject_id=user.id,
        changes={name: [_json_user(old), _json_user(new)] for name, (old, new) in changes.items()},
    )
    disabled = "active" in changes and not values["active"]
    return UserOutcome(user=user, created=False, changed_fields=sorted(changes)), disabled


async def deactivate_user(ctx: Provisioning, environment_slug: str, external_id: str) -> tuple[User, bool]:
    """``(user, changed)``: the user of ``external_id`` disabled; their tokens refused from now on."""
    tenant = await _tenant(valid_slug(environment_slug, field="environmentSlug"))
    external_id = valid_external_id(external_id, field="externalId")
    user = await User.get_or_none(tenant_id=tenant.id, external_id=external_id)
    if user is None:
        raise NotFound(
            _(
                "No user of this environment has the external id {external_id}.",
                external_id=shown(external_id),
            ),
            field="externalId",
        )
    async with in_transaction():
        changed = await User.filter(id=user.id, is_active=True).update(is_active=False)
        if changed:
            await operator_audit.record(
                ctx.operator, "user.deactivate", now=ctx.now, tenant_id=tenant.id, subject_id=user.id
            )
    user = await User.get(id=user.id)
    await _after_user_change(ctx, user, disabled=bool(changed), changed=bool(changed))
    return user, bool(changed)


async def users_of(tenant_ids: Sequence[uuid.UUID]) -> list[list[User]]:
    """The users of each tenant, by e-mail address: one query for a whole page of environments."""
    by_tenant: dict[str, list[User]] = {str(tenant_id): [] for tenant_id in tenant_ids}
    for user in await User.filter(tenant_id__in=list(tenant_ids)).order_by("email"):
        by_tenant[str(user.tenant_id)].append(user)
    return [by_tenant[str(tenant_id)] for tenant_id in tenant_ids]


# --- API keys ------------------------------------------------------------------------------------


async def create_api_key(
    ctx: Provisioning, environment_slug: str, *, name: str, scopes: list[str]
) -> tuple[ApiKey, str]:
    """A new key of the environment and its plaintext, shown this once (only its hash is stored)."""
    tenant = await _tenant(valid_slug(environment_slug, field="environmentSlug"))
    name = valid_name(name, field="name")
    scopes = valid_scopes(scopes)
    new = generate_api_key()
    async with in_transaction():
        key = await ApiKey.create(
            tenant_id=tenant.id, name=name, prefix=new.prefix, key_hash=new.key_hash, scopes=scopes
        )
        await operator_audit.record(
            ctx.operator,
            "api_key.create",
            now=ctx.now,
            tenant_id=tenant.id,
            subject_id=key.prefix,
            name=name,
            scopes=scopes,
        )
    return key, new.plaintext


async def revoke_api_key(ctx: Provisioning, environment_slug: str, prefix: str) -> tuple[ApiKey, bool]:
    """``(key, changed)``: the key revoked (a key revoked before stays as it was); announced as the CLI's."""
    tenant = await _tenant(valid_slug(environment_slug, field="environmentSlug"))
    key = await ApiKey.get_or_none(tenant_id=tenant.id, prefix=prefix[:16])
    if key is None:
        raise NotFound(
            _("No API key of this environment has the prefix {prefix}.", prefix=shown(prefix)), field="prefix"
        )
    async with in_transaction():
        changed = await ApiKey.filter(id=key.id, revoked_at__isnull=True).update(revoked_at=ctx.now)
        if changed:
            await operator_audit.record(
                ctx.operator, "api_key.revoke", now=ctx.now, tenant_id=tenant.id, subject_id=key.prefix
            )
    key = await ApiKey.get(id=key.id)
    if changed:  # after the commit, as ``tollgate apikey revoke``
        if ctx.principals is not None:
            ctx.principals.drop_api_key(key.prefix)
        await invalidation.announce(REVOKED_CHANNEL, key.prefix, ctx.broadcaster)
    return key, bool(changed)


async def api_keys_of(tenant_ids: Sequence[uuid.UUID]) -> list[list[ApiKey]]:
    """The API keys of each tenant, oldest first: one query for a whole page of environments."""
    by_tenant: dict[str, list[ApiKey]] = {str(tenant_id): [] for tenant_id in tenant_ids}
    for key in await ApiKey.filter(tenant_id__in=list(tenant_ids)).order_by("created_at", "prefix"):
        by_tenant[str(key.tenant_id)].append(key)
    return [by_tenant[str(tenant_id)] for tenant_id in tenant_ids]


# --- Reading -------------------------------------------------------------------------------------


async def environment(slug: str) -> Tenant:
    return await _tenant(slug, field="slug")


async def plan_codes_of(tenant_ids: Sequence[uuid.UUID]) -> list[str | None]:
    """The plan code of each tenant (None: no plan subscription), in one query."""
    rows = await PlanSubscription.filter(tenant_id__in=list(tenant_ids)).values_list(
        "tenant_id", "plan__code"
    )
    codes = {str(tenant_id): code for tenant_id, code in rows}
    return [codes.get(str(tenant_id)) for tenant_id in tenant_ids]


async def environments(*, first: int, after: str | None, active: bool | None) -> Page[Tenant]:
    """Environments by slug, ``first`` at a time after ``after``; only active (or inactive) ones if asked."""
    every = Tenant.all() if active is None else Tenant.filter(is_active=active)
    return await cursors.by_key(every, "environment", "slug", first=first, after=after)
