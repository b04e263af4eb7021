"""The Prometheus scrape on /metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.clock import FrozenClock
from app.notifications.outbox import Email, enqueue
from app.seed import SeedResult
from tests.conftest import GraphQLClient


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_operations_latency_and_outbox_backlog_are_scraped(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    before = await scrape(gql.http)
    await gql.post("query MyPlanScreen { myPlan { __typename } }", as_="admin@acme.test")
    await gql.post("query MyPlanScreen { myPlan { __typename } }", as_="admin@acme.test")
    await gql.post("{ viewer { kind } }")  # anonymous operation, unauthenticated: an error
    await enqueue([Email(to="x@acme.test", subject="s", body="b")], now=clock.now())

    after = await scrape(gql.http)

    ok = {"operation": "MyPlanScreen", "type": "query", "outcome": "ok"}
    assert (
        value(after, "tollgate_graphql_operations_total", **ok)
        - value(before, "tollgate_graphql_operations_total", **ok)
        == 2
    )
    failed = {"operation": "anonymous", "type": "query", "outcome": "error"}
    assert value(after, "tollgate_graphql_operations_total", **failed) >= 1
    assert (
        value(after, "tollgate_graphql_operation_seconds_count", operation="MyPlanScreen", type="query") >= 2
    )
    assert value(after, "tollgate_outbox_backlog") == 1
    assert value(after, "tollgate_http_requests_total", path="/graphql", status="200") >= 3
