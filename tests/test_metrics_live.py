"""A Prometheus scrape of a running gateway after the connector's traffic and a live subscriber (issue 7)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.live import LiveGateway, gateway_env, live_gateway

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp_path = tmp_path_factory.mktemp("metrics")
    with live_gateway(gateway_env(tmp_path), tmp_path / "gateway.log") as running:
        yield running


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def graphql(http: httpx.Client, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
    response = http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {key}"}
    )
    body: dict[str, Any] = response.json()
    return body


REPORT = "mutation R($input: UsageReportInput!) { reportUsage(input: $input) { __typename } }"
QUOTA = "query Quota { quota(process: PRODUCT_SYNC) { allowed creditsLimit } }"
START = (
    "mutation Start($k: String!) { startProcess(process: STOCK_UPDATE, idempotencyKey: $k) { __typename } }"
)


def report(http: httpx.Client, key: str, variants: int) -> None:
    counts = {"variants": variants, "customers": 0, "contacts": 0, "salesReps": 0, "adminUsers": 0}
    usage = {**counts, "storageBytes": 0, "measuredAt": dt.datetime.now(dt.UTC).isoformat()}
    reported = graphql(http, REPORT, {"input": usage}, key)["data"]["reportUsage"]
    assert reported["__typename"] == "ReportUsageSuccess"


def test_connector_traffic_shows_in_the_metrics(gateway: LiveGateway) -> None:
    key = gateway.connector_key("acme")
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        before = scrape(http)
        limit = graphql(http, QUOTA, {}, key)["data"]["quota"]["creditsLimit"]
        graphql(http, START, {"k": "metrics-1"}, key)
        graphql(http, START, {"k": "metrics-2"}, key)
        report(http, key, limit + 1)  # over every credit threshold: 80, 90, 100
        denied = graphql(http, QUOTA, {}, key)["data"]["quota"]
        after = scrape(http)

    assert denied["allowed"] is False

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("tollgate_quota_decisions_total", decision="allowed", reason="OK") >= 1
    assert grew("tollgate_quota_decisions_total", decision="denied", reason="CREDITS_EXCEEDED") == 1
    assert grew("tollgate_processes_started_total", process="STOCK_UPDATE") == 2
    for threshold in ("80", "90", "100"):
        assert (
            grew("tollgate_alerts_raised_total", kind="CREDITS", threshold=threshold, state="TRIGGERED") == 1
        )
    assert grew("tollgate_graphql_operations_total", operation="Quota", type="query", outcome="ok") == 2
    assert value(after, "tollgate_outbox_backlog") >= 0
    assert ("tollgate_outbox_dead", ()) in after


async def test_open_websocket_connections_are_a_gauge(gateway: LiveGateway) -> None:
    token = gateway.token("admin@acme.test")
    url = gateway.url.replace("http://", "ws://") + "/graphql"
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        idle = value(scrape(http), "tollgate_websocket_connections")
        async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            await socket.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
            )
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            connected = value(scrape(http), "tollgate_websocket_connections")
        closed = idle
        for _ in range(50):  # the server notices the close asynchronously
            closed = value(scrape(http), "tollgate_websocket_connections")
            if closed == idle:
                break
            await asyncio.sleep(0.05)

    assert connected == idle + 1
    assert closed == idle
