"""Rate limiting per API key, per user and per anonymous client address (issues 6 and 11).

A token bucket per caller: ``rate`` requests per second on average, bursts up to ``burst``. Over it, the
answer is HTTP 429 with ``Retry-After`` (whole seconds, rounded up), so that one runaway connector cannot
starve the others. The caller is the *verified* key or user (the GraphQL view charges a request once its
credential was checked, through the credential cache), else the client's address; every operation sent
over a WebSocket is charged to the same bucket (app.edge.live_sessions). With Redis configured, the
buckets live there (one atomic Lua script per request, on Redis's clock), so every gateway instance
enforces the same budget; otherwise they live in the process.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any, Protocol

import orjson
from prometheus_client import Counter
from starlette.types import Scope, Send

from app.auth.principal import Principal
from app.i18n import Locale, _, negotiate
from app.observability import REGISTRY
from app.services.errors import ErrorCode

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


def client_address(scope: Scope, trusted_proxies: Sequence[IPv4Network | IPv6Network] = ()) -> str:
    """The caller's address: the socket's peer, or, when that peer is a trusted proxy, the right-most
    address of ``X-Forwarded-For`` that is not a trusted proxy (every proxy appends the address it saw;
    the left part of the header is whatever the client wrote, so it is never believed)."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    forwarded: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            forwarded += [part.strip() for part in value.decode("latin-1").split(",")]
    address = peer
    for hop in reversed(forwarded):
        if not hop:
            continue
        address = hop
        if not _is_trusted(hop, trusted_proxies):
            break
    return address[:64]


def _is_trusted(address: str, trusted_proxies: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:  # "unknown", a Unix socket, garbage in the header
        return False
    return any(parsed in network for network in trusted_proxies)


def caller_of(principal: Principal | None, address: str) -> str:
    """The bucket of a request: its verified API key or user, else (no or bad credential) its address.

    Only a verified credential names a bucket of its own: a forged key or token is charged to the address
    that sent it, so it can neither drain a real caller's budget nor escape its own by changing names.
    """
    if principal is not None:
        if principal.api_key is not None:
            return f"key:{principal.api_key.id}"
        if principal.user is not None:
            return f"user:{principal.user.id}"
    return f"ip:{address}"


class RateLimited(Exception):
    """Raised where a request is charged, answered 429 (HTTP) or with an ``error`` message (WebSocket)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limited")
        self.retry_after = max(1, math.ceil(retry_after))

    def error(self, locale: Locale | None = None) -> dict[str, Any]:
        """The GraphQL error of the answer, in ``locale``."""
        return {
            "message": _("Too many requests: retry in {seconds} s.", seconds=self.retry_after).render(locale),
            "extensions": {"code": ErrorCode.RATE_LIMITED, "retryAfter": self.retry_after},
        }

    async def send_http(self, send: Send, locale: Locale | None = None) -> None:
        body = orjson.dumps({"errors": [self.error(locale)]})
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(self.retry_after).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def locale_of_scope(scope: Scope) -> Locale | None:
    """The language an HTTP request asks for (``Accept-Language``): for answers given before GraphQL runs."""
    for name, value in scope.get("headers", ()):
        if name == b"accept-language":
            return negotiate(value.decode("latin-1"))
    return None


async def charge(limiter: RateLimiter | None, caller: str) -> None:
    """One request or WebSocket operation of ``caller``; ``RateLimited`` when over its budget."""
    if limiter is None:
        return
    decision = await limiter.hit(caller)
    if not decision.allowed:
        RATE_LIMITED.labels(caller=caller.split(":", 1)[0]).inc()
        raise RateLimited(decision.retry_after)


def rate_limiter_for(
    rate: float, burst: int, redis_url: str | None, *, namespace: str = "tollgate:ratelimit"
) -> tuple[RateLimiter | None, Any]:
    """The limiter the settings ask for (``None`` when ``rate`` is 0), and the Redis client to close.

    ``namespace`` prefixes the Redis keys: the gateways of one deployment share it (by default
    ``TOLLGATE_REDIS_CHANNEL_PREFIX`` + ``ratelimit``, i.e. ``tollgate:ratelimit``)."""
    if rate <= 0:
        return None, None
    if redis_url:
        import redis.asyncio as redis_asyncio

        client = redis_asyncio.from_url(redis_url)
        return RedisRateLimiter(client, rate, burst, namespace=namespace), client
    return InMemoryRateLimiter(rate, burst), None
