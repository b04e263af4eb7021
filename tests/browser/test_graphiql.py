"""GraphiQL as a partner sees it: a real Chromium loads the page from a running gateway, offline."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser

from tests.live import LiveGateway, gateway_env, live_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    tmp_path = tmp_path_factory.mktemp("graphiql")
    # The page's engine does not matter here: always a fresh SQLite file.
    with live_gateway(gateway_env(tmp_path), tmp_path / "gateway.log") as running:
        yield running


def run_in_graphiql(
    browser: Browser, gateway: LiveGateway, query: str, headers: dict[str, str] | None = None
) -> str:
    """Opens GraphiQL with ``query``, presses the run button and returns the result pane's text."""
    params = {"query": query, **({"headers": json.dumps(headers)} if headers else {})}
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(f"{gateway.url}/graphiql?{urlencode(params)}")
        page.locator(".graphiql-execute-button").click(timeout=20_000)
        result = page.locator(".result-window")
        result.locator("text=data").first.wait_for(timeout=20_000)
        text: str = result.inner_text()
    finally:
        page.close()
    # Everything the page needed came from the gateway itself: it works without internet access.
    assert requested
    assert all(url.startswith(gateway.url) for url in requested), requested
    return text


def test_graphiql_runs_a_public_catalog_query(browser: Browser, gateway: LiveGateway) -> None:
    text = run_in_graphiql(browser, gateway, "{ plans { code price { amount currency } } }")

    assert "storefront-m" in text
    assert '"currency": "EUR"' in text


def test_graphiql_sends_the_token_from_the_headers_pane(browser: Browser, gateway: LiveGateway) -> None:
    token = gateway.token("admin@acme.test")

    text = run_in_graphiql(
        browser, gateway, "{ viewer { role tenant { slug } } }", {"Authorization": f"Bearer {token}"}
    )

    assert '"slug": "acme"' in text
    assert '"role": "ADMIN"' in text


def test_graphiql_shows_a_refused_field_as_null_beside_the_public_ones(
    browser: Browser, gateway: LiveGateway
) -> None:
    text = run_in_graphiql(browser, gateway, '{ addOn(code: "start-pack") { code } viewer { id kind } }')

    assert '"code": "start-pack"' in text
    assert '"viewer": null' in text
    assert "UNAUTHENTICATED" in text


def test_graphiql_opens_with_example_operations_and_a_header_hint(
    browser: Browser, gateway: LiveGateway
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{gateway.url}/graphiql")
        page.locator(".graphiql-execute-button").wait_for(timeout=20_000)
        editor = page.locator(".graphiql-query-editor").inner_text()
        headers = page.locator(".graphiql-editor-tool").inner_text()
    finally:
        page.close()
    assert "query Catalog" in editor
    assert "query MyPlan" in editor
    assert "... on Error" in editor
    assert "Authorization" in headers
    assert "Bearer" in headers


def test_graphiql_shows_a_live_alert(browser: Browser, gateway: LiveGateway) -> None:
    token = gateway.token("admin@acme.test")
    connector = {"Authorization": f"Bearer {gateway.connector_key('acme')}"}
    subscription = "subscription LiveAlerts { limitAlerts { kind threshold state used limit } }"
    params = {"query": subscription, "headers": json.dumps({"Authorization": f"Bearer {token}"})}
    page = browser.new_page()
    try:
        with httpx.Client(base_url=gateway.url, headers=connector, timeout=10) as http:
            limit = report_credits(http, 0)  # below every threshold, before subscribing
            page.goto(f"{gateway.url}/graphiql?{urlencode(params)}")
            page.locator(".graphiql-execute-button").click(timeout=20_000)
            page.wait_for_timeout(1_000)  # the subscription is registered over graphql-transport-ws
            report_credits(http, limit * 9 // 10)
        result = page.locator(".result-window")
        result.locator("text=TRIGGERED").first.wait_for(timeout=20_000)
        text = result.inner_text()
    finally:
        page.close()

    assert '"kind": "CREDITS"' in text
    assert '"state": "TRIGGERED"' in text


def report_credits(http: httpx.Client, credits: int) -> int:
    """Reports ``credits`` used as the connector; returns the credit limit."""
    counts = {"variants": credits, "customers": 0, "contacts": 0, "salesReps": 0, "adminUsers": 0}
    report = {**counts, "storageBytes": 0, "measuredAt": dt.datetime.now(dt.UTC).isoformat()}
    variables = {"input": report, "key": str(uuid.uuid4())}
    answer = http.post("/graphql", json={"query": REPORT, "variables": variables}).json()
    assert answer["data"]["reportUsage"]["__typename"] == "ReportUsageSuccess", answer
    quota = http.post("/graphql", json={"query": "{ quota(process: PRODUCT_SYNC) { creditsLimit } }"}).json()
    limit: int = quota["data"]["quota"]["creditsLimit"]
    return limit


REPORT = """
mutation Report($input: UsageReportInput!, $key: String!) {
  reportUsage(input: $input, idempotencyKey: $key) { __typename }
}
"""
