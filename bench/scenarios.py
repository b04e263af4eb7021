"""The benchmark's HTTP scenarios: the GraphQL documents (variables, never literals), how each request
is built, and what a right answer looks like."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from bench.loadgen import BodyCheck, RequestFactory, build_request
from bench.seeding import BenchTenant

QUOTA = """query Quota($process: ProcessKind!) {
  quota(process: $process) {
    allowed reason creditsUsed creditsLimit processesUsed processAllowance period { name }
  }
}"""

START_PROCESS = """mutation StartProcess($process: ProcessKind!, $key: String!) {
  startProcess(process: $process, idempotencyKey: $key) {
    __typename
    ... on StartProcessSuccess { allowed reason ticket processesUsed processAllowance }
    ... on Error { code message field }
  }
}"""

REPORT_USAGE = """mutation ReportUsage($input: UsageReportInput!, $key: String) {
  reportUsage(input: $input, idempotencyKey: $key) {
    __typename
    ... on ReportUsageSuccess { report { id creditsUsed } applied }
    ... on Error { code message field }
  }
}"""

CATALOG = """query Catalog {
  plans {
    code name price { amount currency } limits { storageBytes users integrations credits }
    features storagePolicy overagePricePerGb { amount currency }
  }
  addOns {
    code name description category cadence isFree requiresConfiguration price { amount currency }
    increments { storageBytes users integrations credits } conditions { summary }
  }
}"""

MY_PLAN_AND_CREDITS = """query MyPlanAndCredits {
  myPlan {
    __typename
    ... on MyPlan {
      plan { code name price { amount currency } }
      effectiveLimits { storageBytes users integrations credits }
      activeAddOns { name quantity status contractedAt monthlyPrice { amount currency } }
      monthlyTotal { amount currency }
    }
    ... on Error { code message }
  }
  creditUsage {
    ... on CreditUsage {
      used limit remaining percent
      breakdown { variants customers contacts salesReps adminUsers }
      processes { period { name } used estimate allowance }
      storage { usedBytes includedBytes overageGb overageCost { amount currency } }
    }
    ... on Error { code message }
  }
}"""

ADD_TO_CART = """mutation AddToCart($code: String!, $quantity: Int!) {
  addToCart(addOnCode: $code, quantity: $quantity) {
    __typename
    ... on AddToCartSuccess { cart { lines { addOnCode quantity } summary { total { amount currency } } } }
    ... on Error { code message field }
  }
}"""

CHECKOUT = """mutation Checkout($key: String!) {
  checkout(idempotencyKey: $key) {
    __typename
    ... on CheckoutSuccess { order { id total { amount currency } } activeAddOns { name } }
    ... on Error { code message field }
  }
}"""

LIMIT_ALERTS = "subscription LimitAlerts { limitAlerts { kind threshold state used limit at } }"

PROCESSES = ("PRODUCT_SYNC", "STOCK_UPDATE", "ORDER_EXPORT", "INVOICE_IMPORT")
CART_ADD_ON = "storage-500mb"  # any plan may buy it, with no maximum


@dataclass(frozen=True)
class HttpScenario:
    key: str
    label: str
    needs: tuple[str, ...]  # root fields that must exist ("Query.quota"), else the scenario is skipped
    factory: RequestFactory
    check: BodyCheck


def graphql_request(host: str, document: str, variables: Mapping[str, object], token: str | None) -> bytes:
    body = orjson.dumps({"query": document, "variables": variables})
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return build_request("/graphql", body, host=host, headers=headers)


def expect(*markers: bytes, forbidden: tuple[bytes, ...] = (b'"errors"',)) -> BodyCheck:
    def check(body: bytes) -> str | None:
        for marker in forbidden:
            if marker in body:
                return f"unexpected {marker.decode()}: {body[:300]!r}"
        for marker in markers:
            if marker not in body:
                return f"missing {marker.decode()}: {body[:300]!r}"
        return None

    return check


def _spread(tenants: list[BenchTenant]) -> Callable[[int, int], int]:
    """Connection and iteration -> a tenant index: every connection walks all tenants, from its own start."""
    count = len(tenants)
    return lambda index, iteration: (index * 7919 + iteration) % count


def build_scenarios(
    host: str, tenants: list[BenchTenant], run_id: str, *, connections: int
) -> list[HttpScenario]:
    pick = _spread(tenants)
    quota_requests = [
        graphql_request(host, QUOTA, {"process": PROCESSES[n % len(PROCESSES)]}, tenant.connector_key)
        for n, tenant in enumerate(tenants)
    ]
    hand_quota = [
        build_request(
            "/__bench/quota",
            orjson.dumps({"process": PROCESSES[n % len(PROCESSES)]}),
            host=host,
            headers={"authorization": f"Bearer {tenant.connector_key}"},
        )
        for n, tenant in enumerate(tenants)
    ]
    constant = build_request("/__bench/constant", b"", host=host, method="GET")
    one_row = [
        build_request(f"/__bench/one-row?tenant={t.slug}", b"", host=host, method="GET") for t in tenants
    ]
    catalog = graphql_request(host, CATALOG, {}, None)
    my_plan = [graphql_request(host, MY_PLAN_AND_CREDITS, {}, tenant.admin_token) for tenant in tenants]

    def bench_request(path: str, body: object, token: str) -> bytes:
        return build_request(
            path, orjson.dumps(body), host=host, headers={"authorization": f"Bearer {token}"}
        )

    def start_on(choose: Callable[[int, int], BenchTenant], prefix: str) -> RequestFactory:
        def start(index: int, iteration: int) -> bytes:
            variables = {
                "process": PROCESSES[iteration % len(PROCESSES)],
                "key": f"{run_id}-{prefix}{index}-{iteration}",
            }
            return graphql_request(host, START_PROCESS, variables, choose(index, iteration).connector_key)

        return start

    def bench_start(path: str, choose: Callable[[int, int], BenchTenant], prefix: str) -> RequestFactory:
        def start(index: int, iteration: int) -> bytes:
            body = {
                "process": PROCESSES[iteration % len(PROCESSES)],
                "idempotencyKey": f"{run_id}-{prefix}{index}-{iteration}",
            }
            return bench_request(path, body, choose(index, iteration).connector_key)

        return start

    def spread(index: int, iteration: int) -> BenchTenant:
        return tenants[pick(index, iteration)]

    def one_tenant(index: int, iteration: int) -> BenchTenant:
        # Every connection on the same tenant: one counter row, the worst case for its lock.
        return tenants[0]

    last_measured = [dt.datetime.now(dt.UTC)]

    def report_counts(index: int, iteration: int) -> tuple[BenchTenant, dict[str, object]]:
        # Each connection reports for tenants of its own, with ever later measurements: every report
        # applies (two connections reporting for one tenant would race, and the older one is ignored).
        owned = range(index % len(tenants), len(tenants), connections)
        tenant = tenants[owned[iteration % len(owned)]]
        measured_at = max(dt.datetime.now(dt.UTC), last_measured[0] + dt.timedelta(microseconds=1))
        last_measured[0] = measured_at
        # Between 40% and 70% of the limit: reports apply, and no alert threshold is crossed.
        credits = tenant.credits_limit * (40 + (index + iteration) % 30) // 100
        variants, customers = credits // 4, credits // 3
        counts = {
            "variants": variants,
            "customers": customers,
            "contacts": credits - variants - customers - 7,
            "salesReps": 5,
            "adminUsers": 2,
            "storageBytes": 3 * 1024**3,
            "users": 2,
            "measuredAt": measured_at.isoformat(),
        }
        return tenant, counts

    def report(index: int, iteration: int) -> bytes:
        tenant, counts = report_counts(index, iteration)
        variables = {"input": counts, "key": f"{run_id}-r{index}-{iteration}"}
        return graphql_request(host, REPORT_USAGE, variables, tenant.connector_key)

    def minimal_report(index: int, iteration: int) -> bytes:
        tenant, counts = report_counts(index, iteration)
        return bench_request("/__bench/minimal-report", counts, tenant.connector_key)

    def cart_and_checkout(index: int, iteration: int) -> bytes:
        # Each connection is one admin of its own tenant: add an add-on, then confirm the purchase.
        tenant = tenants[index % len(tenants)]
        if iteration % 2 == 0:
            return graphql_request(
                host, ADD_TO_CART, {"code": CART_ADD_ON, "quantity": 1}, tenant.admin_token
            )
        return graphql_request(host, CHECKOUT, {"key": f"{run_id}-c{index}-{iteration}"}, tenant.admin_token)

    def minimal_cart_and_checkout(index: int, iteration: int) -> bytes:
        # The same alternation, by admins of other tenants (from the last one down): the gateway's carts,
        # its caches and its checkouts' figures are left as the minimal endpoints would never keep them.
        tenant = tenants[-1 - index % len(tenants)]
        if iteration % 2 == 0:
            body: dict[str, object] = {"code": CART_ADD_ON, "quantity": 1}
            return bench_request("/__bench/minimal-add", body, tenant.admin_token)
        body = {"idempotencyKey": f"{run_id}-mc{index}-{iteration}"}
        return bench_request("/__bench/minimal-checkout", body, tenant.admin_token)

    def cart_check(body: bytes) -> str | None:
        marker = b'"AddToCartSuccess"' if b'"addToCart"' in body else b'"CheckoutSuccess"'
        return expect(marker)(body)

    def minimal_cart_check(body: bytes) -> str | None:
        if b'"added"' in body:
            return expect(b'"added":true')(body)
        return expect(b'"order"', b'"lines":', forbidden=(b'"error"', b'"replayed"'))(body)

    def catalog_check(body: bytes) -> str | None:
        found = body.count(b'"isFree"')
        if found != 200:
            return f"expected 200 add-ons, got {found}: {body[:200]!r}"
        return expect(b'"plans"')(body)

    return [
        HttpScenario(
            "constant", "baseline: Starlette constant", (), lambda i, n: constant, expect(b'"allowed"')
        ),
        HttpScenario(
            "one_row",
            "baseline: Tortoise one-row read",
            (),
            lambda i, n: one_row[pick(i, n)],
            expect(b'"credits":'),
        ),
        HttpScenario(
            "hand_quota",
            "baseline: hand-written quota",
            (),
            lambda i, n: hand_quota[pick(i, n)],
            expect(b'"allowed":true'),
        ),
        HttpScenario(
            "hand_start",
            "baseline: hand-written start",
            (),
            bench_start("/__bench/start", spread, "h"),
            expect(b'"allowed":true'),
        ),
        HttpScenario(
            "minimal_start",
            "baseline: minimal start",
            (),
            bench_start("/__bench/minimal-start", spread, "m"),
            expect(b'"allowed":true', b'"ticket"', b'"count"', forbidden=(b'"replayed"',)),
        ),
        HttpScenario(
            "minimal_start_one",
            "baseline: minimal start, one tenant",
            (),
            bench_start("/__bench/minimal-start", one_tenant, "mo"),
            expect(b'"allowed":true', b'"ticket"', b'"count"', forbidden=(b'"replayed"',)),
        ),
        HttpScenario(
            "minimal_report",
            "baseline: minimal report",
            (),
            minimal_report,
            expect(b'"applied":true', b'"crossed":0'),
        ),
        HttpScenario(
            "minimal_checkout",
            "baseline: minimal add + checkout",
            (),
            minimal_cart_and_checkout,
            minimal_cart_check,
        ),
        HttpScenario(
            "quota",
            "1. quota (connector key)",
            ("Query.quota",),
            lambda i, n: quota_requests[pick(i, n)],
            expect(b'"allowed":true'),
        ),
        HttpScenario(
            "start_process",
            "2. startProcess (fresh keys)",
            ("Mutation.startProcess",),
            start_on(spread, ""),
            expect(b'"allowed":true', b'"ticket"', forbidden=(b'"errors"', b'"code"')),
        ),
        HttpScenario(
            "start_one_tenant",
            "2b. startProcess, one tenant",
            ("Mutation.startProcess",),
            start_on(one_tenant, "o"),
            expect(b'"allowed":true', b'"ticket"', forbidden=(b'"errors"', b'"code"')),
        ),
        HttpScenario(
            "report_usage",
            "3. reportUsage",
            ("Mutation.reportUsage",),
            report,
            expect(b'"applied":true', forbidden=(b'"errors"', b'"code"')),
        ),
        HttpScenario(
            "catalog",
            "4. catalog (plans + 200 addOns)",
            ("Query.plans", "Query.addOns"),
            lambda i, n: catalog,
            catalog_check,
        ),
        HttpScenario(
            "my_plan",
            "5. myPlan + creditUsage (admin)",
            ("Query.myPlan", "Query.creditUsage"),
            lambda i, n: my_plan[pick(i, n)],
            expect(b'"__typename":"MyPlan"', b'"creditUsage"'),
        ),
        HttpScenario(
            "cart_checkout",
            "6. addToCart + checkout",
            ("Mutation.addToCart", "Mutation.checkout"),
            cart_and_checkout,
            cart_check,
        ),
    ]


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]
