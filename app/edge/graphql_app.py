"""The Strawberry ASGI view: builds the per-request context and authenticates WebSocket connections."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from app.clock import Clock
from app.edge.fast_path import FastPath
from app.edge.graphiql import render_page
from app.edge.live_sessions import LiveSession, LiveSessions
from app.edge.persisted_queries import PersistedQueries, PersistedQueryError, load_manifest
from app.edge.rate_limit import (
    RateLimited,
    RateLimiter,
    caller_of,
    charge,
    client_address,
    locale_of_scope,
)
from app.edge.response_cache import CatalogCache, is_public_catalog_query
from app.i18n import _, render
from app.resolvers.context import Context
from app.services.errors import ErrorCode, Unauthenticated
from app.settings import Settings

# GraphQL over HTTP: clients that accept this media type get 4xx answers for request errors.
GRAPHQL_RESPONSE = "application/graphql-response+json"


class TollgateGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = LiveSession

    def __init__(
        self,
        schema: Any,
        *,
        settings: Settings,
        clock: Clock,
        services: Any = None,
        rate_limiter: RateLimiter | None = None,
        sessions: LiveSessions | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            # graphql-transport-ws only: the legacy graphql-ws protocol is closed with 4406.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=dt.timedelta(seconds=settings.websocket_init_timeout_seconds),
            max_subscriptions_per_connection=settings.websocket_max_operations,
            allowed_origins=settings.cors_allowed_origins,
        )
        self.settings = settings
        self.clock = clock
        self.services = services
        manifest = load_manifest(settings.persisted_queries_file) if settings.persisted_queries_file else {}
        self.persisted_queries = PersistedQueries(manifest=manifest, allowlist_only=settings.allowlist_only)
        self.fast_path = FastPath(schema) if settings.fast_path else None
        self.catalog_cache = CatalogCache(settings.catalog_cache_seconds)
        self.rate_limiter = rate_limiter
        self.trusted_proxies = settings.trusted_proxy_networks
        self.sessions = sessions if sessions is not None else LiveSessions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except RateLimited as refused:  # raised by get_context, before the body is read
            await refused.send_http(send, locale_of_scope(scope))

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
            message = render(error.text, context.current_locale())
            return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": error.code})])
        catalog_key = await self._catalog_key(context, request_data)
        cached = self.catalog_cache.get(catalog_key) if catalog_key is not None else None
        result = ExecutionResult(data=cached, errors=None) if cached is not None else None
        if result is None:
            result = await self._execute_fast(request_adapter, context, request_data)
        if result is not None:
            self._negotiate(request, sub_response, result)
            return result
        try:
            result = await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as error:
            if request_adapter.method == "GET" and "not allowed when using GET" in error.reason:
                # A mutation over GET: 405, so that no link or image tag can ever change anything.
                raise HTTPException(405, error.reason) from error
            raise
        if not result.errors:
            if self.fast_path is not None:
                self.fast_path.learn(request_data.query, request_data.operation_name)
            if catalog_key is not None and result.data is not None:
                self.catalog_cache.put(catalog_key, result.data)
        self._negotiate(request, sub_response, result)
        return result

    async def _catalog_key(self, context: Context, request_data: GraphQLRequestData) -> Any:
        """The cache key of a public catalog query (it depends on the caller's currency, ERP and language),
        else None."""
        query = request_data.query
        if self.catalog_cache.ttl <= 0 or query is None:
            return None
        if not is_public_catalog_query(query, request_data.operation_name):
            return None
        principal = await context.optional_principal()
        currency = principal.tenant.currency if principal else self.settings.default_currency
        # Prices and availability of add-ons sold per ERP depend on the caller's ERP too.
        erp = (principal.tenant.erp or "") if principal else ""
        # Names, descriptions, conditions, price labels and formatted amounts are in the caller's language.
        locale = await context.locale()
        return self.catalog_cache.key(
            query, request_data.operation_name, request_data.variables, f"{currency}|{erp}|{locale}"
        )

    async def _execute_fast(
        self, request_adapter: AsyncHTTPRequestAdapter, context: Context, request_data: GraphQLRequestData
    ) -> ExecutionResult | None:
        """The connector's flat operations, compiled once they ran cleanly (see app.edge.fast_path)."""
        if self.fast_path is None:
            return None
        plan = self.fast_path.plan_for(request_data.query, request_data.operation_name)
        if plan is None or (plan.operation_type == "mutation" and request_adapter.method == "GET"):
            return None
        data = await self.fast_path.execute(plan, request_data.variables, context)
        return None if data is None else ExecutionResult(data=data, errors=None)

    @staticmethod
    def _negotiate(request: Request, sub_response: Response, result: ExecutionResult) -> None:
        if GRAPHQL_RESPONSE in request.headers.get("accept", ""):
            sub_response.media_type = GRAPHQL_RESPONSE
            if is_request_error(result):
                sub_response.status_code = 400

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        try:
            return await super().parse_http_body(request)
        except HTTPException as error:
            if error.reason == "Unsupported content type":
                # Only JSON bodies: a cross-site form or text/plain POST never reaches a mutation.
                raise HTTPException(415, "Send GraphQL requests as application/json") from error
            raise

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if is_request_error(result) and GRAPHQL_RESPONSE in request.headers.get("accept", ""):
            response.pop("data", None)  # a request error has no data entry at all
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE:
            response.headers["content-type"] = GRAPHQL_RESPONSE
        return response

    def parse_json(self, data: str | bytes) -> Any:
        decoded = super().parse_json(data)
        # A POST body arrives as bytes (GET parameters as str, checked by Strawberry): it is one request
        # object; a list is a batch, refused by Strawberry with a 400 (batching is off).
        if isinstance(data, bytes) and not isinstance(decoded, dict | list):
            raise HTTPException(400, 'The request body must be a JSON object: {"query": ...}')
        return decoded

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        if isinstance(request_data, GraphQLRequestData) and _is_subscription(
            request_data.query, request_data.operation_name, self.settings.max_query_tokens
        ):
            raise HTTPException(
                400, "Subscriptions run over WebSocket: graphql-transport-ws at /graphql, not over HTTP."
            )
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # orjson.JSONDecodeError is a json.JSONDecodeError: a 400 as before

    def encode_json(self, data: object) -> str:
        # A str, not bytes: Strawberry sends bytes over WebSocket as binary frames, which
        # graphql-transport-ws clients reject (the protocol is text frames only).
        return orjson.dumps(data).decode()

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """Our own GraphiQL page, with its assets served locally (no CDN)."""
        return HTMLResponse(render_page())

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        context = Context(
            request=request,
            response=response,
            settings=self.settings,
            clock=self.clock,
            services=self.services,
        )
        if self.rate_limiter is not None and isinstance(request, Request):
            # Charged to the verified caller: the credential is checked here (through the credential
            # cache, and once: the context keeps the caller for the resolvers), before the body is read.
            await charge(self.rate_limiter, await self.caller_of(context))
        return context

    def client_address(self, request: Request | WebSocket) -> str:
        return client_address(request.scope, self.trusted_proxies)

    async def caller_of(self, context: Context) -> str:
        """The rate-limit bucket of the context's caller: its verified key or user, else its address."""
        try:
            principal = await context.optional_principal()  # a bad credential is charged to the address
        except Exception:  # the database is away: charged to the address; the resolvers report the error
            principal = None
        return caller_of(principal, self.client_address(context.request))

    async def on_ws_connect(self, context: Context) -> None:
        """Subscriptions authenticate in ``connection_init``; a missing or bad credential closes with 4403."""
        try:
            principal = await context.principal()
        except Unauthenticated as error:
            message = error.localized(context.current_locale())
            raise ConnectionRejectionError({"code": error.code, "message": message}) from error
        if principal is None:
            message = _("connection_init needs credentials").render(context.current_locale())
            raise ConnectionRejectionError({"code": ErrorCode.UNAUTHENTICATED, "message": message})


_SUBSCRIPTION_KEYWORD = re.compile(r"\bsubscription\b")


def _is_subscription(query: str | None, operation_name: str | None, max_tokens: int) -> bool:
    """Whether the operation to run is a subscription. Only a document with the word is parsed (the
    connector's never have it; ``subscriptionId`` is another word), and no further than its token limit."""
    if not query or not _SUBSCRIPTION_KEYWORD.search(query):
        return False
    try:
        operation = get_operation_ast(parse(query, max_tokens=max_tokens), operation_name)
    except GraphQLError:  # the executor reports it as the request error it is
        return False
    return operation is not None and operation.operation == OperationType.SUBSCRIPTION


def is_request_error(result: ExecutionResult) -> bool:
    """Parse and validation errors: nothing ran, so no error has a path."""
    return (
        result.data is None and bool(result.errors) and all(not error.path for error in result.errors or ())
    )
