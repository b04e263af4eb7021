"""The user a valid token of the SaaS's identity provider names, created the first time it is seen.

The IdP is the source of truth for its users (docs/identity.md): a user is found by its environment and its
id at the IdP (``User.external_id``), created "just in time" on its first token, and brought up to date with
each later one (e-mail, name, role, locale). Tollgate keeps the last word on two things: a user an operator
disabled stays refused whatever the IdP says, and an e-mail address belongs to one user, never merged with
a user of another environment (nor taken over from another user of the same one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from app.i18n import _
from app.models.enums import Role
from app.models.tenancy import Tenant, User
from app.services import sql
from app.services.errors import Unauthenticated

logger = logging.getLogger("tollgate.identity")


@dataclass(frozen=True, slots=True)
class IdentityClaims:
    """What a verified IdP token says about its user (read by ``app.auth.oidc.identity_of``)."""

    environment: str  # the tenant's slug
    external_id: str
    email: str
    name: str
    role: Role
    locale: str | None  # None: the token says nothing (the user's locale is left as it is)


async def user_for_identity(identity: IdentityClaims) -> tuple[User, Tenant]:
    """The active user ``identity`` names, and its tenant; created or updated to match the token.

    Refusals (``Unauthenticated`` reasons): ``ENVIRONMENT_UNKNOWN``, ``TENANT_INACTIVE``, ``USER_DISABLED``,
    ``EMAIL_IN_OTHER_ENVIRONMENT``, ``EMAIL_TAKEN``.
    """
    row = await sql.fetch_first(
        sql.with_tenant(User, 'm."external_id" = {0} AND t."slug" = {1}'),
        identity.external_id,
        identity.environment,
    )
    if row is not None:
        user, tenant = sql.split_with_tenant(User, row)
        _check_active(tenant, user)
        return await _brought_up_to_date(user, tenant, identity), tenant
    environment = await Tenant.get_or_none(slug=identity.environment)
    if environment is None:
        raise Unauthenticated(
            _("The environment named by the bearer token does not exist."), reason="ENVIRONMENT_UNKNOWN"
        )
    _check_active(environment, None)
    return await _created(environment, identity), environment


def _check_active(tenant: Tenant, user: User | None) -> None:
    if not tenant.is_active:
        raise Unauthenticated(_("The environment of this user is disabled."), reason="TENANT_INACTIVE")
    if user is not None and not user.is_active:  # disabled by an operator: the IdP cannot undo that
        raise Unauthenticated(_("This user has been disabled in Tollgate."), reason="USER_DISABLED")


async def _created(tenant: Tenant, identity: IdentityClaims) -> User:
    # No look at the e-mail first: a concurrent first request of the same user may be inserting it. The
    # unique constraints decide, and the loser reads why (outside any transaction, so that PostgreSQL has
    # nothing to roll back).
    try:
        user = await User.create(
            tenant=tenant,
            external_id=identity.external_id,
            email=identity.email,
            name=identity.name,
            role=identity.role,
            locale=identity.locale,
        )
    except IntegrityError:
        existing = await User.get_or_none(tenant_id=tenant.id, external_id=identity.external_id)
        if existing is None:  # not the same user created concurrently: the e-mail is another user's
            await _refuse_email_of_another(tenant, identity.email, user=None)
            raise _email_race() from None
        _check_active(tenant, existing)
        return await _brought_up_to_date(existing, tenant, identity)
    logger.info("user created from the identity provider", extra={"tenant": tenant.slug, "role": user.role})
    return user


async def _brought_up_to_date(user: User, tenant: Tenant, identity: IdentityClaims) -> User:
    """The token is the IdP's current truth: what changed there changes here (one UPDATE, if anything)."""
    wanted: dict[str, Any] = {"email": identity.email, "name": identity.name, "role": identity.role}
    if identity.locale is not None:
        wanted["locale"] = identity.locale
    changes = {field: value for field, value in wanted.items() if getattr(user, field) != value}
    if not changes:
        return user
    if "email" in changes:
        await _refuse_email_of_another(tenant, identity.email, user=user)
    try:
        await User.filter(id=user.id).update(**changes)
    except IntegrityError:  # the new e-mail was taken meanwhile
        await _refuse_email_of_another(tenant, identity.email, user=user)
        raise _email_race() from None
    for field, value in changes.items():
        setattr(user, field, value)
    return user


async def _refuse_email_of_another(tenant: Tenant, email: str, *, user: User | None) -> None:
    owners = User.filter(email=email)
    owner = await (owners.exclude(id=user.id) if user is not None else owners).first()
    if owner is None:
        return
    if str(owner.tenant_id) != str(tenant.id):  # never merge identities across environments
        raise Unauthenticated(
            _("The e-mail of this token belongs to a user of another environment."),
            reason="EMAIL_IN_OTHER_ENVIRONMENT",
        )
    raise Unauthenticated(
        _(
            "The e-mail of this token belongs to another user of this environment (an operator may link "
            "them by setting that user's external id)."
        ),
        reason="EMAIL_TAKEN",
    )


def _email_race() -> Unauthenticated:
    # The e-mail's other owner changed between the insert and our look: a retry settles it.
    return Unauthenticated(
        _("The e-mail of this token was being used by another user; try again."), reason="EMAIL_TAKEN"
    )
