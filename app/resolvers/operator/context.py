"""The per-request context of the operator API: the verified operator, settings, clock, services."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as StrawberryInfo

from app.auth.operator import Operator
from app.clock import Clock
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


OperatorInfo = StrawberryInfo[OperatorContext, None]
