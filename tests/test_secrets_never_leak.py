"""An integration secret never leaves the gateway, nor rests in plaintext (issue 6).

A marker string is used as the secret and pushed through every path that could echo it (success, each
kind of invalid settings, reads, e-mails, alerts), against a live gateway. Then the marker is searched for
in every response, the server's whole log, every e-mail the SMTP server received, and every table of the
database file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.live import gateway_env, live_gateway
from tests.smtp import SmtpServer

MARKER = "tollgate-secret-marker-7Q2xV9"

CONFIGURE = """
mutation Configure($id: ID!, $settings: JSON!) {
  configureIntegration(activeAddOnId: $id, settings: $settings) {
    __typename
    ... on ConfigureIntegrationSuccess {
      activeAddOn { configurationStatus configuration { name isSet value } }
    }
    ... on InvalidSettingsError { code message field problems { field code message } }
    ... on Error { code message field }
  }
}
"""
MY_PLAN = """
query MyPlan {
  myPlan {
    ... on MyPlan { activeAddOns { id addOn { code } configurationStatus configuration { name value } } }
  }
}
"""


async def test_the_secret_marker_appears_nowhere(tmp_path: Path, smtp_server: SmtpServer) -> None:
    env = gateway_env(tmp_path, TOLLGATE_SMTP_URL=smtp_server.url, TOLLGATE_RATE_LIMIT_PER_SECOND="0")
    answers: list[str] = []
    with live_gateway(env, tmp_path / "gateway.log") as gateway:
        headers = {"Authorization": f"Bearer {gateway.token('admin@nova.test')}"}
        async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=10) as http:

            async def call(query: str, variables: dict[str, Any]) -> dict[str, Any]:
                response = await http.post("/graphql", json={"query": query, "variables": variables})
                answers.append(response.text)
                body: dict[str, Any] = response.json()
                return body

            plan = (await call(MY_PLAN, {}))["data"]["myPlan"]["activeAddOns"]
            integration = next(a for a in plan if a["addOn"]["code"] == "integration-mercado-livre")
            target = integration["id"]

            # Every way to get it wrong, each carrying the secret.
            attempts = [
                {"api_token": MARKER, "shop_url": "not a url"},
                {"api_token": MARKER},
                {"api_token": MARKER, "shop_url": "https://shop.example", "unknown": MARKER},
                {"api_token": [MARKER], "shop_url": "https://shop.example"},
                {"api_token": MARKER * 500, "shop_url": "https://shop.example"},
            ]
            for settings in attempts:
                refused = (await call(CONFIGURE, {"id": target, "settings": settings}))["data"]
                assert refused["configureIntegration"]["__typename"] == "InvalidSettingsError", refused

            configured = await call(
                CONFIGURE,
                {"id": target, "settings": {"api_token": MARKER, "shop_url": "https://shop.example"}},
            )
            addon = configured["data"]["configureIntegration"]["activeAddOn"]
            assert addon["configurationStatus"] == "CONFIGURED"
            assert {s["name"]: s["isSet"] for s in addon["configuration"]} == {
                "api_token": True,
                "shop_url": True,
            }
            assert (await call(MY_PLAN, {}))["data"]["myPlan"]["activeAddOns"]

    for text in answers:
        assert MARKER not in text
    assert MARKER not in gateway.output
    for message in smtp_server.inbox.messages:
        assert MARKER not in message.as_string()
    with sqlite3.connect(tmp_path / "live.sqlite3") as database:
        dump = "\n".join(database.iterdump())
    assert MARKER not in dump
    assert "fernet" in dump  # the secret is there, encrypted
