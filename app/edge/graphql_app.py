"""The Strawberry ASGI view: builds the per-request context and authenticates WebSocket connections.

Compiled documents (the fast lane's plans, the catalog's cached answers) are answered by a lean route in
front of Strawberry's HTTP view: the same context (built and charged to the rate limiter as for any
request), the same persisted-query resolution, the same fast lane, the same JSON and headers. Anything else,
or a request the lane hands back, goes on to Strawberry with that context and the body already read.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
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
# Keys of the ASGI scope, set by the lean route for Strawberry's view when it hands a request on: the
# context's sub-response (so that the answer carries what the resolvers set on it), and that the compiled
# lanes were tried (so that a root resolver that ran is replayed by Strawberry, never run again).
_SUB_RESPONSE = "tollgate.sub_response"
_LANES_TRIED = "tollgate.lanes_tried"


class Gateway(Starlette):
    """Starlette, except that a ``POST /graphql`` goes from the app's middleware straight to the GraphQL
    view: Starlette's exception middleware and router have nothing to do for it (the view answers its own
    errors; the route would only match the path and the method), and cost a tenth of a cached quota
    check. Everything else (GET, WebSocket, the other routes) goes through Starlette's whole stack."""

    def __init__(self, graphql: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graphql_view = graphql
        self.graphql_stack: ASGIApp | None = None

    def build_middleware_stack(self) -> ASGIApp:
        # The shortcut's stack: Starlette's outermost error middleware, then the app's own, as Starlette
        # builds them (Starlette.build_middleware_stack).
        handler = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
        stack = self.graphql_view
        for cls, args, kwargs in reversed(self.user_middleware):
            stack = cls(stack, *args, **kwargs)
        self.graphql_stack = ServerErrorMiddleware(stack, handler=handler, debug=self.debug)
        return super().build_middleware_stack()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/graphql":
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            if self.graphql_stack is not None and self.max_body_size is None:
                scope["app"] = self
                await self.graphql_stack(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


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
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            sub_response = await self.get_sub_response(request)
            context = await self.get_context(request, sub_response)  # charged here, before the body is read
            if await self._answer_compiled(request, context, send):
                return
            scope[_SUB_RESPONSE] = sub_response
            response = await self.run(request, context=context)
        except RateLimited as refused:
            await refused.send_http(send, locale_of_scope(scope))
            return
        except HTTPException as error:  # as Strawberry's own __call__
            response = PlainTextResponse(error.reason, status_code=error.status_code)
        await response(scope, receive, send)

    async def _answer_compiled(self, request: Request, context: Context, send: Send) -> bool:
        """Answers a POST of a compiled document (a fast-lane plan or a cached catalog answer), or returns
        False to leave the request to Strawberry's view: every other shape, and every case where Strawberry
        would answer an error (bad JSON, a bad persisted-query hash...), goes there as before."""
        if self.fast_path is None or request.method != "POST":
            return False
        headers = request.headers
        if not _is_json(headers.get("content-type", "")) or self._get_stream_transport_from_headers(headers):
            return False
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return False
        if not isinstance(body, dict):
            return False
        query, variables = body.get("query"), body.get("variables")
        operation_name, extensions = body.get("operationName"), body.get("extensions")
        if not (
            isinstance(query, str | None)
            and isinstance(variables, dict | None)
            and isinstance(operation_name, str | None)
            and isinstance(extensions, dict | None)
        ):
            return False
        try:
            request_data = self.persisted_queries.resolve(
                GraphQLRequestData(query, variables, operation_name, extensions)
            )
        except PersistedQueryError:
            return False
        if request_data.query is None:
            return False
        request.scope[_LANES_TRIED] = True
        data = await self._compiled(request.method, context, request_data)
        if data is None:
            return False
        content = orjson.dumps({"data": data})
        media_type = GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in headers.get("accept", "") else "application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(content)).encode()),
                    (b"content-type", media_type.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})
        return True

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        prepared: Response | None = request.scope.get(_SUB_RESPONSE)
        return prepared if prepared is not None else await super().get_sub_response(request)

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
        if not request.scope.get(_LANES_TRIED):
            data = await self._compiled(request_adapter.method, context, request_data)
            if data is not None:
                result = ExecutionResult(data=data, errors=None)
                self._negotiate(request, sub_response, result)
                return result
        catalog_key = await self._catalog_key(context, request_data)
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

    async def _compiled(self, method: str, context: Context, request_data: GraphQLRequestData) -> Any:
        """The ``data`` of a cached catalog answer or of the fast lane (documents compiled once they ran
        cleanly, see app.edge.fast_path), else None."""
        catalog_key = await self._catalog_key(context, request_data)
        if catalog_key is not None and (cached := self.catalog_cache.get(catalog_key)) is not None:
            return cached
        if self.fast_path is None:
            return None
        plan = self.fast_path.plan_for(request_data.query, request_data.operation_name)
        if plan is None or (plan.operation_type == "mutation" and method == "GET"):
            return None
        return await self.fast_path.execute(plan, request_data.variables, context)

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


@functools.lru_cache(maxsize=64)
def _is_json(content_type: str) -> bool:
    """Strawberry's rule for a JSON body (``parse_http_body``), memoised: clients send few distinct values."""
    return "application/json" in parse_content_type(content_type)[0]


def is_request_error(result: ExecutionResult) -> bool:
    """Parse and validation errors: nothing ran, so no error has a path."""
    return (
        result.data is None and bool(result.errors) and all(not error.path for error in result.errors or ())
    )
