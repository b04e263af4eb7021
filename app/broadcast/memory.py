"""The in-process broadcaster: one asyncio queue per subscriber, for a single gateway process."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

logger = logging.getLogger("tollgate.broadcast")


class InProcessBroadcaster:
    def __init__(self, *, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._queues: defaultdict[str, set[asyncio.Queue[str]]] = defaultdict(set)

    async def publish(self, channel: str, message: str) -> None:
        self.deliver(channel, message)

    def deliver(self, channel: str, message: str) -> None:
        """Hand ``message`` to the local subscribers of ``channel`` without waiting."""
        for queue in list(self._queues.get(channel, ())):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # A subscriber this far behind is stuck; dropping its message keeps the others live.
                logger.warning("subscriber queue full, message dropped", extra={"channel": channel})

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=self.queue_size)
        self._queues[channel].add(queue)
        try:
            yield _drain(queue)
        finally:
            subscribers = self._queues.get(channel)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._queues[channel]

    def subscriber_count(self, channel: str) -> int:
        return len(self._queues.get(channel, ()))

    def channels(self) -> list[str]:
        return list(self._queues)

    async def aclose(self) -> None:
        self._queues.clear()


async def _drain(queue: asyncio.Queue[str]) -> AsyncIterator[str]:
    while True:
        yield await queue.get()
