"""Rate limiting per API key, per user and per anonymous client address (issue 6).

A token bucket per caller: ``rate`` requests per second on average, bursts up to ``burst``. Over it, the
answer is HTTP 429 with ``Retry-After`` (whole seconds, rounded up), so that one runaway connector cannot
starve the others. With Redis configured, the buckets live there (one atomic Lua script per request, on
Redis's clock), so every gateway instance enforces the same budget; otherwise they live in the process.
"""

from __future__ import annotations

import base64
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.api_keys import looks_like_api_key
from app.observability import REGISTRY

RATE_LIMITED = Counter(
    "tollgate_rate_limited_total", "Requests refused with 429, by caller kind.", ["caller"], registry=REGISTRY
)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0


class RateLimiter(Protocol):
    async def hit(self, caller: str) -> Decision: ...


class InMemoryRateLimiter:
    """Buckets in this process, the least recently used dropped beyond ``max_callers``."""

    def __init__(self, rate: float, burst: int, *, max_callers: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def hit(self, caller: str) -> Decision:
        now = time.monotonic()
        tokens, at = self._buckets.pop(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        decision = Decision(allowed=True) if tokens >= 1 else Decision(False, (1 - tokens) / self.rate)
        self._buckets[caller] = (tokens - 1 if decision.allowed else tokens, now)
        if len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return decision


# KEYS[1] the bucket; ARGV rate, burst. Redis's own clock, so instances need not agree on time.
TOKEN_BUCKET = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RedisRateLimiter:
    """Buckets shared by every gateway instance."""

    def __init__(self, redis: Any, rate: float, burst: int, *, namespace: str = "tollgate:ratelimit") -> None:
        self.redis = redis
        self.rate = rate
        self.burst = burst
        self.namespace = namespace
        self._script = redis.register_script(TOKEN_BUCKET)

    async def hit(self, caller: str) -> Decision:
        allowed, wait = await self._script(keys=[f"{self.namespace}:{caller}"], args=[self.rate, self.burst])
        return Decision(allowed=bool(int(allowed)), retry_after=float(wait))


def caller_of(scope: Scope) -> str:
    """Who is asking, cheaply and before authentication: the key's prefix, the token's user, or the address.

    A forged token buys nothing: it is limited under the name it claims, then refused by authentication.
    """
    authorization = ""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential:
        if looks_like_api_key(credential):
            return "key:" + credential.split("_")[1]
        subject = _unverified_subject(credential)
        if subject:
            return "user:" + subject
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def _unverified_subject(token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject[:64] if isinstance(subject, str) else None


class RateLimitMiddleware:
    """Applies ``limiter`` to HTTP requests on ``paths``; health and metrics stay reachable."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, paths: frozenset[str] = frozenset({"/graphql"})
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        caller = caller_of(scope)
        decision = await self.limiter.hit(caller)
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        RATE_LIMITED.labels(caller=caller.split(":", 1)[0]).inc()
        retry_after = max(1, math.ceil(decision.retry_after))
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": f"Too many requests: retry in {retry_after} s.",
                        "extensions": {"code": "RATE_LIMITED", "retryAfter": retry_after},
                    }
                ]
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(retry_after).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def rate_limiter_for(rate: float, burst: int, redis_url: str | None) -> tuple[RateLimiter | None, Any]:
    """The limiter the settings ask for (``None`` when ``rate`` is 0), and the Redis client to close."""
    if rate <= 0:
        return None, None
    if redis_url:
        import redis.asyncio as redis_asyncio

        client = redis_asyncio.from_url(redis_url)
        return RedisRateLimiter(client, rate, burst), client
    return InMemoryRateLimiter(rate, burst), None
