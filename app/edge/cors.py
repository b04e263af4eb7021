"""CORS for the back office's origins, on ``/graphql`` only (docs/security.md "Browsers on other origins")."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class GraphQLCORSMiddleware:
    """CORS for browser pages of ``TOLLGATE_CORS_ALLOWED_ORIGINS`` on ``/graphql`` only (never the operator
    API, metrics or invoice downloads). Outermost, so that preflights are answered before the size limit,
    the rate limiter and the 415 of non-JSON bodies, and so that their refusals (413, 429 with
    ``Retry-After``) carry the headers a page needs to read them. Tokens travel in ``Authorization``: no
    credentials (cookies) mode."""

    METHODS = ("GET", "POST", "OPTIONS")
    # Every request header the API reads (Idempotency keys are arguments, not headers).
    HEADERS = ("Authorization", "Content-Type", "Accept", "Accept-Language", "X-Request-ID")
    EXPOSED = ("Retry-After", "X-Request-ID")
    MAX_AGE = 600  # seconds a browser may reuse a preflight's answer

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=self.METHODS,
            allow_headers=self.HEADERS,
            expose_headers=self.EXPOSED,
            max_age=self.MAX_AGE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/graphql":
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
