"""The per-request context of the operator API: the verified operator, settings, clock, services."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from app.auth.operator import Operator
from app.clock import Clock
from app.i18n import DEFAULT_LOCALE, Locale, negotiate
from app.models.tenancy import ApiKey, User
from app.services import provisioning
from app.settings import Settings


class OperatorContext:
    def __init__(
        self,
        *,
        request: Request,
        response: Response | None,
        settings: Settings,
        clock: Clock,
        operator: Operator,
        services: Any = None,
    ) -> None:
        self.request = request
        self.response = response
        self.settings = settings
        self.clock = clock
        self.operator = operator  # verified before anything runs (app.edge.operator_app)
        self.services = services
        # One query per page of environments for each of these, however many environments it holds.
        self.users_of: DataLoader[uuid.UUID, list[User]] = DataLoader(provisioning.users_of)
        self.api_keys_of: DataLoader[uuid.UUID, list[ApiKey]] = DataLoader(provisioning.api_keys_of)
        self.plan_code_of: DataLoader[uuid.UUID, str | None] = DataLoader(provisioning.plan_codes_of)

    def current_locale(self) -> Locale:
        """The vendor's staff read English unless their ``Accept-Language`` asks for another language."""
        return negotiate(self.request.headers.get("accept-language")) or DEFAULT_LOCALE

    async def locale(self) -> Locale:
        return self.current_locale()


OperatorInfo = StrawberryInfo[OperatorContext, None]
