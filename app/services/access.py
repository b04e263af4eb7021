"""Who may open the add-on store and "My plan" (docs/design.md, "Environments, users, access")."""

from __future__ import annotations

import datetime as dt

from app.auth.principal import Principal
from app.i18n import _
from app.services.errors import NotAdmin, NotEligible


def is_store_eligible(created_at: dt.datetime, eligible_since: dt.date) -> bool:
    return created_at.astimezone(dt.UTC).date() >= eligible_since


def require_store_access(principal: Principal, *, eligible_since: dt.date) -> None:
    """Only admins of environments created on or after ``eligible_since`` (2022-01-01 by default)."""
    if not principal.is_admin:
        raise NotAdmin()
    if not is_store_eligible(principal.tenant.created_at, eligible_since):
        raise NotEligible(
            _(
                "The add-on store and My plan exist only for environments created on or after "
                "{eligible_since}; this one was created on {created_at}.",
                eligible_since=eligible_since.isoformat(),
                created_at=principal.tenant.created_at.date().isoformat(),
            ),
            eligible_since=eligible_since,
        )
