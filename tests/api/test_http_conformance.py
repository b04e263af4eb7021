"""GraphQL over HTTP as the spec says, and no way for another site to run a mutation (issue 6)."""

from __future__ import annotations

import httpx

from app.seed import SeedResult

QUERY = "query Plans { plans { code } }"
MUTATION = "mutation { removeCoupon { __typename } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"


async def test_queries_run_over_get_and_post(client: httpx.AsyncClient, demo: SeedResult) -> None:
    over_get = await client.get("/graphql", params={"query": QUERY})
    over_post = await client.post("/graphql", json={"query": QUERY})

    assert over_get.status_code == over_post.status_code == 200
    assert over_get.json() == over_post.json()
    assert over_get.json()["data"]["plans"]


async def test_mutations_are_refused_over_get(client: httpx.AsyncClient, demo: SeedResult) -> None:
    response = await client.get("/graphql", params={"query": MUTATION})

    assert response.status_code == 405
    assert "mutations are not allowed when using GET" in response.text


async def test_cross_site_form_and_text_posts_are_refused(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    # The bodies a foreign page can send without a CORS preflight: none of them runs anything.
    form = await client.post("/graphql", data={"query": MUTATION}, headers={"origin": "https://evil.test"})
    text = await client.post(
        "/graphql", content=f'{{"query": "{MUTATION}"}}', headers={"content-type": "text/plain"}
    )
    multipart = await client.post("/graphql", files={"query": (None, MUTATION)})

    assert form.status_code == text.status_code == multipart.status_code == 415


async def test_no_cors_headers_are_granted_to_foreign_origins(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/graphql",
        headers={"origin": "https://evil.test", "access-control-request-method": "POST"},
    )

    assert "access-control-allow-origin" not in preflight.headers


async def test_request_errors_are_400_for_graphql_response_json_clients(
    client: httpx.AsyncClient, demo: SeedResult
) -> None:
    headers = {"accept": GRAPHQL_RESPONSE}
    syntax = await client.post("/graphql", json={"query": "{ plans { "}, headers=headers)
    invalid = await client.post("/graphql", json={"query": "{ nope }"}, headers=headers)
    fine = await client.post("/graphql", json={"query": QUERY}, headers=headers)

    for response in (syntax, invalid):
        assert response.status_code == 400
        assert response.headers["content-type"] == GRAPHQL_RESPONSE
        assert "data" not in response.json()
        assert response.json()["errors"]
    assert fine.status_code == 200
    assert fine.headers["content-type"] == GRAPHQL_RESPONSE
    assert fine.json()["data"]["plans"]


async def test_request_errors_stay_200_for_plain_json_clients(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ nope }"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["message"] == "Cannot query field 'nope' on type 'Query'."


async def test_batching_is_off(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=[{"query": QUERY}, {"query": QUERY}])

    assert response.status_code == 400
    assert "Batching is not enabled" in response.text


async def test_malformed_bodies_get_400(client: httpx.AsyncClient) -> None:
    broken = await client.post("/graphql", content="{", headers={"content-type": "application/json"})
    empty = await client.post("/graphql", json={})
    wrong_variables = await client.post("/graphql", json={"query": QUERY, "variables": [1]})

    assert broken.status_code == empty.status_code == wrong_variables.status_code == 400
