"""Live events to subscribers (docs/design.md, "broadcast (alerts)").

Without ``TOLLGATE_REDIS_URL`` one process serves everything: an in-process broadcaster. With it,
every gateway instance publishes to and listens on Redis pub/sub, so a subscriber connected to one
instance receives what another one published.
"""

from __future__ import annotations

from app.broadcast.base import Broadcaster
from app.broadcast.memory import InProcessBroadcaster
from app.settings import Settings

__all__ = ["Broadcaster", "InProcessBroadcaster", "broadcaster_from_settings"]


def broadcaster_from_settings(settings: Settings) -> Broadcaster:
    if settings.redis_url:
        from app.broadcast.redis import RedisBroadcaster  # redis is imported only when used (cold start)

        return RedisBroadcaster(settings.redis_url, prefix=settings.redis_channel_prefix)
    return InProcessBroadcaster()
