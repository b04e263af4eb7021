"""The Starlette application: ``/graphql`` (HTTP and WebSocket), ``/operator/graphql`` (the operator API),
``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from tortoise.connection import get_connection
from tortoise.contrib.starlette import RegisterTortoise

from app.auth.oidc import OidcVerifier
from app.auth.principal import (
    REVOKED_CHANNEL,
    TENANT_DEACTIVATED_CHANNEL,
    USER_DISABLED_CHANNEL,
    PrincipalCache,
)
from app.broadcast import Broadcaster, broadcaster_from_settings
from app.clock import Clock, SystemClock
from app.db import tortoise_config
from app.edge.cors import GraphQLCORSMiddleware
from app.edge.graphiql import graphiql_asset, graphiql_page
from app.edge.graphql_app import Gateway, TollgateGraphQL
from app.edge.invoice_download import invoice_pdf_endpoint
from app.edge.live_sessions import LiveSessions
from app.edge.operator_app import OperatorGraphQL
from app.edge.persisted_queries import allowlist_rule, load_manifest
from app.edge.query_limits import QueryLimits
from app.edge.rate_limit import rate_limiter_for
from app.edge.request_size import RequestSizeLimitMiddleware
from app.notifications.dispatcher import OutboxDispatcher
from app.notifications.mailer import mailer_from_settings
from app.notifications.webhooks import WebhookDeliverer
from app.observability import RequestContextMiddleware, metrics_endpoint_for
from app.resolvers.operator.schema import operator_schema
from app.schema import DEFAULT_LIMITS, build_schema
from app.schema import schema as default_schema
from app.services import catalog_apply, figures_cache, invalidation, plan_cache
from app.services.alert_publisher import PendingAlertsTask
from app.services.figures_cache import FiguresCache
from app.services.invoice_issuing import InvoiceIssuingTask
from app.services.lifecycle import AddOnLifecycleTask
from app.services.plan_cache import PlanCache
from app.services.secrets import box_from_settings
from app.settings import Settings, get_settings


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await get_connection("default").execute_query("SELECT 1")
    except Exception as error:  # any failure of the database means "not ready"
        return JSONResponse({"status": "unavailable", "database": type(error).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


def schema_for(settings: Settings) -> Any:
    """The schema with the settings' query limits; in allow-list mode, only the manifest's documents run."""
    allowed: frozenset[str] | None = None
    if settings.allowlist_only and settings.persisted_queries_file is not None:
        allowed = frozenset(load_manifest(settings.persisted_queries_file))
    return _schema(settings.query_limits, allowed)


@functools.lru_cache(maxsize=8)
def _schema(limits: QueryLimits, allowed: frozenset[str] | None) -> Any:
    # Building a schema takes a while; apps with the same limits (every test) share one.
    if allowed is None and limits == DEFAULT_LIMITS:
        return default_schema
    return build_schema(limits=limits, validation_rules=[allowlist_rule(allowed)] if allowed else [])


@dataclasses.dataclass
class AppServices:
    """Application-wide collaborators handed to every request's context (``context.services``)."""

    broadcaster: Broadcaster
    plan_cache: PlanCache = dataclasses.field(default_factory=PlanCache)
    figures_cache: FiguresCache = dataclasses.field(default_factory=FiguresCache)
    principals: PrincipalCache | None = None
    oidc: OidcVerifier | None = None  # the SaaS's identity provider, when TOLLGATE_OIDC_ISSUER is set


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    manage_orm: bool = True,
    run_background_tasks: bool = True,
    schema: Any = None,
) -> Starlette:
    """Build the app. Tests that own the Tortoise context pass ``manage_orm=False``."""
    settings = settings or get_settings()
    if settings.env == "production" and not settings.metrics_token:
        # /metrics tells anyone who reads it the traffic of every tenant: never open to the world.
        raise RuntimeError("TOLLGATE_METRICS_TOKEN must be set when TOLLGATE_ENV=production")
    clock = clock or SystemClock()
    if schema is None:
        schema = schema_for(settings)
    services = AppServices(
        broadcaster=broadcaster_from_settings(settings),
        figures_cache=FiguresCache(ttl=settings.usage_cache_seconds),
        principals=PrincipalCache(settings.auth_cache_seconds),
        oidc=OidcVerifier.from_settings(settings),
    )
    limiter, limiter_redis = rate_limiter_for(
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
        settings.redis_url,
        namespace=f"{settings.redis_channel_prefix}ratelimit",
    )
    sessions = LiveSessions()
    graphql = TollgateGraphQL(
        schema, settings=settings, clock=clock, services=services, rate_limiter=limiter, sessions=sessions
    )
    operator_graphql = OperatorGraphQL(
        operator_schema(settings.query_limits),
        settings=settings,
        clock=clock,
        services=services,
        rate_limiter=limiter,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(services.broadcaster.aclose)  # live alerts: Redis or in-process
            if services.oidc is not None:  # its HTTP client (JWKS fetches)
                stack.push_async_callback(services.oidc.aclose)
            # Entries that other instances' commits made stale are dropped here too (see the caches).
            await stack.enter_async_context(
                plan_cache.following_changes(services.plan_cache, services.broadcaster)
            )
            await stack.enter_async_context(
                figures_cache.following_changes(services.figures_cache, services.broadcaster)
            )

            def catalog_changed(_: str) -> None:  # tollgate catalog apply
                services.plan_cache.clear()
                graphql.catalog_cache.clear()

            await stack.enter_async_context(
                invalidation.following(catalog_apply.CHANNEL, catalog_changed, services.broadcaster)
            )
            if services.principals is not None:
                await stack.enter_async_context(
                    invalidation.following(
                        REVOKED_CHANNEL, services.principals.drop_api_key, services.broadcaster
                    )
                )
                await stack.enter_async_context(
                    invalidation.following(
                        USER_DISABLED_CHANNEL, services.principals.drop_user, services.broadcaster
                    )
                )
                await stack.enter_async_context(
                    invalidation.following(
                        TENANT_DEACTIVATED_CHANNEL, services.principals.drop_tenant, services.broadcaster
                    )
                )
            # Live sessions end with their credentials (app.edge.live_sessions).
            await stack.enter_async_context(
                invalidation.following(REVOKED_CHANNEL, sessions.end_api_key, services.broadcaster)
            )
            await stack.enter_async_context(
                invalidation.following(USER_DISABLED_CHANNEL, sessions.end_user, services.broadcaster)
            )
            await stack.enter_async_context(
                invalidation.following(TENANT_DEACTIVATED_CHANNEL, sessions.end_tenant, services.broadcaster)
            )
            if manage_orm:
                await stack.enter_async_context(RegisterTortoise(app, config=tortoise_config(settings)))
            if run_background_tasks:
                dispatcher = OutboxDispatcher(
                    mailer_from_settings(settings),
                    clock=clock,
                    mail_from=settings.mail_from,
                    lease=dt.timedelta(seconds=settings.outbox_lease_seconds),
                )
                await stack.enter_async_context(dispatcher.running())
                # Webhook deliveries committed with their change (and those a dead instance left behind).
                deliverer = WebhookDeliverer(
                    box_from_settings(settings),
                    clock=clock,
                    timeout=settings.webhook_timeout_seconds,
                    poll_interval=settings.webhook_poll_seconds,
                    lease=dt.timedelta(seconds=settings.webhook_lease_seconds),
                )
                await stack.enter_async_context(deliverer.running())
                # Alerts committed by a process that died before pushing them live (issue 11).
                pending_alerts = PendingAlertsTask(
                    services.broadcaster,
                    clock=clock,
                    grace=dt.timedelta(seconds=settings.alert_publish_grace_seconds),
                    interval=settings.alert_publish_interval_seconds,
                )
                await stack.enter_async_context(pending_alerts.running())
                # The "disabled today" e-mails of add-ons that ended (their limits already follow the clock).
                lifecycle = AddOnLifecycleTask(
                    clock=clock,
                    interval=settings.lifecycle_interval_seconds,
                    on_enqueued=dispatcher.wake,
                    broadcaster=services.broadcaster,
                )
                await stack.enter_async_context(lifecycle.running())
                # The invoices of ended billing periods, once each even with several instances (issue 14).
                if settings.invoice_issue_interval_seconds > 0:
                    issuing = InvoiceIssuingTask(
                        clock=clock,
                        interval=settings.invoice_issue_interval_seconds,
                        on_enqueued=dispatcher.wake,
                    )
                    await stack.enter_async_context(issuing.running())
            if limiter_redis is not None:
                stack.push_async_callback(limiter_redis.aclose)
            yield

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint_for(settings.metrics_token)),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/operator/graphql", operator_graphql, methods=["POST"]),
        Route("/invoices/{number}.pdf", invoice_pdf_endpoint, methods=["GET"]),
    ]
    if settings.graphiql:
        routes += [Route("/graphiql", graphiql_page), Route("/graphiql/assets/{name}", graphiql_asset)]
    app = Gateway(
        graphql,
        routes=routes,
        lifespan=lifespan,
        middleware=[
            *(
                [Middleware(GraphQLCORSMiddleware, origins=settings.cors_allowed_origins)]
                if settings.cors_allowed_origins
                else []
            ),
            Middleware(RequestContextMiddleware),
            Middleware(RequestSizeLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.graphql = graphql
    app.state.services = services
    return app
