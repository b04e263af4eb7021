"""Whatever a careless or hostile caller sends, the answer is a clear 4xx or a typed error (issue 11).

Bodies have a size cap checked before parsing; a body of the wrong JSON shape, or a subscription sent over
HTTP, is a request error, never a 500; production hides "Did you mean" from variable errors too; and a
rejected document is logged by its name and hash, never with its literal values.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from app.clock import FrozenClock
from app.seed import SeedResult
from app.settings import Settings
from tests.conftest import client_for, production_changes

QUOTA = "query Quota($process: ProcessKind!) { quota(process: $process) { allowed } }"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_body_over_the_cap_is_413_before_parsing(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    padding = "x" * 2_000
    body = b'{"query": "{ plans { code } }", "pad": "' + padding.encode() + b'"}'
    async with client_for(settings, clock, max_body_bytes=1_000) as client:
        declared = await client.post("/graphql", content=body, headers={"content-type": "application/json"})

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: a chunked body
            for start in range(0, len(body), 100):
                yield body[start : start + 100]

        streamed = await client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
        small = await client.post("/graphql", json={"query": "{ plans { code } }"})

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert small.status_code == 200


def test_the_default_body_cap_is_one_mebibyte() -> None:
    assert Settings().max_body_bytes == 1024 * 1024


@pytest.mark.parametrize("body", ['"a string"', "null", "42", "true", "[]", "[1, 2]", '["x"]', "[null]"])
async def test_a_body_that_is_not_an_object_is_a_400(
    client: httpx.AsyncClient, demo: SeedResult, body: str
) -> None:
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 400, response.text


async def test_a_batched_list_of_operations_is_refused_with_a_400(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    response = await client.post(
        "/graphql", json=[{"query": "{ plans { code } }"}, {"query": "{ plans { code } }"}]
    )

    assert response.status_code == 400
    assert "batch" in response.text.lower()


@pytest.mark.parametrize("field", ["variables", "extensions"])
@pytest.mark.parametrize("value", ['"x"', "42", "[1]"])
async def test_variables_and_extensions_of_the_wrong_shape_are_a_400(
    client: httpx.AsyncClient, demo: SeedResult, field: str, value: str
) -> None:
    body = f'{{"query": "{{ plans {{ code }} }}", "{field}": {value}}}'
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 400, response.text


async def test_a_subscription_over_http_is_a_clear_request_error(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]
    subscription = "subscription { limitAlerts { kind } }"
    for accept in ("application/json", "text/event-stream", "multipart/mixed;subscriptionSpec=1.0"):
        response = await client.post(
            "/graphql", json={"query": subscription}, headers={**bearer(key), "accept": accept}
        )
        assert 400 <= response.status_code < 500, (accept, response.status_code, response.text)
        assert "INTERNAL_SERVER_ERROR" not in response.text
        assert "websocket" in response.text.lower()


@pytest.fixture
async def production_client(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> AsyncIterator[httpx.AsyncClient]:
    production = production_changes()
    async with client_for(settings, clock, **production) as client:
        yield client


async def test_production_hides_suggestions_from_variable_errors(
    client: httpx.AsyncClient, production_client: httpx.AsyncClient, demo: SeedResult
) -> None:
    key = bearer(demo.connector_keys["acme"])
    request = {"query": QUOTA, "variables": {"process": "PRODUCT_SYN"}}

    development = (await client.post("/graphql", json=request, headers=key)).json()
    production = (await production_client.post("/graphql", json=request, headers=key)).json()

    assert "PRODUCT_SYNC" in development["errors"][0]["message"]
    message = production["errors"][0]["message"]
    assert "PRODUCT_SYN" in message  # the error still names the bad value
    assert "Did you mean" not in message
    assert "PRODUCT_SYNC" not in message


async def test_a_rejected_document_is_logged_by_name_and_hash_without_its_literals(
    client: httpx.AsyncClient, demo: SeedResult, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk_live_TOPSECRET_4242"
    documents = [
        f'query Leaky {{ addOn(code: "{secret}") {{ nope }} }}',  # validation error
        f'query Leaky {{ addOn(code: "{secret}" {{ code }} }}',  # syntax error
        f'query Leaky {{ quota(process: "{secret}") {{ allowed }} }}',  # literal of the wrong type
    ]
    caplog.set_level(logging.DEBUG)  # every logger, every level

    for document in documents:
        response = await client.post("/graphql", json={"query": document})
        assert response.json()["errors"]

    logged = "\n".join(
        f"{record.getMessage()} {record.__dict__}" + (f" {record.exc_info}" if record.exc_info else "")
        for record in caplog.records
    )
    assert secret not in logged
    rejected = [record for record in caplog.records if record.getMessage() == "rejected document"]
    assert len(rejected) == len(documents)
    assert all(record.levelno < logging.ERROR for record in rejected)
    hashes = {record.__dict__["document_sha256"] for record in rejected}
    assert hashes == {hashlib.sha256(document.encode()).hexdigest() for document in documents}
    assert {record.__dict__["operation"] for record in rejected} <= {"Leaky", None}


async def test_a_bad_variable_is_logged_without_its_value(
    client: httpx.AsyncClient, demo: SeedResult, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk_live_VARIABLE_SECRET"
    caplog.set_level(logging.DEBUG)

    response = await client.post(
        "/graphql",
        json={"query": QUOTA, "variables": {"process": secret}},
        headers=bearer(demo.connector_keys["acme"]),
    )

    assert response.json()["errors"]
    assert not any(secret in f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
