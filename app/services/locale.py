"""A user's saved language (``setMyLocale``).

A user's saved locale wins over the request's ``Accept-Language`` and the environment's default
(``app.resolvers.context.Context.current_locale``); saving none (``None``) lets those decide again.
"""

from __future__ import annotations

from app.auth.principal import Principal
from app.i18n import Locale, _
from app.models.tenancy import User
from app.services.errors import Forbidden, NotFound


async def set_user_locale(principal: Principal, locale: Locale | None) -> Locale | None:
    """Save ``locale`` as the signed-in user's language (``None`` clears it); API keys have none to save.

    The row is written, and so is the ``User`` this principal holds: it is the one the credential cache of
    this instance keeps for the token (app.auth.principal.PrincipalCache), so the rest of this request and
    the next requests with the same token here read the new choice at once. Other instances, and other
    tokens of the same user cached here, read it when their cached credential is verified again, within
    ``TOLLGATE_AUTH_CACHE_SECONDS``.
    """
    user = principal.user
    if user is None:
        raise Forbidden()  # the field's permission refuses API keys first; kept for other callers
    value = locale.value if locale is not None else None
    # A user disabled since the token was verified (its credential is still cached) saves nothing.
    if not await User.filter(id=user.id, is_active=True).update(locale=value):
        raise NotFound(_("This user no longer exists or is disabled."))
    user.locale = value
    return locale
