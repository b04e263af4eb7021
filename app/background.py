"""Periodic work started in the app's lifespan (the outbox dispatcher, the add-on lifecycle task)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def running_in_background(
    loop: Callable[[], Coroutine[Any, Any, None]], name: str
) -> AsyncIterator[None]:
    """Runs ``loop()`` as a task for the duration of the block, and cancels it on the way out."""
    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
