"""SIGKILL in the middle of a burst of checkouts and process starts, restart, and count (issue 6).

Clients retry what got no answer with the same idempotency key, as a real connector or SPA does. Then:
no order without its add-ons, no add-on without its order, the process counter equals the starts the clients
were told succeeded, and every e-mail is delivered exactly once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.resolvers.ids import key_of
from tests.live import LiveGateway, gateway_env, live_gateway
from tests.smtp import SmtpServer

START = """
mutation Start($key: String!) {
  startProcess(process: PRODUCT_SYNC, idempotencyKey: $key) {
    __typename ... on StartProcessSuccess { allowed ticket } ... on Error { code }
  }
}
"""
ADD = 'mutation Add { addToCart(addOnCode: "storage-500mb") { __typename } }'
CHECKOUT = """
mutation Checkout($key: String!) {
  checkout(idempotencyKey: $key) { __typename ... on CheckoutSuccess { order { id } } ... on Error { code } }
}
"""
QUOTA = "query Quota { quota(process: PRODUCT_SYNC) { processesUsed } }"
STARTS = 1_000
CHECKOUTS_PER_ADMIN = 25


@dataclass
class Outcomes:
    tickets: dict[str, str | None] = field(default_factory=dict)  # start key -> ticket (None: denied)
    lost_starts: list[str] = field(default_factory=list)
    orders: dict[str, str] = field(default_factory=dict)  # checkout key -> order id
    lost_checkouts: list[tuple[str, str]] = field(default_factory=list)  # (admin token, key)


async def post(http: httpx.AsyncClient, query: str, variables: dict[str, Any], credential: str) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {credential}"},
    )
    response.raise_for_status()
    return response.json()["data"]


async def start(http: httpx.AsyncClient, key: str, outcomes: Outcomes, connector: str) -> None:
    try:
        answer = (await post(http, START, {"key": key}, connector))["startProcess"]
    except httpx.TransportError:
        outcomes.lost_starts.append(key)
        return
    outcomes.tickets[key] = answer["ticket"] if answer.get("allowed") else None


async def buy_repeatedly(http: httpx.AsyncClient, token: str, tag: str, outcomes: Outcomes) -> None:
    for index in range(CHECKOUTS_PER_ADMIN):
        key = f"{tag}-{index}"
        try:
            await post(http, ADD, {}, token)
            answer = (await post(http, CHECKOUT, {"key": key}, token))["checkout"]
        except httpx.TransportError:
            outcomes.lost_checkouts.append((token, key))
            return
        assert answer["__typename"] == "CheckoutSuccess", answer
        outcomes.orders[key] = answer["order"]["id"]


async def burst_and_kill(gateway: LiveGateway, tokens: dict[str, str], connector: str) -> Outcomes:
    outcomes = Outcomes()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15, limits=limits) as http:
        starting = asyncio.Semaphore(24)  # leave connections to the checkouts

        async def one_start(index: int) -> None:
            async with starting:
                await start(http, f"start-{index}", outcomes, connector)

        async def kill_mid_burst() -> None:
            # Once both kinds of write are flowing, and well before they are done.
            while len(outcomes.orders) < 4 or len(outcomes.tickets) < 200:  # noqa: ASYNC110 (polls counters of many tasks)
                await asyncio.sleep(0.005)
            gateway.process.kill()

        await asyncio.gather(
            kill_mid_burst(),
            *(one_start(index) for index in range(STARTS)),
            *(buy_repeatedly(http, token, tag, outcomes) for tag, token in tokens.items()),
        )
    gateway.process.wait(timeout=10)
    return outcomes


async def retry_lost(gateway: LiveGateway, outcomes: Outcomes, connector: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as http:
        for key in outcomes.lost_starts:
            await start(http, key, outcomes, connector)
        for token, key in outcomes.lost_checkouts:
            answer = (await post(http, CHECKOUT, {"key": key}, token))["checkout"]
            if answer["__typename"] == "CheckoutSuccess":
                outcomes.orders[key] = answer["order"]["id"]
            else:  # the add-to-cart itself was lost: nothing to buy, nothing charged
                assert answer["code"] == "CART_EMPTY", answer


def rows(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


def wait_for_outbox(database: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while rows(database, "SELECT count(*) FROM outbox_email WHERE status = 'PENDING'")[0][0]:
        assert time.monotonic() < deadline, "the outbox was not drained"
        time.sleep(0.2)


async def test_a_killed_gateway_loses_nothing_and_doubles_nothing(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    database = tmp_path / "live.sqlite3"
    env = gateway_env(
        tmp_path,
        TOLLGATE_SMTP_URL=smtp_server.url,
        TOLLGATE_RATE_LIMIT_PER_SECOND="0",
        TOLLGATE_OUTBOX_LEASE_SECONDS="3",  # e-mails the killed sender held are taken over after 3 s
    )

    with live_gateway(env, tmp_path / "first.log") as first:
        connector = first.connector_key("acme")
        tokens = {"acme": first.token("admin@acme.test"), "nova": first.token("admin@nova.test")}
        seeded = {row[0] for row in rows(database, "SELECT id FROM add_on_subscription")}
        outcomes = await burst_and_kill(first, tokens, connector)
    assert first.process.returncode == -9
    assert outcomes.lost_starts or outcomes.lost_checkouts, (
        "the kill came after the burst: nothing was tested"
    )

    with live_gateway(env, tmp_path / "second.log") as second:
        await retry_lost(second, outcomes, connector)
        async with httpx.AsyncClient(base_url=second.url) as http:
            used = (await post(http, QUOTA, {}, connector))["quota"]["processesUsed"]
        wait_for_outbox(database)

    # Processes: the counter is exactly the starts the clients were told were allowed.
    allowed = {key: ticket for key, ticket in outcomes.tickets.items() if ticket}
    assert len(outcomes.tickets) == STARTS
    assert allowed
    assert outcomes.orders
    assert used == len(allowed)
    assert len(set(allowed.values())) == len(allowed)

    # Orders and add-ons: each order has its lines, each monthly line its subscription, and back.
    orders = {row[0] for row in rows(database, "SELECT id FROM store_order")}
    assert orders == {key_of(order_id, "Order", field="id") for order_id in outcomes.orders.values()}
    assert not rows(
        database,
        "SELECT o.id FROM store_order o LEFT JOIN store_order_line l ON l.order_id = o.id WHERE l.id IS NULL",
    )
    assert not rows(database, "SELECT id FROM store_order_line WHERE subscription_id IS NULL")
    bought = {row[0] for row in rows(database, "SELECT id FROM add_on_subscription")} - seeded
    linked = {row[0] for row in rows(database, "SELECT subscription_id FROM store_order_line")}
    assert bought == linked

    # E-mails: every queued message reached the SMTP server once.
    queued = rows(database, "SELECT id, status FROM outbox_email")
    assert queued
    assert {status for _, status in queued} == {"SENT"}
    message_ids = [message["Message-ID"] for message in smtp_server.inbox.messages]
    assert set(message_ids) == {f"<{row_id}@tollgate>" for row_id, _ in queued}
    # Once each, except that a message the SMTP server accepted in the very instant of the kill, before
    # it was marked sent, goes again (same Message-ID, so the receiving side folds it): at most one,
    # as the dispatcher sends one message at a time.
    assert len(message_ids) - len(set(message_ids)) <= 1
    print(
        f"\ncrash: {STARTS} starts ({len(outcomes.lost_starts)} lost in the kill, retried), "
        f"{len(orders)} orders ({len(outcomes.lost_checkouts)} checkouts lost, retried), "
        f"{len(queued)} e-mails delivered once"
    )
