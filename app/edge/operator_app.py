"""``/operator/graphql``: the operator API over HTTP POST, for operator keys only.

Nothing runs before the operator key is verified: a request without one, or with an environment's key or
a user token, is answered 401 with an ``UNAUTHENTICATED`` error, so that not even the schema can be
introspected by a partner who finds the path. Requests are charged to the rate limit by verified key.
"""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from app.auth.operator import authenticate_operator
from app.auth.principal import bearer_token
from app.clock import Clock
from app.edge.rate_limit import RateLimited, RateLimiter, charge, client_address, locale_of_scope
from app.i18n import Locale, _
from app.resolvers.operator.context import OperatorContext
from app.services.errors import ErrorCode, Unauthenticated
from app.settings import Settings


class OperatorRefused(Exception):
    """No valid operator key: answered 401 before the body is read."""

    def __init__(self, error: Unauthenticated) -> None:
        super().__init__(error.message)
        self.error = error

    async def send_http(self, send: Send, locale: Locale | None = None) -> None:
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": self.error.localized(locale),
                        "extensions": {"code": ErrorCode.UNAUTHENTICATED, **self.error.details},
                    }
                ]
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="tollgate-operator"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class OperatorGraphQL(GraphQL[OperatorContext, None]):
    def __init__(
        self,
        schema: Any,
        *,
        settings: Settings,
        clock: Clock,
        services: Any = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(schema, graphql_ide=None, allow_queries_via_get=False, subscription_protocols=())
        self.settings = settings
        self.clock = clock
        self.services = services
        self.rate_limiter = rate_limiter
        self.trusted_proxies = settings.trusted_proxy_networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except OperatorRefused as refused:
            await refused.send_http(send, locale_of_scope(scope))
        except RateLimited as refused:
            await refused.send_http(send, locale_of_scope(scope))

    async def get_context(self, request: Any, response: Any) -> OperatorContext:
        address = client_address(request.scope, self.trusted_proxies)
        try:
            token = bearer_token(request.headers.get("authorization"))
            if token is None:
                raise Unauthenticated(
                    _("The operator API needs 'Authorization: Bearer <operator key>'."), reason="MISSING"
                )
            operator = await authenticate_operator(token)
        except Unauthenticated as error:
            await charge(self.rate_limiter, f"ip:{address}")
            raise OperatorRefused(error) from None
        await charge(self.rate_limiter, f"operator:{operator.key.id}")
        return OperatorContext(
            request=request,
            response=response,
            settings=self.settings,
            clock=self.clock,
            operator=operator,
            services=self.services,
        )

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        if "application/json" not in (request.headers.get("content-type") or ""):
            raise HTTPException(415, "Send GraphQL requests as application/json")
        return await super().parse_http_body(request)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()
