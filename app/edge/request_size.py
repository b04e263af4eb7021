"""A cap on what one request or one WebSocket message may weigh (``TOLLGATE_MAX_BODY_BYTES``, issue 11).

An HTTP body over the cap is answered 413 before anything parses it: at once when its ``Content-Length``
says so, else as soon as the bytes streamed so far (a chunked body) pass it. A WebSocket message over the
cap closes the connection with 1009 ("message too big", RFC 6455): the protocol's own answer to it, and
what a client library reports as such.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.edge.rate_limit import locale_of_scope
from app.i18n import Locale, _
from app.services.errors import ErrorCode

WEBSOCKET_MESSAGE_TOO_BIG = 1009


class _BodyTooLarge(Exception):
    pass


class RequestSizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # the server refuses a malformed length itself
                if declared > self.max_bytes:
                    await self._refuse(send, locale_of_scope(scope))
                    return
                break
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:  # the app answered before reading all of it: nothing more to say
                return
            await self._refuse(send, locale_of_scope(scope))

    async def _refuse(self, send: Send, locale: Locale | None) -> None:
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": _(
                            "The request body is larger than {maximum} bytes.", maximum=self.max_bytes
                        ).render(locale),
                        "extensions": {"code": ErrorCode.PAYLOAD_TOO_LARGE, "maxBytes": self.max_bytes},
                    }
                ]
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        closed = False

        async def capped_receive() -> Message:
            nonlocal closed
            if closed:
                return {"type": "websocket.disconnect", "code": WEBSOCKET_MESSAGE_TOO_BIG}
            message = await receive()
            if message["type"] == "websocket.receive" and self._too_big(message):
                closed = True
                await send(
                    {
                        "type": "websocket.close",
                        "code": WEBSOCKET_MESSAGE_TOO_BIG,
                        "reason": f"message larger than {self.max_bytes} bytes",
                    }
                )
                # The app sees the connection end; whatever it still sends is dropped.
                return {"type": "websocket.disconnect", "code": WEBSOCKET_MESSAGE_TOO_BIG}
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:
                await send(message)

        await self.app(scope, capped_receive, guarded_send)

    def _too_big(self, message: Message) -> bool:
        data = message.get("bytes")
        if data is not None:
            return len(data) > self.max_bytes
        text = message.get("text") or ""
        # A character is 1 to 4 bytes in UTF-8: encode only when the length alone cannot tell.
        if len(text) > self.max_bytes:
            return True
        return len(text) * 4 > self.max_bytes and len(text.encode()) > self.max_bytes
