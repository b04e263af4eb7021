"""Redis pub/sub: each gateway instance listens once (a pattern subscription) and fans out locally.

Publishing goes to Redis only, and the instance receives its own messages back like any other,
so every subscriber of every instance sees each message once. The listener starts with the first
local subscriber and is confirmed by Redis before ``subscribe`` returns: a message published after
that (``subscriber_count`` counts it) reaches the subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis

from app.broadcast.memory import InProcessBroadcaster

logger = logging.getLogger("tollgate.broadcast")


class RedisBroadcaster:
    def __init__(self, url: str, *, prefix: str = "tollgate:", ready_timeout: float = 10.0) -> None:
        self.url = url
        self.prefix = prefix
        self.ready_timeout = ready_timeout
        self._local = InProcessBroadcaster()
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._start_lock = asyncio.Lock()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.from_url(self.url)
        return self._client

    async def publish(self, channel: str, message: str) -> None:
        # Through the client's connection pool (closed by ``aclose`` in the app's lifespan): a fresh
        # connection per message cost a TCP handshake on the path of every alert and plan change.
        await self._redis().publish(self.prefix + channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        # Listening first: once counted as a subscriber, nothing published is missed.
        await self._ensure_listening()
        async with self._local.subscribe(channel) as messages:
            yield messages

    def subscriber_count(self, channel: str) -> int:
        return self._local.subscriber_count(channel)

    async def _ensure_listening(self) -> None:
        async with self._start_lock:
            if self._listener is None or self._listener.done():
                self._listening.clear()
                self._pubsub = self._redis().pubsub()
                await self._pubsub.psubscribe(self.prefix + "*")
                self._listener = asyncio.create_task(self._listen(), name="redis-broadcast-listener")
        await asyncio.wait_for(self._listening.wait(), timeout=self.ready_timeout)

    async def _listen(self) -> None:
        pubsub = self._pubsub
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis briefly away: redis-py reconnects and re-subscribes on the next read
                logger.warning("redis listener read failed", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            if message["type"] == "psubscribe":
                self._listening.set()
            elif message["type"] == "pmessage":
                channel = _text(message["channel"])[len(self.prefix) :]
                self._local.deliver(channel, _text(message["data"]))

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self._local.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
