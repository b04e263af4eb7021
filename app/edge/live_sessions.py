"""WebSocket sessions (graphql-transport-ws) that end with their credentials, and pay for what they ask.

A connection authenticates once, in ``connection_init``; it must not outlive what authenticated it (issue 11).
It is closed with 4403, and sent nothing more, when:

- its API key is revoked: at once on every gateway that hears ``REVOKED_CHANNEL`` (``tollgate apikey
  revoke`` announces it, through Redis when gateways share it);
- its user is disabled: at once on hearing ``USER_DISABLED_CHANNEL`` (``announce_user_disabled``);
- its environment is deactivated: at once on hearing ``TENANT_DEACTIVATED_CHANNEL`` (the operator API's
  ``deactivateEnvironment``, ``announce_tenant_deactivated``);
- its token expires: at the token's ``exp``, scheduled when the connection is accepted;
- and in any case within ``TOLLGATE_AUTH_CACHE_SECONDS`` (1 s at least) without any broadcast: each session
  verifies its credential again, against the database, that often (one query per credential and tick, however
  many sessions share it).

Every ``subscribe`` message is charged to the caller's rate-limit bucket, as an HTTP request is; one over the
limit gets the protocol's ``error`` message with code ``RATE_LIMITED`` and the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    Message,
    SubscribeMessage,
)

from app.auth.api_keys import looks_like_api_key
from app.auth.principal import Principal, authenticate, bearer_token
from app.auth.tokens import session_expiry
from app.edge.rate_limit import RateLimited, charge
from app.resolvers.context import Context
from app.services.errors import Unauthenticated
from app.settings import Settings

if TYPE_CHECKING:
    from graphql import GraphQLFormattedError

    from app.edge.graphql_app import TollgateGraphQL

logger = logging.getLogger("tollgate.live_sessions")

CREDENTIALS_ENDED = 4403
MIN_RECHECK_SECONDS = 1.0  # with TOLLGATE_AUTH_CACHE_SECONDS=0, a session is verified again every second


def uvicorn_websocket_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's WebSocket options for these settings (``tollgate serve`` and the bench's server).

    Without permessage-deflate an idle connection costs a third of what it does with it (the zlib contexts of
    both directions, kept for the connection's life); uvicorn offers it whenever a client asks.
    """
    return {"ws_per_message_deflate": settings.websocket_compression}


