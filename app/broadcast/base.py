"""What a broadcaster offers: publish a text message to a channel, iterate a channel's messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Broadcaster(Protocol):
    async def publish(self, channel: str, message: str) -> None:
        """Deliver ``message`` to every current subscriber of ``channel`` (at most once each)."""

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Messages published to ``channel`` from the moment the context is entered."""

    def subscriber_count(self, channel: str) -> int:
        """Subscribers of ``channel`` connected to this instance."""

    async def aclose(self) -> None:
        """Release connections and background tasks (app shutdown)."""
