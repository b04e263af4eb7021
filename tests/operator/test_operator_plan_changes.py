"""The vendor's change of plan (provisionEnvironment) goes into the plan history the invoices bill from, and
withdraws a downgrade the tenant had scheduled (issue 14).

The clock is 2026-11-23 12:00 UTC; nova (BRL, anchor day 10, erp-pro at 349.90) is in 2026-11-10..12-10:
17 days left counting today.
"""

from __future__ import annotations

from decimal import Decimal

from app.models.billing import PlanChange, PlanSubscription
from app.models.enums import PlanChangeKind, PlanChangeSource, PlanChangeStatus
from app.seed import SeedResult
from tests.api.test_plan_changes import MY_PLAN, NOVA, change, invoice, lines_of
from tests.conftest import GraphQLClient
from tests.operator.conftest import OperatorClient
from tests.operator.test_provisioning import PROVISION, WRITE

NOVA_INPUT = {"slug": "nova", "name": "Nova Distribuidora", "currency": "BRL"}


async def test_an_operator_change_is_billed_from_its_day_and_withdraws_a_scheduled_downgrade(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    scheduled = await change(gql, "erp-start", "down-1", NOVA)
    assert scheduled["planChange"]["status"] == "SCHEDULED"

    body = await operator.post(PROVISION, {"input": {**NOVA_INPUT, "planCode": "storefront-l"}}, scopes=WRITE)

    assert body["data"]["provisionEnvironment"]["changedFields"] == ["planCode"], body
    rows = {row.source: row for row in await PlanChange.all()}
    assert rows[PlanChangeSource.TENANT].status == PlanChangeStatus.CANCELLED
    by_operator = rows[PlanChangeSource.OPERATOR]
    assert (by_operator.kind, by_operator.status, by_operator.change_fee) == (
        PlanChangeKind.UPGRADE,
        PlanChangeStatus.APPLIED,
        Decimal("0.00"),
    )
    assert (by_operator.from_code, by_operator.from_unit_price) == ("erp-pro", Decimal("349.90"))
    assert (by_operator.to_code, by_operator.to_unit_price) == ("storefront-l", Decimal("999.00"))
    assert (await PlanSubscription.get(tenant__slug="nova")).pending_change_id is None
    plan = (await gql.post(MY_PLAN, as_=NOVA))["data"]["myPlan"]
    assert (plan["plan"]["code"], plan["pendingPlanChange"]) == ("storefront-l", None)
    # (999.00 - 349.90) x 17 / 30 = 367.823...; no fee for the vendor's change.
    assert lines_of(await invoice(gql, NOVA))[:2] == [
        ("PLAN", "erp-pro", 30, "349.90"),
        ("PLAN_CHANGE", "storefront-l", 17, "367.82"),
    ]
    assert lines_of(await invoice(gql, NOVA, "2026-12"))[0] == ("PLAN", "storefront-l", 31, "999.00")


async def test_an_operator_update_without_a_new_plan_records_no_change(
    operator: OperatorClient, gql: GraphQLClient, demo: SeedResult
) -> None:
    body = await operator.post(
        PROVISION,
        {"input": {**NOVA_INPUT, "name": "Nova Distribuidora S.A.", "planCode": "erp-pro"}},
        scopes=WRITE,
    )

    assert body["data"]["provisionEnvironment"]["changedFields"] == ["name"], body
    assert await PlanChange.all().count() == 0
