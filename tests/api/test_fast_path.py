"""The fast lane answers exactly what Strawberry answers, and only on its happy path (app.edge.fast_path)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.clock import FrozenClock
from app.main import create_app
from app.resolvers import catalog
from app.seed import SeedResult
from app.services.errors import UnsupportedCurrency
from app.settings import Settings
from tests.api.test_metrics import scrape
from tests.conftest import GraphQLClient

QUOTA_LEAVES = [
    "allowed",
    "reason",
    "creditsUsed",
    "creditsLimit",
    "processesUsed",
    "processAllowance",
    "period { name end }",
]


FAILING = "XYZ"  # with the ``failing_prices`` fixture, a price asked in it fails


@pytest.fixture
def failing_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """A price asked in ``FAILING`` raises ``UNSUPPORTED_CURRENCY``. Prices in a currency an item is not sold
    in are null (no field below a root fails by itself any more): this stands for any nested field that
    raises, so that the fast lane's fallback after a root ran can be tested."""
    real = catalog.priced

    def priced(prices: dict[str, str], currency: str) -> Any:
        if currency == FAILING:
            raise UnsupportedCurrency(f"No price in {currency}.")
        return real(prices, currency)

    monkeypatch.setattr(catalog, "priced", priced)


class Pair:
    """The same database served by two apps: one with the fast lane, one without."""

    def __init__(self, fast: httpx.AsyncClient, slow: httpx.AsyncClient, app: Any) -> None:
        self.fast, self.slow, self.app = fast, slow, app

    @property
    def served(self) -> int:
        served: int = self.app.state.graphql.fast_path.served
        return served

    async def post(self, client: httpx.AsyncClient, query: str, variables: dict[str, Any], key: str) -> Any:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
        return response.status_code, response.json()


@pytest.fixture
async def pair(settings: Settings, clock: FrozenClock, demo: SeedResult) -> AsyncIterator[Pair]:
    fast_app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=False)
    slow_app = create_app(
        settings.model_copy(update={"fast_path": False}),
        clock=clock,
        manage_orm=False,
        run_background_tasks=False,
    )
    async with (
        fast_app.router.lifespan_context(fast_app),
        slow_app.router.lifespan_context(slow_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=fast_app), base_url="http://t") as fast,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=slow_app), base_url="http://t") as slow,
    ):
        yield Pair(fast, slow, fast_app)


async def same_answer(pair: Pair, query: str, variables: dict[str, Any], key: str) -> Any:
    expected = await pair.post(pair.slow, query, variables, key)
    await pair.post(pair.fast, query, variables, key)  # runs through Strawberry, and is learnt
    served = pair.served
    answer = await pair.post(pair.fast, query, variables, key)
    assert answer == expected
    return served, answer


async def test_the_quota_check_is_served_fast_with_the_same_answer(pair: Pair, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    query = "query Quota($p: ProcessKind!) { quota(process: $p) { allowed reason creditsUsed creditsLimit } }"

    served, (status, body) = await same_answer(pair, query, {"p": "PRODUCT_SYNC"}, key)

    assert status == 200
    assert body["data"]["quota"]["allowed"] is True
    assert pair.served == served + 1


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    leaves=st.lists(st.sampled_from(QUOTA_LEAVES), min_size=1, max_size=7, unique=True),
    aliased=st.lists(st.booleans(), min_size=7, max_size=7),
    typename=st.booleans(),
    process=st.sampled_from(["PRODUCT_SYNC", "STOCK_UPDATE", "ORDER_EXPORT"]),
)
async def test_any_flat_selection_gets_strawberrys_answer(
    pair: Pair, demo: SeedResult, leaves: list[str], aliased: list[bool], typename: bool, process: str
) -> None:
    fields = " ".join(f"a{i}: {leaf}" if aliased[i] else leaf for i, leaf in enumerate(leaves))
    selection = f"__typename {fields}" if typename else fields
    query = f"query Q($p: ProcessKind!) {{ check: quota(process: $p) {{ {selection} }} }}"

    served, _ = await same_answer(pair, query, {"p": process}, demo.connector_keys["nova"])

    assert pair.served == served + 1


