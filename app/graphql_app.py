"""The Strawberry ASGI view: builds the per-request context and authenticates WebSocket connections."""

from __future__ import annotations

from typing import Any

from cross_web import AsyncHTTPRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from app.clock import Clock
from app.graphiql import render_page
from app.persisted_queries import PersistedQueries, PersistedQueryError, load_manifest
from app.resolvers.context import Context
from app.services.errors import Unauthenticated
from app.settings import Settings


class TollgateGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Any, *, settings: Settings, clock: Clock, services: Any = None) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.settings = settings
        self.clock = clock
        self.services = services
        manifest = load_manifest(settings.persisted_queries_file) if settings.persisted_queries_file else {}
        self.persisted_queries = PersistedQueries(manifest=manifest, allowlist_only=settings.allowlist_only)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Fill the document in from a persisted-query hash before running it."""
        try:
            request_data = self.persisted_queries.resolve(request_data)
        except PersistedQueryError as error:
            return ExecutionResult(
                data=None, errors=[GraphQLError(error.message, extensions={"code": error.code})]
            )
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """Our own GraphiQL page, with its assets served locally (no CDN)."""
        return HTMLResponse(render_page())

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        return Context(
            request=request,
            response=response,
            settings=self.settings,
            clock=self.clock,
            services=self.services,
        )

    async def on_ws_connect(self, context: Context) -> None:
        """Subscriptions authenticate in ``connection_init``; a missing or bad credential closes with 4403."""
        try:
            principal = await context.principal()
        except Unauthenticated as error:
            raise ConnectionRejectionError({"code": error.code, "message": error.message}) from error
        if principal is None:
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": "connection_init needs credentials"}
            )
