"""Periodic work started in the app's lifespan (the outbox dispatcher, the add-on lifecycle task)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
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


@contextlib.asynccontextmanager
async def repeating(
    step: Callable[[], Awaitable[object]],
    *,
    every: float,
    name: str,
    logger: logging.Logger,
    wake: asyncio.Event | None = None,
) -> AsyncIterator[None]:
    """Runs ``step()`` at once, then every ``every`` seconds (sooner when ``wake`` is set), for the duration
    of the block. A failed pass is logged and retried at the next tick (the database may be briefly away)."""

    async def loop() -> None:
        while True:
            try:
                await step()
            except Exception:
                logger.exception("%s pass failed", name)
            if wake is None:
                await asyncio.sleep(every)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=every)
            wake.clear()

    async with running_in_background(loop, name):
        yield
