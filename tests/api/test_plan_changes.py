"""Changing the plan over GraphQL: planChangePreview, changePlan, cancelPlanChange, MyPlan.pendingPlanChange,
the task that applies scheduled downgrades, concurrency and idempotency (SQLite and PostgreSQL).

The clock is 2026-11-23 12:00 UTC. acme (EUR, anchor day 1, storefront-m at 79.00) is in the period
2026-11-01..12-01 (30 days, 8 left counting today): an upgrade to storefront-l (199.00) adds
120.00 x 8 / 30 = 32.00 to this period's invoice. nova (BRL, anchor day 10, erp-pro at 349.90, with
users-5, Mercado Livre and 2 x extra-tax-id, which erp-start also sells) is in 2026-11-10..12-10: a
downgrade to erp-start (149.90) takes effect at 2026-12-10 00:00.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

from app.i18n import Locale
from app.models.audit import AuditEntry
from app.models.billing import AddOnSubscription, PlanChange, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.models.enums import PlanChangeKind, PlanChangeSource, PlanChangeStatus
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant
from app.models.usage import TenantUsage
from app.models.webhooks import WebhookEvent
from app.seed import SeedResult
from app.services import lifecycle, plan_changes
from tests.conftest import GraphQLClient
from tests.emails import day, language_of, says
from tests.emails import money as formatted

ACME = "admin@acme.test"
NOVA = "admin@nova.test"
NOVA_MEMBER = "member@nova.test"
NOVA_ENDS = dt.datetime(2026, 12, 10, tzinfo=dt.UTC)
RACERS = 6
ERROR = "__typename ... on Error { code message field }"
MONEY = "{ amount currency }"
CHANGE = f"""
id kind status source requestedBy requestedAt effectiveAt appliedAt cancelledAt changeFee {MONEY}
fromPlan {{ code name monthlyPrice {MONEY} }} toPlan {{ code name monthlyPrice {MONEY} }}
"""
MY_PLAN_FIELDS = f"""
plan {{ code }} monthlyTotal {MONEY} effectiveLimits {{ users integrations credits }}
pendingPlanChange {{ {CHANGE} }}
"""
INVOICE = f"invoice {{ period {{ name }} lines {{ kind code days amount {MONEY} }} total {MONEY} }}"
CONFLICTS = "conflicts { kind used limit addOnCode message }"
PREVIEW = f"""
query($code: String!) {{
  planChangePreview(planCode: $code) {{
    {ERROR}
    ... on PlanChangePendingError {{ pendingPlanChange {{ id }} }}
    ... on PlanChangePreview {{
      kind effectiveAt changeFee {MONEY} {CONFLICTS} {INVOICE}
      currentPlan {{ code monthlyPrice {MONEY} }} newPlan {{ code monthlyPrice {MONEY} }}
      currentMonthlyTotal {MONEY} newMonthlyTotal {MONEY}
    }}
  }}
}}
"""
CHANGE_PLAN = f"""
mutation($code: String!, $key: String!) {{
  changePlan(planCode: $code, idempotencyKey: $key) {{
    {ERROR}
    ... on PlanChangeConflictsError {{ {CONFLICTS} }}
    ... on PlanChangePendingError {{ pendingPlanChange {{ id }} }}
    ... on ChangePlanSuccess {{ replayed planChange {{ {CHANGE} }} myPlan {{ {MY_PLAN_FIELDS} }} }}
  }}
}}
"""
CANCEL = f"""
mutation($key: String) {{
  cancelPlanChange(idempotencyKey: $key) {{
    {ERROR}
    ... on CancelPlanChangeSuccess {{ planChange {{ {CHANGE} }} myPlan {{ {MY_PLAN_FIELDS} }} }}
  }}
}}
"""
MY_PLAN = f"{{ myPlan {{ ... on MyPlan {{ {MY_PLAN_FIELDS} }} }} }}"
INVOICE_PREVIEW = f"""
query($period: String) {{
  invoicePreview(period: $period) {{
    ... on InvoicePreview {{ period {{ name }} lines {{ kind code days amount {MONEY} }} total {MONEY} }}
  }}
}}
"""


async def plan_names(locale: Locale, from_code: str, to_code: str) -> dict[str, str]:
    """The two plans' names as an e-mail in ``locale`` names them."""
    plans = {plan.code: plan for plan in await Plan.filter(code__in=[from_code, to_code])}
    return {
        field: plans[code].names.get(locale.value) or plans[code].name
        for field, code in (("from_name", from_code), ("to_name", to_code))
    }


