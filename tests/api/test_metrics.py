"""The Prometheus scrape on /metrics."""

from __future__ import annotations

import httpx
import pytest
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from tortoise.context import TortoiseContext

from app.clock import FrozenClock
from app.main import create_app
from app.notifications.outbox import Email, enqueue
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import GraphQLClient, client_for


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


async def test_requests_are_counted_by_route_never_by_raw_path(gql: GraphQLClient, demo: SeedResult) -> None:
    # An attacker probing random URLs, or anyone asking for many invoices, must not grow the metrics (and the
    # process's memory) by one time series per path.
    for n in range(50):
        await gql.http.get(f"/probe-{n}/../etc/passwd")
        await gql.http.get(f"/invoices/TG-2026-{n:06d}.pdf")

    samples = await scrape(gql.http)
    paths = {dict(labels)["path"] for name, labels in samples if name == "tollgate_http_requests_total"}

    routes = {"/graphql", "/operator/graphql", "/healthz", "/readyz", "/metrics", "/graphiql"}
    templates = {"/invoices/{number}.pdf", "/graphiql/assets/{name}", "other"}
    assert paths <= routes | templates, paths  # the registry is the process's: other tests' routes too
    assert value(samples, "tollgate_http_requests_total", path="other", status="404") >= 50
    assert value(samples, "tollgate_http_requests_total", path="/invoices/{number}.pdf", status="401") >= 50


async def test_metrics_need_the_bearer_token_when_one_is_set(
    settings: Settings, clock: FrozenClock, db: TortoiseContext
) -> None:
    token = "scraper-" + "t" * 32
    async with client_for(settings, clock, metrics_token=token) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        scraper = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})

    assert anonymous.status_code == wrong.status_code == 401
    assert "tollgate_" not in anonymous.text + wrong.text
    assert scraper.status_code == 200
    assert "tollgate_http_requests_total" in scraper.text


def test_production_refuses_to_start_without_a_metrics_token(settings: Settings, clock: FrozenClock) -> None:
    production = settings.model_copy(
        update={"env": "production", "jwt_secret": "p" * 40, "encryption_key": Fernet.generate_key().decode()}
    )

    with pytest.raises(RuntimeError, match="TOLLGATE_METRICS_TOKEN"):
        create_app(production, clock=clock, manage_orm=False, run_background_tasks=False)
    assert create_app(
        production.model_copy(update={"metrics_token": "m" * 32}),
        clock=clock,
        manage_orm=False,
        run_background_tasks=False,
    )
