"""The caller's language: ``setMyLocale`` (the rule is in ``app.services.locale``)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.i18n import Locale
from app.resolvers.account import Viewer
from app.resolvers.common import LocaleEnum
from app.resolvers.context import Info
from app.resolvers.errors import NotFoundError
from app.resolvers.permissions import allow
from app.services import locale as service


@strawberry.type(description="The language is saved (or cleared); this response already reads in it.")
class SetMyLocaleSuccess:
    saved: LocaleEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="The language saved; null when the choice was cleared."
    )
    viewer: Viewer = strawberry.field(
        description="The caller after the change: `viewer.locale` is the language requests now read in."
    )


SetMyLocaleResult = Annotated[
    SetMyLocaleSuccess | NotFoundError,
    strawberry.union(
        "SetMyLocaleResult",
        description="The saved language, or `NotFoundError` when the user was disabled or removed meanwhile "
        "(their token still valid for a few seconds).",
    ),
]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="setMyLocale",
        extensions=allow(),
        description="Save the language the signed-in user reads the back office in (API messages, catalog "
        "texts, labels, formatted amounts and dates, e-mails); it wins over `Accept-Language` and the "
        "environment's default. Null clears it: those decide again.",
    )
    async def set_my_locale(
        self,
        info: Info,
        locale: Annotated[
            LocaleEnum | None,  # type: ignore[valid-type]
            strawberry.argument(description="The language to save; null clears the saved choice."),
        ] = None,
    ) -> SetMyLocaleResult | None:
        context = info.context
        principal = await context.require_principal()
        chosen: Locale | None = locale
        saved = await service.set_user_locale(principal, chosen)
        return SetMyLocaleSuccess(
            saved=saved, viewer=Viewer.of(principal, eligible_since=context.settings.store_eligible_since)
        )
