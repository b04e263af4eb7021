"""Alert settings: ``alertSettings``; ``setAlertThresholds``, ``setAlertRecipients`` (issue 15). The rules are
in ``app.services.alert_settings``: admins only, the input refused (never repaired) when it breaks them, every
change audited, and a change of thresholds judged against the current usage at once."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.auth import scopes
from app.resolvers.context import Info
from app.resolvers.errors import InvalidInputError, NotAdminError
from app.resolvers.ids import global_id
from app.resolvers.metering import LimitAlert
from app.resolvers.permissions import allow
from app.services import alert_settings as service


@strawberry.type(
    description="When the environment's limit alerts fire, and who is e-mailed besides its admins."
)
class AlertSettings:
    id: strawberry.ID = strawberry.field(description="The environment's: the same on every read.")
    thresholds: list[int] = strawberry.field(
        description="Percentages of a limit at which an alert fires, ascending: 1 to 5 distinct values in "
        "1..100 (80, 90, 100 by default). They apply to credits, processes, storage, users and integrations."
    )
    recipients: list[str] = strawberry.field(
        description="Addresses e-mailed every alert besides the environment's admins, as set (up to "
        f"{service.MAX_RECIPIENTS}); an admin also listed is e-mailed once."
    )

    @classmethod
    def of(cls, settings: service.AlertSettings, tenant_id: object) -> AlertSettings:
        return cls(
            id=global_id("AlertSettings", str(tenant_id)),
            thresholds=list(settings.thresholds),
            recipients=list(settings.recipients),
        )


@strawberry.type(description="The thresholds are replaced, and the current usage was judged against them.")
class SetAlertThresholdsSuccess:
    settings: AlertSettings = strawberry.field(description="The settings as the change left them.")
    alerts: list[LimitAlert] = strawberry.field(
        description="The alerts the change raised at once, oldest first: a new threshold the usage (or this "
        "period's processes) already reached fires now. Empty when none did."
    )


@strawberry.type(
    description="The extra recipients are replaced; they receive the next alert. A change of recipients "
    "raises no alert."
)
class SetAlertRecipientsSuccess:
    settings: AlertSettings = strawberry.field(description="The settings as the change left them.")


SetAlertThresholdsResult = Annotated[
    SetAlertThresholdsSuccess | NotAdminError | InvalidInputError,
    strawberry.union("SetAlertThresholdsResult", description="The new thresholds, or why they were refused."),
]
SetAlertRecipientsResult = Annotated[
    SetAlertRecipientsSuccess | NotAdminError | InvalidInputError,
    strawberry.union("SetAlertRecipientsResult", description="The new recipients, or why they were refused."),
]


def _alerts(change: service.SettingsChange, anchor_day: int) -> list[LimitAlert]:
    return [LimitAlert.of(alert, anchor_day) for alert in change.alerts]


@strawberry.type
class Query:
    @strawberry.field(
        name="alertSettings",
        extensions=allow(scopes.TENANT_READ),
        description="The caller's environment's alert thresholds and extra alert recipients, as committed.",
    )
    async def alert_settings(self, info: Info) -> AlertSettings | None:
        principal = await info.context.require_principal()
        settings = await service.read_settings(principal.tenant.id)
        return AlertSettings.of(settings, principal.tenant.id)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        name="setAlertThresholds",
        extensions=allow(),
        description="Replace the percentages of a limit at which alerts fire, for the next crossing on "
        "every kind of limit; the current usage is judged against them at once (a new threshold already "
        "reached fires now, and is in `alerts`). Audited. Admins only.",
    )
    async def set_alert_thresholds(
        self,
        info: Info,
        thresholds: Annotated[
            list[int],
            strawberry.argument(
                description="1 to 5 distinct whole percentages from 1 to 100, in any order (stored "
                "ascending); a value listed twice is refused."
            ),
        ],
    ) -> SetAlertThresholdsResult | None:
        context = info.context
        principal = await context.require_principal()
        change = await service.set_alert_thresholds(
            principal, thresholds, now=context.clock.now(), broadcaster=context.services.broadcaster
        )
        return SetAlertThresholdsSuccess(
            settings=AlertSettings.of(change.settings, principal.tenant.id),
            alerts=_alerts(change, principal.tenant.billing_anchor_day),
        )

    @strawberry.mutation(
        name="setAlertRecipients",
        extensions=allow(),
        description="Replace the addresses e-mailed every limit alert besides the environment's admins, "
        "from the next alert on. Audited. Admins only.",
    )
    async def set_alert_recipients(
        self,
        info: Info,
        recipients: Annotated[
            list[str],
            strawberry.argument(
                description=f"0 to {service.MAX_RECIPIENTS} e-mail addresses of up to 254 characters, "
                "stored as given (trimmed); an address listed twice (whatever its case) is refused. An "
                "empty list leaves the admins alone alerted."
            ),
        ],
    ) -> SetAlertRecipientsResult | None:
        context = info.context
        principal = await context.require_principal()
        change = await service.set_alert_recipients(principal, recipients, now=context.clock.now())
        return SetAlertRecipientsSuccess(settings=AlertSettings.of(change.settings, principal.tenant.id))