async def preview(gql: GraphQLClient, code: str, as_: str = ACME) -> dict[str, Any]:
    body = await gql.post(PREVIEW, {"code": code}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["planChangePreview"]
    return result


async def change(gql: GraphQLClient, code: str, key: str, as_: str = ACME) -> dict[str, Any]:
    body = await gql.post(CHANGE_PLAN, {"code": code, "key": key}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["changePlan"]
    return result


async def cancel(gql: GraphQLClient, key: str | None = None, as_: str = NOVA) -> dict[str, Any]:
    body = await gql.post(CANCEL, {"key": key}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["cancelPlanChange"]
    return result


async def my_plan(gql: GraphQLClient, as_: str) -> dict[str, Any]:
    body = await gql.post(MY_PLAN, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["myPlan"]
    return result


async def invoice(gql: GraphQLClient, as_: str, period: str | None = None) -> dict[str, Any]:
    body = await gql.post(INVOICE_PREVIEW, {"period": period}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["invoicePreview"]
    return result


def lines_of(invoice: dict[str, Any]) -> list[tuple[str, str, int | None, str]]:
    return [(line["kind"], line["code"], line["days"], line["amount"]["amount"]) for line in invoice["lines"]]


async def set_fee(code: str, fees: dict[str, str]) -> None:
    await Plan.filter(code=code).update(change_fees=fees)


async def tenant_id(slug: str) -> Any:
    return (await Tenant.get(slug=slug)).id


# --- Upgrade -------------------------------------------------------------------------------------


async def test_an_upgrade_preview_shows_the_prorated_difference_and_the_fee(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await set_fee("storefront-l", {"EUR": "49.00", "BRL": "249.00"})

    shown = await preview(gql, "storefront-l")

    assert shown["__typename"] == "PlanChangePreview"
    assert shown["kind"] == "UPGRADE"
    assert shown["effectiveAt"] == "2026-11-23T12:00:00+00:00"
    assert shown["changeFee"] == {"amount": "49.00", "currency": "EUR"}
    assert shown["conflicts"] == []
    assert shown["currentPlan"]["monthlyPrice"]["amount"] == "79.00"
    assert shown["newPlan"]["monthlyPrice"]["amount"] == "199.00"
    # storage-10gb 19.00 + credits-1000 25.00 + the free dashboard: 79 + 44 now, 199 + 44 after.
    assert shown["currentMonthlyTotal"]["amount"] == "123.00"
    assert shown["newMonthlyTotal"]["amount"] == "243.00"
    lines = lines_of(shown["invoice"])
    assert shown["invoice"]["period"]["name"] == "2026-11"
    assert lines[:3] == [
        ("PLAN", "storefront-m", 30, "79.00"),
        ("PLAN_CHANGE", "storefront-l", 8, "32.00"),
        ("CHANGE_FEE", "storefront-l", None, "49.00"),
    ]
    # A preview changes nothing.
    assert await PlanChange.all().count() == 0
    assert lines_of(await invoice(gql, ACME))[:2] != lines[:2]


async def test_an_upgrade_applies_at_once_and_is_billed_once(gql: GraphQLClient, demo: SeedResult) -> None:
    await set_fee("storefront-l", {"EUR": "49.00"})

    result = await change(gql, "storefront-l", "up-1")

    assert result["__typename"] == "ChangePlanSuccess", result
    assert result["replayed"] is False
    applied = result["planChange"]
    assert (applied["kind"], applied["status"], applied["source"]) == ("UPGRADE", "APPLIED", "TENANT")
    assert applied["requestedBy"] == ACME
    assert applied["fromPlan"]["code"] == "storefront-m"
    assert applied["toPlan"] == {
        "code": "storefront-l",
        "name": "Storefront L",
        "monthlyPrice": {"amount": "199.00", "currency": "EUR"},
    }
    assert applied["changeFee"]["amount"] == "49.00"
    assert applied["appliedAt"] == applied["effectiveAt"] == "2026-11-23T12:00:00+00:00"
    plan = result["myPlan"]
    assert plan["plan"]["code"] == "storefront-l"
    # storefront-l: 15 users, 5 integrations, 10,000 credits (+ credits-1000).
    assert plan["effectiveLimits"] == {"users": 15, "integrations": 5, "credits": 11000}
    assert plan["monthlyTotal"]["amount"] == "243.00"
    assert plan["pendingPlanChange"] is None

    this_period = lines_of(await invoice(gql, ACME))
    assert this_period[:3] == [
        ("PLAN", "storefront-m", 30, "79.00"),
        ("PLAN_CHANGE", "storefront-l", 8, "32.00"),
        ("CHANGE_FEE", "storefront-l", None, "49.00"),
    ]
    next_period = lines_of(await invoice(gql, ACME, "2026-12"))
    assert next_period[0] == ("PLAN", "storefront-l", 31, "199.00")
    assert [line for line in next_period if line[0] in ("PLAN_CHANGE", "CHANGE_FEE")] == []

    subscription = await PlanSubscription.get(tenant_id=await tenant_id("acme")).select_related("plan")
    assert (subscription.plan.code, subscription.unit_price) == ("storefront-l", Decimal("199.00"))
    audit = await AuditEntry.get(action="plan_change.upgrade")
    assert audit.actor == ACME
    assert audit.details["to_plan"] == "storefront-l"
    emails = await OutboxEmail.filter(to_address=ACME)
    assert [email.kind for email in emails] == ["plan_upgraded"]
    locale = language_of(emails[0])
    assert emails[0].subject == says(
        locale,
        "Plan changed: %(from_name)s to %(to_name)s",
        **await plan_names(locale, "storefront-m", "storefront-l"),
    )
    assert formatted("49.00", "EUR", locale) in emails[0].body
    assert formatted("49.00", "EUR", locale) in str(emails[0].html_body)
    events = await WebhookEvent.filter(tenant_id=await tenant_id("acme")).order_by("id")
    assert [event.event_type for event in events] == ["plan.changed", "limits.changed"]
    assert events[0].payload["data"]["from_plan_code"] == "storefront-m"
    assert events[0].payload["data"]["to_plan_code"] == "storefront-l"


async def test_a_retry_with_the_same_key_returns_the_same_change(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    first = await change(gql, "storefront-l", "up-1")
    again = await change(gql, "storefront-l", "up-1")

    assert again["__typename"] == "ChangePlanSuccess"
    assert again["replayed"] is True
    assert again["planChange"]["id"] == first["planChange"]["id"]
    assert await PlanChange.all().count() == 1
    assert await OutboxEmail.all().count() == 1

    reused = await change(gql, "storefront-s", "up-1")
    assert (reused["__typename"], reused["code"]) == ("IdempotencyKeyReusedError", "IDEMPOTENCY_KEY_REUSED")


async def test_two_admins_at_once_make_one_change(gql: GraphQLClient, demo: SeedResult) -> None:
    await gql.token_for(ACME)

    results = await asyncio.gather(*(change(gql, "storefront-l", f"race-{n}") for n in range(RACERS)))

    assert Counter(r["__typename"] for r in results) == {
        "ChangePlanSuccess": 1,
        "PlanUnchangedError": RACERS - 1,
    }
    assert await PlanChange.all().count() == 1
    assert await AuditEntry.filter(action="plan_change.upgrade").count() == 1


async def test_the_same_key_at_once_makes_one_change(gql: GraphQLClient, demo: SeedResult) -> None:
    await gql.token_for(ACME)

    results = await asyncio.gather(*(change(gql, "storefront-l", "same") for _ in range(RACERS)))

    assert {r["__typename"] for r in results} == {"ChangePlanSuccess"}
    assert sorted(r["replayed"] for r in results) == [False] + [True] * (RACERS - 1)
    assert len({r["planChange"]["id"] for r in results}) == 1
    assert await PlanChange.all().count() == 1


# --- Downgrade -----------------------------------------------------------------------------------


async def test_a_downgrade_that_does_not_fit_is_refused_with_each_conflict(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    nova = await Tenant.get(slug="nova")
    fiscal = await AddOn.get(code="fiscal-bookkeeping")
    await AddOnSubscription.create(
        tenant=nova,
        add_on=fiscal,
        quantity=1,
        unit_price=Decimal("119.90"),
        currency="BRL",
        contracted_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )
    # erp-start: 3 users (+5 users-5) and 1 integration (+1 Mercado Livre), 1,000 credits.
    await TenantUsage.create(tenant=nova, users=9, integrations=2, variants=1200, credits=1200)

    shown = await preview(gql, "erp-start", NOVA)
    refused = await change(gql, "erp-start", "down-1", NOVA)

    assert shown["kind"] == "DOWNGRADE"
    expected = [
        ("CREDITS", 1200, 1000, None),
        ("USERS", 9, 8, None),
        ("ADD_ON", None, None, "fiscal-bookkeeping"),
    ]
    assert [(c["kind"], c["used"], c["limit"], c["addOnCode"]) for c in shown["conflicts"]] == expected
    assert refused["__typename"] == "PlanChangeConflictsError"
    assert refused["code"] == "PLAN_CHANGE_CONFLICTS"
    assert [(c["kind"], c["used"], c["limit"], c["addOnCode"]) for c in refused["conflicts"]] == expected
    assert "Fiscal" in refused["message"]
    assert "cancel it first" in refused["message"]
    assert await PlanChange.all().count() == 0
    assert await OutboxEmail.all().count() == 0


async def test_an_add_on_ending_by_then_neither_counts_nor_conflicts(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    nova = await Tenant.get(slug="nova")
    await AddOnSubscription.create(
        tenant=nova,
        add_on=await AddOn.get(code="fiscal-bookkeeping"),
        quantity=1,
        unit_price=Decimal("119.90"),
        currency="BRL",
        contracted_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        ends_at=NOVA_ENDS,
    )
    users5 = await AddOnSubscription.get(tenant=nova, add_on__code="users-5")
    users5.ends_at = NOVA_ENDS
    await users5.save()
    await TenantUsage.create(tenant=nova, users=4)

    shown = await preview(gql, "erp-start", NOVA)

    # Without users-5 at the end of the period, erp-start allows 3 users; the fiscal add-on is gone by then.
    assert [(c["kind"], c["used"], c["limit"]) for c in shown["conflicts"]] == [("USERS", 4, 3)]


async def test_a_fitting_downgrade_is_scheduled_shown_and_cancellable(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    shown = await preview(gql, "erp-start", NOVA)
    assert shown["conflicts"] == []
    assert shown["effectiveAt"] == "2026-12-10T00:00:00+00:00"
    assert shown["invoice"]["period"]["name"] == "2026-12"
    assert lines_of(shown["invoice"])[0] == ("PLAN", "erp-start", 31, "149.90")

    result = await change(gql, "erp-start", "down-1", NOVA)

    assert result["__typename"] == "ChangePlanSuccess", result
    scheduled = result["planChange"]
    assert (scheduled["kind"], scheduled["status"], scheduled["appliedAt"]) == (
        "DOWNGRADE",
        "SCHEDULED",
        None,
    )
    assert scheduled["effectiveAt"] == "2026-12-10T00:00:00+00:00"
    plan = result["myPlan"]
    assert plan["plan"]["code"] == "erp-pro"  # until the end of the period
    assert plan["pendingPlanChange"]["id"] == scheduled["id"]
    assert (await my_plan(gql, NOVA))["pendingPlanChange"]["toPlan"]["code"] == "erp-start"
    # This period stays on erp-pro; the next is on erp-start.
    assert lines_of(await invoice(gql, NOVA))[0] == ("PLAN", "erp-pro", 30, "349.90")
    assert lines_of(await invoice(gql, NOVA, "2026-12"))[0] == ("PLAN", "erp-start", 31, "149.90")
    [email] = await OutboxEmail.filter(to_address=NOVA)
    locale = language_of(email)
    assert (email.kind, email.subject) == (
        "plan_change_scheduled",
        says(
            locale,
            "Plan change scheduled: %(from_name)s to %(to_name)s on %(day)s",
            day=day("2026-12-10", locale),
            **await plan_names(locale, "erp-pro", "erp-start"),
        ),
    )
    assert await AuditEntry.filter(action="plan_change.schedule").count() == 1

    pending = await change(gql, "storefront-l", "up-2", NOVA)
    assert pending["__typename"] == "PlanChangePendingError"
    assert pending["pendingPlanChange"]["id"] == scheduled["id"]

    withdrawn = await cancel(gql, "c-1")
    assert withdrawn["__typename"] == "CancelPlanChangeSuccess", withdrawn
    assert withdrawn["planChange"]["status"] == "CANCELLED"
    assert withdrawn["myPlan"]["pendingPlanChange"] is None
    assert (await cancel(gql, "c-1"))["planChange"]["id"] == scheduled["id"]  # a retry: same answer
    nothing = await cancel(gql)
    assert (nothing["__typename"], nothing["code"]) == ("NoPlanChangePendingError", "NO_PLAN_CHANGE_PENDING")
    assert lines_of(await invoice(gql, NOVA, "2026-12"))[0] == ("PLAN", "erp-pro", 31, "349.90")
    assert await AuditEntry.filter(action="plan_change.cancel").count() == 1
    # The member may not cancel.
    assert (await cancel(gql, as_=NOVA_MEMBER))["code"] == "NOT_ADMIN"


async def test_a_scheduled_downgrade_applies_at_the_period_end(gql: GraphQLClient, demo: SeedResult) -> None:
    await set_fee("erp-start", {"BRL": "99.00"})
    await change(gql, "erp-start", "down-1", NOVA)

    gql.clock.set(NOVA_ENDS)
    # In force before the task ran: the limits follow the clock.
    before_task = await my_plan(gql, NOVA)
    assert before_task["plan"]["code"] == "erp-start"
    assert before_task["pendingPlanChange"] is None
    assert before_task["effectiveLimits"] == {"users": 8, "integrations": 2, "credits": 1000}
    # The app's periodic lifecycle task applies it, once.
    assert await lifecycle.AddOnLifecycleTask(clock=gql.clock).run_once() == 1
    assert await plan_changes.apply_due_plan_changes(gql.clock.now()) == 0

    subscription = await PlanSubscription.get(tenant_id=await tenant_id("nova")).select_related("plan")
    assert (subscription.plan.code, subscription.unit_price, subscription.pending_change_id) == (
        "erp-start",
        Decimal("149.90"),
        None,
    )
    stored = await PlanChange.get()
    assert (stored.status, stored.applied_at) == (PlanChangeStatus.APPLIED, NOVA_ENDS)
    lines = lines_of(await invoice(gql, NOVA))
    assert lines[0] == ("PLAN", "erp-start", 31, "149.90")
    assert ("CHANGE_FEE", "erp-start", None, "99.00") in lines
    assert not [line for line in lines if line[0] == "PLAN_CHANGE"]
    [applied] = await OutboxEmail.filter(to_address=NOVA, kind="plan_change_applied")
    locale = language_of(applied)
    names = await plan_names(locale, "erp-pro", "erp-start")
    assert applied.subject == says(locale, "Plan changed today: %(from_name)s to %(to_name)s", **names)
    assert await AuditEntry.filter(action="plan_change.apply", actor="system").count() == 1
    events = [
        e.event_type for e in await WebhookEvent.filter(tenant_id=await tenant_id("nova")).order_by("id")
    ]
    assert events == ["plan.changed", "limits.changed"]
    assert (await my_plan(gql, NOVA))["plan"]["code"] == "erp-start"


async def test_two_admins_downgrading_at_once_schedule_one_change(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await gql.token_for(NOVA)

    results = await asyncio.gather(*(change(gql, "erp-start", f"race-{n}", NOVA) for n in range(RACERS)))

    assert Counter(r["__typename"] for r in results) == {
        "ChangePlanSuccess": 1,
        "PlanChangePendingError": RACERS - 1,
    }
    assert await PlanChange.filter(status=PlanChangeStatus.SCHEDULED).count() == 1


async def test_applying_from_several_places_at_once_applies_once(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await change(gql, "erp-start", "down-1", NOVA)

    counts = await asyncio.gather(*(plan_changes.apply_due_plan_changes(NOVA_ENDS) for _ in range(4)))

    assert sorted(counts) == [0, 0, 0, 1]
    assert await AuditEntry.filter(action="plan_change.apply").count() == 1


# --- Bad input -----------------------------------------------------------------------------------


async def test_bad_plan_codes_and_keys_get_typed_errors(gql: GraphQLClient, demo: SeedResult) -> None:
    assert (await preview(gql, "storefront-m"))["code"] == "PLAN_UNCHANGED"
    for hostile in ("", "x" * 10_000, "storefront-l\x00", "'; drop table plan; --", "nope"):
        shown = await preview(gql, hostile)
        assert (shown["code"], shown["field"]) == ("NOT_FOUND", "planCode"), hostile
        assert len(shown["message"]) < 120
    assert (await change(gql, "storefront-l", ""))["code"] == "INVALID_INPUT"
    assert (await change(gql, "storefront-l", "k" * 129))["code"] == "INVALID_INPUT"
    await Plan.filter(code="storefront-l").update(is_active=False)
    assert (await preview(gql, "storefront-l"))["code"] == "PLAN_UNAVAILABLE"
    await Plan.filter(code="storefront-s").update(prices={"BRL": "199.00"})
    assert (await preview(gql, "storefront-s"))["code"] == "CURRENCY_NOT_PRICED"
    assert (await preview(gql, "storefront-l", as_="member@acme.test"))["code"] == "NOT_ADMIN"
    assert await PlanChange.all().count() == 0


# --- Operator changes ----------------------------------------------------------------------------


async def test_an_operator_change_is_recorded_and_withdraws_a_scheduled_one(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await change(gql, "erp-start", "down-1", NOVA)
    nova = await Tenant.get(slug="nova")
    subscription = await PlanSubscription.get(tenant=nova)

    await plan_changes.record_operator_change(
        nova,
        subscription,
        await Plan.get(code="storefront-l"),
        new_price=Decimal("999.00"),
        now=gql.clock.now(),
    )

    rows = await PlanChange.all().order_by("requested_at", "source")
    by_source = {row.source: row for row in rows}
    assert by_source[PlanChangeSource.TENANT].status == PlanChangeStatus.CANCELLED
    operator = by_source[PlanChangeSource.OPERATOR]
    assert (operator.kind, operator.status, operator.change_fee) == (
        PlanChangeKind.UPGRADE,
        PlanChangeStatus.APPLIED,
        Decimal("0.00"),
    )
    assert (await PlanSubscription.get(tenant=nova)).pending_change_id is None
