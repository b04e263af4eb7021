"""The hot path's caches: ttl, reload ahead in the background, invalidation races (app.caching)."""

from __future__ import annotations

import asyncio

import pytest

from app.caching import RefreshingCache


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """What the cache loads: a value that changes, and a count of the loads."""

    def __init__(self) -> None:
        self.value = "v1"
        self.loads = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def load(self) -> str:
        self.loads += 1
        value = self.value
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("database away")
        return value


@pytest.fixture
def clock() -> Monotonic:
    return Monotonic()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_entry_is_served_until_its_second_half_then_reloaded_in_the_background(
    clock: Monotonic,
) -> None:
    cache: RefreshingCache[str, str] = RefreshingCache(10, monotonic=clock)
    source = Source()
    assert await cache.get("k", source.load) == "v1"
    source.value = "v2"

    clock.now += 4.9  # first half: the entry, no load
    assert await cache.get("k", source.load) == "v1"
    assert source.loads == 1

    clock.now += 4.6  # past 90% of the ttl (9.5 s): the entry at once, and one reload behind it
    assert await cache.get("k", source.load) == "v1"
    assert await cache.get("k", source.load) == "v1"  # the reload is under way: not a second one
    await settle()
    assert source.loads == 2
    assert await cache.get("k", source.load) == "v2"


async def test_past_its_ttl_an_entry_is_reloaded_before_answering(clock: Monotonic) -> None:
    cache: RefreshingCache[str, str] = RefreshingCache(10, monotonic=clock)
    source = Source()
    await cache.get("k", source.load)
    source.value = "v2"
    clock.now += 10.0

    assert await cache.get("k", source.load) == "v2"


async def test_an_entry_the_cache_may_not_use_is_reloaded(clock: Monotonic) -> None:
    cache: RefreshingCache[str, str] = RefreshingCache(10, monotonic=clock)
    source = Source()
    await cache.get("k", source.load)
    source.value = "v2"

    assert await cache.get("k", source.load, usable=lambda value: value != "v1") == "v2"


async def test_a_failed_background_reload_drops_the_entry(clock: Monotonic) -> None:
    cache: RefreshingCache[str, str] = RefreshingCache(10, monotonic=clock)
    source = Source()
    await cache.get("k", source.load)
    source.fail = True
    clock.now += 9.5

    assert await cache.get("k", source.load) == "v1"
    await settle()
    with pytest.raises(RuntimeError):
        await cache.get("k", source.load)  # the next read meets the failure itself


async def test_a_load_that_overlapped_an_invalidation_is_not_kept(clock: Monotonic) -> None:
    cache: RefreshingCache[str, str] = RefreshingCache(10, monotonic=clock)
    source = Source()
    source.gate = asyncio.Event()
    loading = asyncio.ensure_future(cache.get("k", source.load))
    await settle()  # the load read "v1"...
    source.value = "v2"
    cache.invalidate("k")  # ...before a commit changed it
    source.gate.set()
    assert await loading == "v1"  # that reader gets what it read

    source.gate = None
    assert await cache.get("k", source.load) == "v2"  # but it was not kept
    assert source.loads == 2


async def test_without_a_ttl_nothing_is_kept(clock: Monotonic) -> None:
    cache: RefreshingCache[str, str] = RefreshingCache(0, monotonic=clock)
    source = Source()
    await cache.get("k", source.load)
    await cache.get("k", source.load)

    assert source.loads == 2
    assert list(cache) == []


async def test_the_cache_is_bounded(clock: Monotonic) -> None:
    cache: RefreshingCache[int, str] = RefreshingCache(10, max_entries=3, monotonic=clock)
    source = Source()
    for key in range(10):
        await cache.get(key, source.load)

    assert len(list(cache)) <= 3
