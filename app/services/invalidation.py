"""Per-app caches kept right across instances (issue 5).

A change to what a cache holds for a key (a tenant's plan or figures, a revoked API key's prefix) drops the
entry in its own instance, then announces the key on the cache's broadcaster channel; every instance (this
one included) drops its entry on hearing it. A broadcast that is lost (Redis away) leaves the other
instances' entries to expire by themselves: each cache says why that is safe for what it holds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from app.background import running_in_background
from app.broadcast import Broadcaster

logger = logging.getLogger("tollgate.invalidation")


async def announce(channel: str, key: object, broadcaster: Broadcaster | None) -> None:
    """After the commit: tell every instance that the entries of ``key`` on ``channel`` are stale."""
    if broadcaster is None:
        return
    try:
        await broadcaster.publish(channel, str(key))
    except Exception:  # the others' entries expire by themselves
        logger.warning("could not announce a change on %s", channel, exc_info=True)


@contextlib.asynccontextmanager
async def following(
    channel: str, drop: Callable[[str], None], broadcaster: Broadcaster
) -> AsyncIterator[None]:
    """In the app's lifespan: ``drop`` the entries of each key announced on ``channel``.

    The subscription is made before the app serves (never torn down half-made by a quick shutdown);
    if it cannot be made, entries still expire by themselves.
    """
    async with contextlib.AsyncExitStack() as stack:
        try:
            messages = await stack.enter_async_context(broadcaster.subscribe(channel))
        except Exception:
            logger.warning(
                "not following other instances' changes", exc_info=True, extra={"channel": channel}
            )
            messages = None

        async def listen() -> None:
            assert messages is not None
            async for key in messages:
                drop(key)

        if messages is not None:
            await stack.enter_async_context(running_in_background(listen, f"{channel}-invalidation"))
        yield
