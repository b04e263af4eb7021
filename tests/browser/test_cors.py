"""The SPA on its own origin, in a real headless Chromium: a page served from another local port calls the
gateway with ``fetch`` and subscribes with the ``graphql-ws`` client; the browser enforces CORS and the
gateway checks WebSocket origins. Allowed when ``TOLLGATE_CORS_ALLOWED_ORIGINS`` lists the page's origin,
refused when it does not. Offline: the graphql-ws bundle is the one the gateway ships for GraphiQL."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.browser.test_graphiql import report_credits
from tests.live import LiveGateway, gateway_env, live_gateway
from tests.smtp import free_port

STATIC = Path(__file__).parents[2] / "app" / "static" / "graphiql"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>back office</title>
<script src="graphql-ws.min.js"></script></head>
<body><p>A back office on its own origin.</p></body></html>
"""
FETCH = """
async ({ url, token }) => {
  try {
    const response = await fetch(url + "/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: "query Viewer { viewer { role tenant { slug } } }" }),
    });
    return { body: await response.json(), requestId: response.headers.get("X-Request-ID") };
  } catch (error) {
    return { error: error.name, message: error.message };
  }
}
"""
SUBSCRIBE = """
({ url, token }) => new Promise((resolve) => {
  window.received = [];
  window.events = [];
  const client = graphqlWs.createClient({
    url: url.replace(/^http/, "ws") + "/graphql",
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
    on: {
      connected: () => { window.events.push("connected"); resolve(window.events); },
      closed: (event) => { window.events.push(`closed ${event.code}`); resolve(window.events); },
    },
  });
  client.subscribe(
    { query: "subscription LiveAlerts { limitAlerts { kind threshold state } }" },
    {
      next: (message) => window.received.push(message),
      error: (error) => window.events.push(`error ${error.type || error.code || error}`),
      complete: () => {},
    },
  );
})
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def page_server(root: Path) -> Iterator[str]:
    """Serves ``root`` on a free local port; yields its origin."""
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spa")
    (root / "index.html").write_text(PAGE)
    (root / "graphql-ws.min.js").write_bytes(gzip.decompress((STATIC / "graphql-ws.min.js.gz").read_bytes()))
    return root


@pytest.fixture(scope="module")
def listed(site: Path) -> Iterator[str]:
    yield from page_server(site)


@pytest.fixture(scope="module")
def unlisted(site: Path) -> Iterator[str]:
    yield from page_server(site)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, listed: str) -> Iterator[LiveGateway]:
    tmp_path = tmp_path_factory.mktemp("cors")
    env = gateway_env(tmp_path, TOLLGATE_CORS_ALLOWED_ORIGINS=listed, TOLLGATE_LOG_LEVEL="WARNING")
    with live_gateway(env, tmp_path / "gateway.log") as running:
        yield running


@pytest.fixture
def opened(browser: Browser) -> Iterator[Page]:
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()


def test_a_page_of_a_listed_origin_calls_the_api(opened: Page, gateway: LiveGateway, listed: str) -> None:
    opened.goto(f"{listed}/index.html")

    answer = opened.evaluate(FETCH, {"url": gateway.url, "token": gateway.token("admin@acme.test")})

    assert "error" not in answer, answer
    assert answer["body"]["data"]["viewer"] == {"role": "ADMIN", "tenant": {"slug": "acme"}}
    assert answer["requestId"]  # an exposed header: support needs it from the page too


def test_a_page_of_an_unlisted_origin_cannot_read_the_api(
    opened: Page, gateway: LiveGateway, unlisted: str
) -> None:
    opened.goto(f"{unlisted}/index.html")

    answer = opened.evaluate(FETCH, {"url": gateway.url, "token": gateway.token("admin@acme.test")})

    assert answer["error"] == "TypeError", answer  # the browser refuses: "Failed to fetch"


def test_a_page_of_a_listed_origin_receives_a_live_alert(
    opened: Page, gateway: LiveGateway, listed: str
) -> None:
    connector = {"Authorization": f"Bearer {gateway.connector_key('acme')}"}
    opened.goto(f"{listed}/index.html")
    with httpx.Client(base_url=gateway.url, headers=connector, timeout=10) as http:
        limit = report_credits(http, 0)  # below every threshold, before subscribing

        events = opened.evaluate(SUBSCRIBE, {"url": gateway.url, "token": gateway.token("admin@acme.test")})
        assert events == ["connected"]
        opened.wait_for_timeout(
            1_000
        )  # graphql-ws subscribes right after the ack: let the server register it
        report_credits(http, limit * 9 // 10)

    opened.wait_for_function("window.received.length > 0", timeout=20_000)
    received = opened.evaluate("window.received")
    assert received[0]["data"]["limitAlerts"]["kind"] == "CREDITS"
    assert received[0]["data"]["limitAlerts"]["state"] == "TRIGGERED"
    assert opened.evaluate("window.events") == ["connected"]


def test_a_page_of_an_unlisted_origin_cannot_subscribe(
    opened: Page, gateway: LiveGateway, unlisted: str
) -> None:
    opened.goto(f"{unlisted}/index.html")

    events = opened.evaluate(SUBSCRIBE, {"url": gateway.url, "token": gateway.token("admin@acme.test")})

    # The handshake was refused (403): the socket never opened, the browser reports 1006 (abnormal closure).
    assert "connected" not in events
    assert "closed 1006" in events, events
    assert opened.evaluate("window.received") == []
    assert "Rejected WebSocket connection from origin" in gateway.output
