"""Delivers webhook events (Standard Webhooks): claims due deliveries with a lease, signs and POSTs them with
httpx, records the outcome, retries with exponential backoff and full jitter for a day, then gives up (DEAD,
replayable from the operator API).

- **At least once**: a delivery row is written in the transaction of the change (``webhook_events.emit``),
  so a crash between commit and sending loses nothing: any instance sends it once it runs. A crash between
  sending and recording the answer sends it again; receivers de-duplicate by ``webhook-id``.
- **In order per environment and endpoint**: a delivery is picked only while no older delivery of the same
  lane (environment) to the same endpoint is still PENDING, in the same query that picks due rows
  (``_DUE``), so a failing event holds back the later ones until it succeeds or dies.
- **One sender at a time**: a row is claimed by a conditional UPDATE of its lease (``claimed_until``), as
  the e-mail dispatcher does; several instances deliver concurrently without sending a row twice at once.
- **What is retried**: timeouts, connection errors, 5xx, 3xx (redirects are not followed) and 429 (its
  ``Retry-After`` honoured); any other 4xx is a refusal of this message: DEAD at once, status recorded.
  Only the status code and the kind of failure are recorded, never the receiver's body: an endpoint URL
  must not become a way to read internal services.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from standardwebhooks.webhooks import Webhook
from tortoise.expressions import F, Q, RawSQL

from app.background import repeating
from app.clock import Clock, SystemClock
from app.models.webhooks import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from app.services import webhook_events
from app.services.secrets import SecretBox, SecretUndecryptable

if TYPE_CHECKING:  # imported where used: most gateways never send a webhook before their first answer
    import httpx

logger = logging.getLogger("tollgate.webhooks")

BASE_DELAY = dt.timedelta(seconds=5)
MAX_DELAY = dt.timedelta(hours=1)
MIN_DELAY = dt.timedelta(seconds=1)
MAX_ERROR = 500  # WebhookDelivery.last_error
USER_AGENT = "Tollgate-Webhooks/1"

# The ordering rule, evaluated per candidate row in the query that picks due rows: an older delivery of the
# same lane to the same endpoint still PENDING blocks it (index endpoint, lane, status, event).
_BLOCKED = RawSQL(
    'CASE WHEN EXISTS (SELECT 1 FROM "webhook_delivery" AS "older"'
    ' WHERE "older"."endpoint_id" = "webhook_delivery"."endpoint_id"'
    ' AND "older"."lane" = "webhook_delivery"."lane"'
    ' AND "older"."status" = \'PENDING\''
    ' AND "older"."event_id" < "webhook_delivery"."event_id") THEN 1 ELSE 0 END'
)


def backoff(attempts: int, *, rng: Callable[[], float] = random.random) -> dt.timedelta:
    """Full jitter: a random wait up to 5 s, 10 s, 20 s ... (doubling per failed attempt), capped at 1 h, so
    that many deliveries failing together do not come back together."""
    doublings = min(max(attempts - 1, 0), 20)  # 5 s x 2^20 is far past the cap already
    ceiling: dt.timedelta = min(BASE_DELAY * 2**doublings, MAX_DELAY)
    return ceiling * rng()


def retry_after(value: str | None, *, now: dt.datetime) -> dt.timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a wait, at most an hour; None when absent or
    unreadable."""
    if not value or len(value) > 64:  # no header, or garbage: the backoff applies
        return None
    value = value.strip()
    wait: dt.timedelta | None = None
    if value.isdigit():
        wait = dt.timedelta(seconds=min(int(value), int(MAX_DELAY.total_seconds())))
    else:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            wait = email.utils.parsedate_to_datetime(value) - now
    if wait is None:
        return None
    return max(dt.timedelta(0), min(wait, MAX_DELAY))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: delivered, or a failure that is or is not worth retrying."""

    delivered: bool
    retry: bool
    status_code: int | None
    error: str | None = None
    wait: dt.timedelta | None = None  # the receiver's Retry-After


def judge(response: httpx.Response, *, now: dt.datetime) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(delivered=True, retry=False, status_code=code)
    if code == 429:
        wait = retry_after(response.headers.get("retry-after"), now=now)
        return Outcome(delivered=False, retry=True, status_code=code, error="HTTP 429", wait=wait)
    return Outcome(delivered=False, retry=not 400 <= code < 500, status_code=code, error=f"HTTP {code}")


def signatures(secrets: list[str], *, message_id: str, timestamp: dt.datetime, body: str) -> str:
    """The ``webhook-signature`` header: ``v1,<signature>`` for each secret valid now, space-separated."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets)


