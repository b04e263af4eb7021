"""Usage reports from the ERP connector: applied when newer, ignored when older, idempotent, validated."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.clock import FrozenClock
from app.models.billing import PlanSubscription
from app.models.enums import PlanSubscriptionStatus
from app.models.metering import UsageReport
from app.models.tenancy import Tenant
from app.models.usage import TenantUsage
from app.resolvers.ids import key_of
from app.seed import SeedResult
from app.services.usage import current_usage
from tests.conftest import GraphQLClient, count_queries

REPORT_FIELDS = "id variants customers contacts salesReps adminUsers users integrations storageBytes"
REPORT_USAGE = f"""
mutation Report($input: UsageReportInput!, $key: String) {{
  reportUsage(input: $input, idempotencyKey: $key) {{
    __typename
    ... on Error {{ code message field }}
    ... on ReportUsageSuccess {{
      applied replayed report {{ {REPORT_FIELDS} creditsUsed measuredAt receivedAt applied }}
    }}
  }}
}}
"""

SEED_EXAMPLE = {"variants": 340, "customers": 1200, "contacts": 1200, "salesReps": 5, "adminUsers": 3}


def report_input(measured_at: dt.datetime, **overrides: Any) -> dict[str, Any]:
    return {**SEED_EXAMPLE, "storageBytes": 0, "measuredAt": measured_at.isoformat(), **overrides}


async def report(
    gql: GraphQLClient,
    key: str,
    measured_at: dt.datetime,
    idempotency_key: str | None = None,
    document: str = REPORT_USAGE,
    **overrides: Any,
) -> dict[str, Any]:
    variables = {"input": report_input(measured_at, **overrides), "key": idempotency_key}
    body = await gql.post(document, variables, key=key)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["reportUsage"]
    return result


async def test_report_of_the_seed_example_is_applied_and_sums_to_2748_credits(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    result = await report(gql, demo.connector_keys["acme"], clock.now(), storageBytes=5 * 1024**3)

    assert result["__typename"] == "ReportUsageSuccess"
    assert (result["applied"], result["replayed"], result["report"]["creditsUsed"]) == (True, False, 2748)
    assert result["report"]["storageBytes"] == 5 * 1024**3
    assert (result["report"]["users"], result["report"]["integrations"]) == (None, None)  # not reported
    usage = await current_usage((await Tenant.get(slug="acme")).id)
    assert (usage.variants, usage.customers, usage.contacts, usage.sales_reps, usage.admin_users) == (
        340, 1200, 1200, 5, 3,
    )  # fmt: skip
    assert usage.credits == 2748
    assert usage.storage_bytes == 5 * 1024**3
    assert usage.measured_at == clock.now()


async def test_users_default_to_admin_users_and_integrations_to_active_integration_add_ons(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["nova"], clock.now())
    nova = await Tenant.get(slug="nova")
    usage = await current_usage(nova.id)
    # nova has the Mercado Livre integration add-on (quantity 1).
    assert (usage.users, usage.integrations) == (3, 1)

    await report(
        gql, demo.connector_keys["nova"], clock.now() + dt.timedelta(seconds=1), users=7, integrations=2
    )
    usage = await current_usage(nova.id)
    assert (usage.users, usage.integrations) == (7, 2)


async def test_a_report_older_than_the_applied_one_is_ignored(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), variants=500)

    late = await report(gql, key, clock.now() - dt.timedelta(hours=1), variants=100)
    same_instant = await report(gql, key, clock.now(), variants=200)

    assert (late["applied"], same_instant["applied"]) == (False, False)
    assert (late["report"]["applied"], late["report"]["variants"]) == (False, 100)
    assert late["report"]["creditsUsed"] == 100 + 1200 + 1200 + 5 + 3  # the report's, not the usage's
    acme = await Tenant.get(slug="acme")
    assert (await current_usage(acme.id)).variants == 500
    # Both are kept in the log, marked as not applied.
    assert await UsageReport.filter(tenant_id=acme.id, applied=False).count() == 2


async def test_a_retried_report_with_the_same_key_changes_nothing(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    first = await report(gql, key, clock.now() - dt.timedelta(minutes=5), "r-1")
    await report(gql, key, clock.now(), variants=900)  # a newer report in between

    retry = await report(gql, key, clock.now() - dt.timedelta(minutes=5), "r-1")

    assert (first["replayed"], retry["replayed"]) == (False, True)
    assert (retry["report"], retry["applied"]) == (first["report"], True)  # the same report, the same id
    acme = await Tenant.get(slug="acme")
    assert (await current_usage(acme.id)).variants == 900
    assert await UsageReport.filter(tenant_id=acme.id).count() == 2


async def test_the_same_key_with_other_counts_is_refused(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), "r-1")

    reused = await report(gql, key, clock.now(), "r-1", variants=341)

    assert (reused["__typename"], reused["code"]) == ("IdempotencyKeyReusedError", "IDEMPOTENCY_KEY_REUSED")
    assert (await current_usage((await Tenant.get(slug="acme")).id)).variants == 340


async def test_negative_and_absurd_counts_are_typed_errors_naming_the_field(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    cases = [
        ({"variants": -1}, "variants"),
        ({"salesReps": -5}, "salesReps"),
        ({"customers": 2_000_000_000}, "customers"),
        ({"users": -1}, "users"),
        ({"storageBytes": -1}, "storageBytes"),
        ({"storageBytes": 10**17}, "storageBytes"),
    ]
    for overrides, field in cases:
        result = await report(gql, key, clock.now(), **overrides)
        assert (result["__typename"], result["code"], result["field"]) == (
            "InvalidInputError", "INVALID_INPUT", field,
        ), overrides  # fmt: skip
    assert not await TenantUsage.exists()
    assert not await UsageReport.exists()


async def test_a_measurement_in_the_future_is_refused(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    result = await report(gql, demo.connector_keys["acme"], clock.now() + dt.timedelta(hours=1))

    assert (result["code"], result["field"]) == ("INVALID_INPUT", "measuredAt")
    assert not await TenantUsage.exists()


async def test_a_count_that_is_not_a_number_is_a_graphql_error_not_a_500(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    variables = {"input": report_input(clock.now(), storageBytes="lots"), "key": None}
    body = await gql.post(REPORT_USAGE, variables, key=demo.connector_keys["acme"])

    assert body["data"] is None
    assert "storageBytes" in body["errors"][0]["message"]


async def test_reporting_needs_the_usage_report_scope(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    as_user = await gql.post(REPORT_USAGE, {"input": report_input(clock.now())}, as_="admin@acme.test")
    anonymous = await gql.post(REPORT_USAGE, {"input": report_input(clock.now())})

    assert as_user["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not await TenantUsage.exists()


async def test_a_report_only_changes_the_callers_tenant(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await report(gql, demo.connector_keys["acme"], clock.now())

    nova = await Tenant.get(slug="nova")
    assert (await current_usage(nova.id)).credits == 0


REPORT_AND_USAGE = """
mutation ReportAndUsage($input: UsageReportInput!, $key: String) {
  reportUsage(input: $input, idempotencyKey: $key) {
    __typename
    ... on Error { code message field }
    ... on ReportUsageSuccess {
      applied replayed report { id creditsUsed }
      creditUsage { id used limit remaining measuredAt processes { period { name } } }
    }
  }
}
"""


async def test_the_answer_carries_the_credit_usage_the_report_left(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]

    applied = await report(gql, key, clock.now(), document=REPORT_AND_USAGE)
    late = await report(gql, key, clock.now() - dt.timedelta(hours=1), document=REPORT_AND_USAGE, variants=0)

    usage = applied["creditUsage"]
    assert (usage["used"], usage["limit"], usage["remaining"]) == (2748, 4000, 1252)
    assert usage["measuredAt"] == clock.now().isoformat()
    assert usage["processes"]["period"]["name"] == "2026-11"
    # The late report is recorded, not applied: the usage it returns is still the applied one.
    assert late["applied"] is False
    assert (late["report"]["creditsUsed"], late["creditUsage"]["used"]) == (2408, 2748)
    # The same object as the root field's, for a client cache: the same id, the same figures.
    root = (await gql.post("{ creditUsage { ... on CreditUsage { id used } } }", key=key))["data"][
        "creditUsage"
    ]
    assert root == {"id": usage["id"], "used": 2748} == {"id": late["creditUsage"]["id"], "used": 2748}


async def test_the_report_id_is_the_stored_reports_and_names_its_type(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    result = await report(gql, demo.connector_keys["acme"], clock.now(), "r-1")

    stored = await UsageReport.get(idempotency_key="r-1")
    assert key_of(result["report"]["id"], "UsageReport", field="id") == str(stored.id)
    assert result["report"]["id"] != str(stored.id)  # opaque, not the bare key


async def test_credit_usage_in_the_answer_costs_a_statement_only_when_selected(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await report(gql, key, clock.now(), document=REPORT_AND_USAGE)  # the plan is cached from here on

    with count_queries() as usual:
        await report(gql, key, clock.now() + dt.timedelta(seconds=1))
    with count_queries() as with_usage:
        await report(gql, key, clock.now() + dt.timedelta(seconds=2), document=REPORT_AND_USAGE)

    assert not [s for s in usual.statements if "process_counter" in s], usual.statements
    assert with_usage.count == usual.count + 1, with_usage.statements  # the usage and the counter


async def test_without_an_active_plan_the_report_applies_and_its_credit_usage_is_null(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    acme = await Tenant.get(slug="acme")
    await PlanSubscription.filter(tenant_id=acme.id).update(status=PlanSubscriptionStatus.SUSPENDED)

    body = await gql.post(
        REPORT_AND_USAGE, {"input": report_input(clock.now())}, key=demo.connector_keys["acme"]
    )

    assert "errors" not in body, body
    result = body["data"]["reportUsage"]
    assert (result["applied"], result["creditUsage"]) == (True, None)
    assert (await current_usage(acme.id)).credits == 2748


async def test_a_bad_idempotency_key_is_a_typed_error_naming_the_argument(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    result = await report(gql, demo.connector_keys["acme"], clock.now(), "with space")

    assert (result["__typename"], result["field"]) == ("InvalidInputError", "idempotencyKey")
    assert not await UsageReport.exists()
