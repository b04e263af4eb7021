"""The per-request GraphQL context: settings, clock, the caller (resolved once, lazily) and loaders."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from app.auth.principal import Principal, authenticate
from app.clock import Clock
from app.i18n import DEFAULT_LOCALE, Locale, _, locale_of, negotiate
from app.models.tenancy import Tenant
from app.services.errors import NoActivePlan, Unauthenticated
from app.services.plan_cache import current_plan
from app.services.subscriptions import TenantPlan
from app.settings import Settings

_UNRESOLVED: Any = object()


class Context:
    def __init__(
        self,
        *,
        request: Request | WebSocket,
        response: Response | WebSocket | None,
        settings: Settings,
        clock: Clock,
        services: Any = None,
    ) -> None:
        self.request = request
        self.response = response
        self.settings = settings
        self.clock = clock
        # Application-wide collaborators (broadcaster, caches...) set in the app's lifespan.
        self.services = services
        # Set by Strawberry from the graphql-transport-ws ``connection_init`` payload.
        self.connection_params: dict[str, Any] | None = None
        self._principal: Principal | None = _UNRESOLVED
        self._plans: dict[object, asyncio.Future[TenantPlan]] = {}

    @property
    def authorization(self) -> str | None:
        if self.connection_params is not None:
            value = self.connection_params.get("Authorization") or self.connection_params.get("authorization")
            return value if isinstance(value, str) else None
        return self.request.headers.get("authorization")

    async def principal(self) -> Principal | None:
        """The caller, or ``None`` without credentials; raises ``Unauthenticated`` for bad ones."""
        if self._principal is _UNRESOLVED:
            self._principal = await authenticate(
                self.authorization,
                jwt_secret=self.settings.jwt_secret,
                now=self.clock.now(),
                cache=getattr(self.services, "principals", None),
                oidc=getattr(self.services, "oidc", None),
            )
        return self._principal

    def current_locale(self) -> Locale:
        """The language of this request, from what is known now (synchronous: error handlers call it):
        the user's saved choice (``setMyLocale``), else ``Accept-Language``, else the environment's
        default, else English. Before the caller is resolved, only the header counts."""
        known = None if self._principal is _UNRESOLVED else self._principal
        if known is not None and known.user is not None and (saved := locale_of(known.user.locale)):
            return saved
        if (asked := negotiate(self.request.headers.get("accept-language"))) is not None:
            return asked
        if known is not None and (default := locale_of(known.tenant.locale)) is not None:
            return default
        return DEFAULT_LOCALE

    async def locale(self) -> Locale:
        """``current_locale`` once the caller is known (bad credentials count as none)."""
        await self.optional_principal()
        return self.current_locale()

    async def tenant_plan(self, tenant: Tenant, now: dt.datetime) -> TenantPlan:
        """The tenant's plan at ``now`` through the app's plan cache, once per request: ``myPlan`` and
        ``creditUsage`` side by side share it (the first caller's ``now`` holds for the request)."""
        if tenant.id not in self._plans:
            self._plans[tenant.id] = asyncio.ensure_future(self._current_plan(tenant, now))
        return await asyncio.shield(self._plans[tenant.id])

    def forget_tenant_plan(self, tenant: Tenant) -> None:
        """A write of this request changed the tenant's plan: the next ``tenant_plan`` reads it again (the
        ``myPlan`` a mutation returns, the cart it prices)."""
        self._plans.pop(tenant.id, None)

    async def _current_plan(self, tenant: Tenant, now: dt.datetime) -> TenantPlan:
        plan = await current_plan(tenant, now=now, cache=getattr(self.services, "plan_cache", None))
        if plan is None:
            raise NoActivePlan()
        # A cached plan was loaded earlier: statuses are read at this request's instant.
        return plan if plan.at == now else dataclasses.replace(plan, at=now)

    async def require_principal(self) -> Principal:
        principal = await self.principal()
        if principal is None:
            raise Unauthenticated(
                _("This field needs credentials: 'Authorization: Bearer <token or API key>'.")
            )
        return principal

    async def optional_principal(self) -> Principal | None:
        """For public fields: bad credentials there fall back to anonymous rather than failing."""
        try:
            return await self.principal()
        except Unauthenticated:
            return None


Info = StrawberryInfo[Context, None]