def body_of(payload: object) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class WebhookDeliverer:
    """The delivery task. ``clock`` schedules (due times, the day of retries, secret expiry); the
    ``webhook-timestamp`` header is the real time of sending (``signing_clock``), as receivers check it
    against their own clock to refuse replays."""

    def __init__(
        self,
        box: SecretBox,
        *,
        clock: Clock,
        signing_clock: Clock | None = None,
        timeout: float = 10.0,
        batch_size: int = 50,
        concurrency: int = 10,
        poll_interval: float = 1.0,
        lease: dt.timedelta = dt.timedelta(minutes=2),
        rng: Callable[[], float] = random.random,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.box = box
        self.clock = clock
        self.signing_clock = signing_clock or SystemClock()
        self.timeout = timeout
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease = lease
        self.rng = rng
        self.transport = transport
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass now (after a commit that emitted events) instead of at the next poll."""
        self._wake.set()

    def _due(self, now: dt.datetime) -> Q:
        return (
            Q(status=WebhookDeliveryStatus.PENDING)
            & Q(next_attempt_at__lte=now)
            & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        )

    async def due(self) -> list[WebhookDelivery]:
        """The deliveries to attempt now: due, unclaimed, and first of their lane (one query)."""
        now = self.clock.now()
        return (
            await WebhookDelivery.filter(self._due(now))
            .annotate(blocked=_BLOCKED)
            .filter(blocked=0)
            .order_by("event_id")
            .limit(self.batch_size)
            .select_related("event", "endpoint")
        )

    async def run_once(self) -> int:
        """Attempt every due delivery, lane by lane in order, until none is due; the number delivered."""
        candidates = await self.due()
        if not candidates:
            return 0  # an idle poll opens no HTTP client (nor imports httpx: the gateway's cold start)
        import httpx

        delivered = 0
        async with httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=False, transport=self.transport
        ) as http:
            limit = asyncio.Semaphore(self.concurrency)  # receivers answering slowly hold one slot each
            while candidates:
                results = await asyncio.gather(*(self._attempt(http, limit, row) for row in candidates))
                delivered += sum(1 for _, ok in results if ok)
                if not any(claimed for claimed, _ in results):
                    return delivered  # others hold them: their lease says when to look again
                candidates = await self.due()
        return delivered

    async def _attempt(
        self, http: httpx.AsyncClient, limit: asyncio.Semaphore, row: WebhookDelivery
    ) -> tuple[bool, bool]:
        async with limit:
            return await self._claim_and_send(http, row)

    async def _claim_and_send(self, http: httpx.AsyncClient, row: WebhookDelivery) -> tuple[bool, bool]:
        now = self.clock.now()
        claimed = await WebhookDelivery.filter(self._due(now), id=row.id).update(
            claimed_until=now + self.lease
        )
        if not claimed:
            return False, False
        outcome = await self._send(http, row)
        await self._record(row, outcome)
        return True, outcome.delivered

    async def _send(self, http: httpx.AsyncClient, row: WebhookDelivery) -> Outcome:
        endpoint, event = row.endpoint, row.event
        body = body_of(event.payload)
        signed_at = self.signing_clock.now()
        try:
            secrets = self.secrets_of(endpoint)
        except SecretUndecryptable:  # an encryption key dropped too early: retried once it is back
            return Outcome(delivered=False, retry=True, status_code=None, error="secret undecryptable")
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.message_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signatures(
                secrets, message_id=event.message_id, timestamp=signed_at, body=body
            ),
        }
        import httpx

        try:
            response = await http.post(endpoint.url, content=body.encode(), headers=headers)
        except httpx.TimeoutException:
            return Outcome(delivered=False, retry=True, status_code=None, error="timed out")
        except httpx.HTTPError as error:
            return Outcome(delivered=False, retry=True, status_code=None, error=type(error).__name__)
        return judge(response, now=self.clock.now())

    def secrets_of(self, endpoint: WebhookEndpoint) -> list[str]:
        """The current secret, and the previous one while its rotation overlap lasts."""
        secrets = [self.box.decrypt(endpoint.secret_encrypted)]
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret_encrypted and expires is not None and expires > self.clock.now():
            secrets.append(self.box.decrypt(endpoint.previous_secret_encrypted))
        return secrets

    async def _record(self, row: WebhookDelivery, outcome: Outcome) -> None:
        now = self.clock.now()
        attempts = row.attempts + 1
        common = {"attempts": F("attempts") + 1, "claimed_until": None, "last_attempt_at": now}
        mine = WebhookDelivery.filter(id=row.id, status=WebhookDeliveryStatus.PENDING)
        if outcome.delivered:
            await mine.update(
                **common,
                status=WebhookDeliveryStatus.SUCCEEDED,
                delivered_at=now,
                last_status_code=outcome.status_code,
                last_error=None,
            )
            return
        deadline = row.give_up_at
        give_up = not outcome.retry or now >= deadline
        wait = outcome.wait if outcome.wait is not None else backoff(attempts, rng=self.rng)
        wait = max(wait, MIN_DELAY)  # never due again within the same pass
        await mine.update(
            **common,
            status=WebhookDeliveryStatus.DEAD if give_up else WebhookDeliveryStatus.PENDING,
            next_attempt_at=min(now + wait, deadline) if not give_up else now,
            last_status_code=outcome.status_code,
            last_error=(outcome.error or "failed")[:MAX_ERROR],
        )
        logger.warning(
            "webhook delivery failed",
            extra={
                "delivery_id": row.id,
                "attempts": attempts,
                "dead": give_up,
                "status": outcome.status_code,
            },
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookDeliverer]:
        remove = webhook_events.add_listener(self.wake)
        try:
            async with repeating(
                self.run_once,
                every=self.poll_interval,
                name="webhook-deliverer",
                logger=logger,
                wake=self._wake,
            ):
                yield self
        finally:
            remove()