class LiveSessions:
    """The accepted sessions of this gateway, by API key prefix and by user id, to end them on a broadcast."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[LiveSession]] = {}
        self._by_user: dict[str, set[LiveSession]] = {}
        self._by_tenant: dict[str, set[LiveSession]] = {}  # every session, by its tenant's id
        self._ending: set[asyncio.Task[None]] = set()
        self._verifying: dict[str, asyncio.Future[Principal | None]] = {}

    async def verify(
        self, authorization: str | None, verify: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        """``verify()``, shared by the sessions of ``authorization`` that ask while it runs."""
        key = authorization or ""
        running = self._verifying.get(key)
        if running is None:
            running = asyncio.ensure_future(verify())
            self._verifying[key] = running

            def done(future: asyncio.Future[Principal | None]) -> None:
                self._verifying.pop(key, None)
                if not future.cancelled():
                    future.exception()  # retrieved: every session that asked has it already

            running.add_done_callback(done)
        return await asyncio.shield(running)

    def add(self, session: LiveSession, principal: Principal) -> None:
        for index, name in self._names(principal):
            index.setdefault(name, set()).add(session)

    def discard(self, session: LiveSession, principal: Principal) -> None:
        for index, name in self._names(principal):
            sessions = index.get(name)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del index[name]

    def end_api_key(self, prefix: str) -> None:
        """The key with this prefix was revoked: end its sessions."""
        self._end(self._by_key.get(prefix, ()), "API key revoked")

    def end_user(self, user_id: str) -> None:
        """This user was disabled: end their sessions."""
        self._end(self._by_user.get(user_id, ()), "user disabled")

    def end_tenant(self, tenant_id: str) -> None:
        """This tenant was deactivated: end the sessions of its keys and users."""
        self._end(self._by_tenant.get(tenant_id, ()), "environment deactivated")

    def __len__(self) -> int:
        return sum(len(sessions) for sessions in (*self._by_key.values(), *self._by_user.values()))

    def _end(self, sessions: Any, reason: str) -> None:
        for session in list(sessions):
            task = asyncio.ensure_future(session.end(reason))
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    def _names(self, principal: Principal) -> list[tuple[dict[str, set[LiveSession]], str]]:
        names = []
        if principal.api_key is not None:
            names.append((self._by_key, principal.api_key.prefix))
        if principal.user is not None:
            names.append((self._by_user, str(principal.user.id)))
        names.append((self._by_tenant, str(principal.tenant.id)))
        return names


class LiveSession(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler, with a rate limit per operation and credentials watched."""

    view: TollgateGraphQL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ended = False
        self._principal: Principal | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._principal is None and not self._ended:
            principal = await self.context.principal()  # resolved by on_ws_connect: no query
            assert principal is not None
            self._principal = principal
            self.view.sessions.add(self, principal)
            self._watcher = asyncio.create_task(self._watch_credentials(principal))

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self._ended:
            return
        if self.connection_acknowledged and self.view.rate_limiter is not None:
            try:
                await charge(self.view.rate_limiter, await self.view.caller_of(self.context))
            except RateLimited as refused:
                error = cast("GraphQLFormattedError", refused.error(self.context.current_locale()))
                await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[error]))
                return
        await super().handle_subscribe(message)

    async def send_message(self, message: Message) -> None:
        if not self._ended:  # after the close, not one more message
            await super().send_message(message)

    async def shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self._principal is not None:
            self.view.sessions.discard(self, self._principal)
        await super().shutdown()

    async def end(self, reason: str) -> None:
        """The credentials of this session no longer hold: stop its operations and close with 4403."""
        if self._ended:
            return
        self._ended = True
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        logger.info("live session ended", extra={"reason": reason})
        with contextlib.suppress(Exception):  # the client may have gone meanwhile
            await self.websocket.close(code=CREDENTIALS_ENDED, reason=f"Forbidden: {reason}"[:120])

    async def _watch_credentials(self, principal: Principal) -> None:
        settings, clock = self.view.settings, self.view.clock
        authorization = self.context.authorization
        try:
            expires = (
                _token_expiry(authorization, settings.jwt_secret, clock.now) if principal.is_user else None
            )
        except Unauthenticated as error:  # it expired since connection_init
            await self.end(error.message)
            return
        interval = max(settings.auth_cache_seconds, MIN_RECHECK_SECONDS)
        while True:
            # On ticks shared by every session, so that the sessions of one credential (a connector's many
            # subscribers) are verified by one query per tick (LiveSessions.verify).
            wait = interval - time.monotonic() % interval
            if expires is not None:
                wait = min(wait, (expires - clock.now()).total_seconds())
            await asyncio.sleep(max(wait, 0.0))
            if expires is not None and clock.now() >= expires:
                await self.end("token expired")
                return
            try:  # against the database, not the credential cache
                await self.view.sessions.verify(
                    authorization,
                    lambda: authenticate(
                        authorization,
                        jwt_secret=settings.jwt_secret,
                        now=clock.now(),
                        oidc=getattr(self.view.services, "oidc", None),
                    ),
                )
            except Unauthenticated as error:
                principals = getattr(self.view.services, "principals", None)
                if principals is not None:  # HTTP requests with it are refused from now on too
                    principals.drop(authorization)
                await self.end(error.message)
                return
            except Exception:  # the database is away: the session keeps its last verdict meanwhile
                logger.warning("could not verify a live session's credential", exc_info=True)


def _token_expiry(
    authorization: str | None, secret: str, now: Callable[[], dt.datetime]
) -> dt.datetime | None:
    token = bearer_token(authorization)
    if token is None or looks_like_api_key(token):
        return None
    return session_expiry(token, secret=secret, now=now())  # the identity provider's tokens too