async def test_process_starts_and_their_retries_answer_the_same(pair: Pair, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    start = """
    mutation Start($k: String!) {
      startProcess(process: PRODUCT_SYNC, idempotencyKey: $k) {
        __typename
        ... on StartProcessSuccess { allowed reason ticket replayed processesUsed period { name } }
        ... on Error { code message field }
      }
    }
    """
    first = await pair.post(pair.slow, start, {"k": "fast-1"}, key)
    served, retried = await same_answer(pair, start, {"k": "fast-1"}, key)

    assert retried[1]["data"]["startProcess"]["replayed"] is True
    assert retried[1]["data"]["startProcess"]["ticket"] == first[1]["data"]["startProcess"]["ticket"]
    assert pair.served == served + 1
    fresh = await pair.post(pair.fast, start, {"k": "fast-2"}, key)
    assert fresh[1]["data"]["startProcess"]["replayed"] is False
    assert fresh[1]["data"]["startProcess"]["processesUsed"] == 2


async def test_a_usage_report_with_its_credit_usage_is_served_fast_with_the_same_answer(
    pair: Pair, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    report = """
    mutation Report($input: UsageReportInput!, $key: String) {
      reportUsage(input: $input, idempotencyKey: $key) {
        __typename
        ... on ReportUsageSuccess {
          applied replayed report { creditsUsed }
          creditUsage { id used limit processes { period { name } } storage { usedBytes } }
        }
        ... on Error { code message field }
      }
    }
    """
    counts = {"variants": 340, "customers": 1200, "contacts": 1200, "salesReps": 5, "adminUsers": 3}

    def variables(seconds: int) -> dict[str, Any]:
        measured_at = (clock.now() - dt.timedelta(seconds=60 - seconds)).isoformat()
        return {"input": {**counts, "storageBytes": 7, "measuredAt": measured_at}, "key": f"r-{seconds}"}

    await pair.post(pair.fast, report, variables(1), key)  # runs through Strawberry, and is learnt
    expected = await pair.post(pair.slow, report, variables(2), key)
    served = pair.served
    answer = await pair.post(pair.fast, report, variables(3), key)

    assert pair.served == served + 1
    assert answer == expected
    result = answer[1]["data"]["reportUsage"]
    assert (result["applied"], result["creditUsage"]["used"], result["creditUsage"]["storage"]) == (
        True, 2748, {"usedBytes": 7},
    )  # fmt: skip


async def test_everything_off_the_happy_path_runs_through_strawberry(
    pair: Pair, demo: SeedResult, gql: GraphQLClient
) -> None:
    query = "query Quota($p: ProcessKind!) { quota(process: $p) { allowed } }"
    await same_answer(pair, query, {"p": "PRODUCT_SYNC"}, demo.connector_keys["acme"])
    served = pair.served
    partner = demo.connector_keys["acme"].replace("tg_", "tg_x")  # unknown key
    admin = await gql.token_for("admin@acme.test")  # a user: no scope

    for variables, key in [
        ({"p": "NOPE"}, demo.connector_keys["acme"]),
        ({"p": "PRODUCT_SYNC"}, partner),
        ({"p": "PRODUCT_SYNC"}, admin),
        ({}, demo.connector_keys["acme"]),
    ]:
        expected = await pair.post(pair.slow, query, variables, key)
        assert await pair.post(pair.fast, query, variables, key) == expected
        assert expected[1].get("errors")

    assert pair.served == served
    # Refused before quota ran, those fallbacks wasted nothing: the document stays on the lane.
    await pair.post(pair.fast, query, {"p": "PRODUCT_SYNC"}, demo.connector_keys["acme"])
    assert pair.served == served + 1


async def test_mutations_are_never_served_over_get(pair: Pair, demo: SeedResult) -> None:
    key = demo.connector_keys["acme"]
    start = 'mutation S { startProcess(process: PRODUCT_SYNC, idempotencyKey: "get-1") { __typename } }'
    await pair.post(pair.fast, start, {}, key)
    await pair.post(pair.fast, start, {}, key)

    response = await pair.fast.get(
        "/graphql", params={"query": start}, headers={"Authorization": f"Bearer {key}"}
    )

    assert response.status_code == 405


DASHBOARD = """
query Dashboard {
  myPlan {
    __typename
    ... on MyPlan {
      plan { code name price { amount currency } limits { credits } }
      effectiveLimits { storageBytes users integrations credits }
      activeAddOns {
        id name quantity status contractedAt endsAt monthlyPrice { amount currency } addOn { code }
      }
      monthlyTotal { amount currency }
      features
    }
    ... on MyPlanResult { kind: __typename }
    ... on Error { code message }
  }
  creditUsage {
    ... on CreditUsage {
      used limit remaining percent measuredAt
      breakdown { variants customers contacts salesReps adminUsers }
      processes {
        period { name start } used estimate allowance
        forecast { dailyPace expectedByPeriodEnd allowancePassedOn }
      }
      storage { usedBytes includedBytes overageGb overageCost { amount currency } }
    }
    ... on Error { code message }
  }
}
"""

MY_PLAN_PATHS = [
    "plan { code }",
    "plan { name price { amount } }",
    'plan { brl: price(currency: "BRL") { currency amount } prices { amount currency } }',
    "effectiveLimits { credits users }",
    "activeAddOns { name status }",
    "activeAddOns { addOn { code price { amount } } quantity }",
    "monthlyTotal { amount }",
    "features",
    "currentPeriod { name }",
]


async def test_the_back_offices_dashboard_is_served_fast_with_the_same_answer(
    pair: Pair, demo: SeedResult, gql: GraphQLClient
) -> None:
    for admin in ("admin@acme.test", "admin@nova.test"):
        served, (status, body) = await same_answer(pair, DASHBOARD, {}, await gql.token_for(admin))

        assert status == 200
        assert "errors" not in body
        assert body["data"]["myPlan"]["kind"] == "MyPlan"
        assert body["data"]["myPlan"]["activeAddOns"]
        assert pair.served == served + 1


async def test_the_catalog_with_its_nested_resolvers_is_served_fast_with_the_same_answer(
    pair: Pair, demo: SeedResult, gql: GraphQLClient, failing_prices: None
) -> None:
    catalog = """query Catalog($currency: String) {
      plans { code price(currency: $currency) { amount currency } limits { credits } features }
      addOns { code price { amount currency } increments { credits } conditions { summary maxQuantity } }
    }"""
    admin = await gql.token_for("admin@nova.test")

    for variables in ({}, {"currency": "EUR"}):
        served, (status, body) = await same_answer(pair, catalog, variables, admin)
        assert status == 200
        assert "errors" not in body
        assert pair.served == served + 1
    # A nested resolver raising runs through Strawberry, same error.
    served = pair.served
    expected = await pair.post(pair.slow, catalog, {"currency": FAILING}, admin)
    assert await pair.post(pair.fast, catalog, {"currency": FAILING}, admin) == expected
    assert expected[1]["errors"][0]["extensions"]["code"] == "UNSUPPORTED_CURRENCY"
    assert pair.served == served


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    paths=st.lists(st.sampled_from(MY_PLAN_PATHS), min_size=1, max_size=5, unique=True),
    alias=st.booleans(),
    usage=st.booleans(),
    tenant=st.sampled_from(["acme", "nova", "legacy"]),
)
async def test_any_selection_of_my_plan_gets_strawberrys_answer(
    pair: Pair, demo: SeedResult, gql: GraphQLClient, paths: list[str], alias: bool, usage: bool, tenant: str
) -> None:
    selection = " ".join(f"f{i}: {path}" if alias else path for i, path in enumerate(paths))
    extra = "creditUsage { ... on CreditUsage { used processes { used } } }" if usage else ""
    query = f"query Q {{ {extra} mine: myPlan {{ __typename ... on MyPlan {{ {selection} }} }} }}"
    admin = await gql.token_for(f"admin@{tenant}.test")

    served, (status, body) = await same_answer(pair, query, {}, admin)

    assert status == 200
    assert "errors" not in body, body
    # legacy's environment predates the store: its typed error comes from the schema's exception handlers,
    # which the fast lane applies as Strawberry does.
    eligible = tenant != "legacy"
    assert body["data"]["mine"]["__typename"] == ("MyPlan" if eligible else "NotEligibleError")
    assert pair.served == served + 1


# An add-on's price fails (``failing_prices``); price is nullable, so quota's answer stays.
QUOTA_AND_PRICES = """query QuotaAndPrices($c: String) {
  quota(process: PRODUCT_SYNC) { allowed reason }
  addOn(code: "users-5") { code price(currency: $c) { amount currency } }
}"""


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    """A metric's value summed over its labels."""
    return sum(value for (sample, _), value in samples.items() if sample == name)


async def test_a_document_falling_back_after_quota_ran_counts_the_decision_once(
    pair: Pair, demo: SeedResult, failing_prices: None
) -> None:
    key = demo.connector_keys["acme"]
    decisions = "tollgate_quota_decisions_total"
    await pair.post(pair.fast, QUOTA_AND_PRICES, {}, key)  # runs through Strawberry, and is learnt
    served = pair.served

    for client in (pair.fast, pair.slow, pair.fast):
        before = await scrape(client)
        # Prices fail, not quota.
        status, body = await pair.post(client, QUOTA_AND_PRICES, {"c": FAILING}, key)
        after = await scrape(client)

        assert status == 200
        assert body["data"] == {
            "quota": {"allowed": True, "reason": None},
            "addOn": {"code": "users-5", "price": None},
        }
        assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED_CURRENCY"
        assert total(after, decisions) - total(before, decisions) == 1
    assert pair.served == served
    before = await scrape(pair.fast)
    assert (await pair.post(pair.fast, QUOTA_AND_PRICES, {}, key))[1]["data"]["quota"]["allowed"] is True
    assert total(await scrape(pair.fast), decisions) - total(before, decisions) == 1
    assert pair.served == served + 1


async def test_a_document_that_keeps_falling_back_is_left_to_strawberry(
    pair: Pair, demo: SeedResult, failing_prices: None
) -> None:
    key = demo.connector_keys["nova"]
    fallbacks, abandoned = "tollgate_fast_path_fallbacks_total", "tollgate_fast_path_abandoned_total"
    await pair.post(pair.fast, QUOTA_AND_PRICES, {}, key)  # learnt

    async def failing_run() -> tuple[float, float]:
        before = await scrape(pair.fast)
        expected = await pair.post(pair.slow, QUOTA_AND_PRICES, {"c": FAILING}, key)
        assert await pair.post(pair.fast, QUOTA_AND_PRICES, {"c": FAILING}, key) == expected
        after = await scrape(pair.fast)
        return total(after, fallbacks) - total(before, fallbacks), total(after, abandoned) - total(
            before, abandoned
        )

    # Two in a row, then a success: the count starts again.
    assert [await failing_run() for _ in range(2)] == [(1, 0), (1, 0)]
    served = pair.served
    await pair.post(pair.fast, QUOTA_AND_PRICES, {}, key)
    assert pair.served == served + 1
    # Three in a row: the third leaves the document to Strawberry, which then serves it alone.
    assert [await failing_run() for _ in range(4)] == [(1, 0), (1, 0), (1, 1), (0, 0)]
    served = pair.served
    status, body = await pair.post(pair.fast, QUOTA_AND_PRICES, {}, key)
    assert (status, "errors" in body) == (200, False)
    assert pair.served == served


async def test_a_root_resolver_raising_is_reported_from_its_one_run(
    pair: Pair, demo: SeedResult, gql: GraphQLClient
) -> None:
    # An argument out of range is a top-level BAD_USER_INPUT raised by the resolver: the lane records the
    # exception, and Strawberry reports it where the resolver would have raised it, beside the other root's
    # answer.
    query = "query Page($n: Int, $a: String) { viewer { kind } alerts(first: $n, after: $a) { totalCount } }"
    admin = await gql.token_for("admin@acme.test")
    await same_answer(pair, query, {"n": 5}, admin)
    before = await scrape(pair.fast)

    for variables in ({"n": 0}, {"n": 5, "a": "not-a-cursor"}):
        expected = await pair.post(pair.slow, query, variables, admin)
        assert await pair.post(pair.fast, query, variables, admin) == expected
        assert expected[1]["data"]["alerts"] is None
        assert expected[1]["data"]["viewer"] is not None
        assert expected[1]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert expected[1]["errors"][0]["path"] == ["alerts"]

    after = await scrape(pair.fast)
    assert (
        total(after, "tollgate_fast_path_fallbacks_total")
        - total(before, "tollgate_fast_path_fallbacks_total")
        == 2
    )
