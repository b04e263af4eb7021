"""Cancelling an add-on over GraphQL: cancellationPreview, cancelAddOn, undoCancellation, the end date
computed from the clock, the "disabled today" e-mail sent once, concurrency (SQLite and PostgreSQL).

The clock is 2026-11-23 12:00 UTC. acme (EUR, anchor day 1, storefront-m: 3,000 credits, 5 users,
2 integrations, OVERAGE storage) is in the period 2026-11-01..12-01: a cancelled add-on stays until
2026-11-30 and ends at 2026-12-01 00:00. Its add-ons: storage-10gb, the free sales dashboard and
credits-1000 (effective credits 4,000, storage 20 GiB). nova (BRL, anchor day 10, erp-pro: 10
users + users-5, 3 integrations + Mercado Livre) is in 2026-11-10..12-10.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from app.clock import FrozenClock
from app.main import create_app
from app.models.audit import AuditEntry
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn
from app.models.enums import AddOnStatus, PlanSubscriptionStatus, Role
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant, User
from app.models.usage import TenantUsage
from app.resolvers.ids import global_id, key_of
from app.seed import SeedResult
from app.services import lifecycle
from app.settings import Settings
from tests.conftest import GraphQLClient, count_queries
from tests.emails import about, add_on_name, day, html_of, is_about, language_of, says, subject_of, text_of
from tests.smtp import SmtpServer

ACME = "admin@acme.test"
NOVA = "admin@nova.test"
RACERS = 8
ENDS_AT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
ERROR = "__typename ... on Error { code message field }"
ACTIVE = "id name status endsAt availableUntil addOn { code }"
WARNINGS = "warnings { kind message used limitNow limitAfter requiredByAddOnCodes }"
PLAN = f"id effectiveLimits {{ storageBytes users integrations credits }} activeAddOns {{ {ACTIVE} }}"
PREVIEW = f"""
query($id: ID!) {{
  cancellationPreview(activeAddOnId: $id) {{
    {ERROR}
    ... on CancellationPreview {{
      id availableUntil endsAt period {{ name start end }} activeAddOn {{ {ACTIVE} }} {WARNINGS}
    }}
  }}
}}
"""
CANCEL = f"""
mutation($id: ID!) {{
  cancelAddOn(activeAddOnId: $id) {{
    {ERROR}
    ... on AddOnAlreadyCancelledError {{ endsAt availableUntil }}
    ... on AddOnEndedError {{ endedAt }}
    ... on CancelAddOnSuccess {{
      availableUntil endsAt activeAddOn {{ {ACTIVE} }} {WARNINGS} myPlan {{ {PLAN} }}
    }}
  }}
}}
"""
UNDO = f"""
mutation($id: ID!) {{
  undoCancellation(activeAddOnId: $id) {{
    {ERROR}
    ... on AddOnEndedError {{ endedAt }}
    ... on UndoCancellationSuccess {{ activeAddOn {{ {ACTIVE} }} myPlan {{ {PLAN} }} }}
  }}
}}
"""
MY_PLAN = f"{{ myPlan {{ ... on MyPlan {{ {PLAN} }} }} }}"


async def add_on_id(code: str, tenant: str = "acme") -> str:
    """The ``ActiveAddOn.id`` of the tenant's subscription to ``code``, as My plan shows it."""
    return global_id("ActiveAddOn", await subscription_key(code, tenant))


async def subscription_key(code: str, tenant: str = "acme") -> str:
    return str((await AddOnSubscription.get(add_on__code=code, tenant__slug=tenant)).id)


def key(active_add_on_id: str) -> str:
    """The subscription an ``ActiveAddOn.id`` names, to check the database."""
    return key_of(active_add_on_id, "ActiveAddOn", field="id")


async def stored_add_on(active_add_on_id: str) -> AddOnSubscription:
    return await AddOnSubscription.get(id=key(active_add_on_id))


async def call(
    gql: GraphQLClient, document: str, field: str, add_on: str, *, as_: str = ACME
) -> dict[str, Any]:
    body = await gql.post(document, {"id": add_on}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field]
    return result


async def cancel(gql: GraphQLClient, add_on: str, *, as_: str = ACME) -> dict[str, Any]:
    return await call(gql, CANCEL, "cancelAddOn", add_on, as_=as_)


async def preview(gql: GraphQLClient, add_on: str, *, as_: str = ACME) -> dict[str, Any]:
    return await call(gql, PREVIEW, "cancellationPreview", add_on, as_=as_)


async def undo(gql: GraphQLClient, add_on: str, *, as_: str = ACME) -> dict[str, Any]:
    return await call(gql, UNDO, "undoCancellation", add_on, as_=as_)


async def my_plan(gql: GraphQLClient, *, as_: str = ACME) -> dict[str, Any]:
    result: dict[str, Any] = (await gql.post(MY_PLAN, as_=as_))["data"]["myPlan"]
    return result


async def report_usage(tenant: str, **counts: int) -> None:
    """What the connector's reportUsage leaves behind; this issue only reads it."""
    await TenantUsage.create(tenant=await Tenant.get(slug=tenant), **counts)


async def add_second_admin(tenant: str = "acme") -> None:
    await User.create(
        tenant=await Tenant.get(slug=tenant),
        email=f"boss@{tenant}.test",
        name="Second admin",
        role=Role.ADMIN,
    )


# --- Preview -----------------------------------------------------------------------------------


async def test_preview_tells_until_when_the_add_on_stays_available_and_changes_nothing(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    credits = await add_on_id("credits-1000")

    result = await preview(gql, credits)

    assert result["__typename"] == "CancellationPreview"
    assert (result["availableUntil"], result["endsAt"]) == ("2026-11-30", "2026-12-01T00:00:00+00:00")
    assert result["period"] == {"name": "2026-11", "start": "2026-11-01", "end": "2026-12-01"}
    assert result["activeAddOn"]["status"] == "ACTIVE"
    assert result["warnings"] == []
    assert (await stored_add_on(credits)).ends_at is None
    assert not await AuditEntry.exists()
    assert not await OutboxEmail.exists()


async def test_the_end_date_follows_the_tenants_billing_anchor_day(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    result = await preview(gql, await add_on_id("users-5", "nova"), as_=NOVA)
    assert (result["availableUntil"], result["endsAt"]) == ("2026-12-09", "2026-12-10T00:00:00+00:00")


async def test_preview_warns_when_losing_credits_would_put_usage_over_the_limit(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    # 1,500 + 900 + 700 + 5 + 3 = 3,108 credits used: within 4,000, above the plan's 3,000.
    await report_usage("acme", variants=1500, customers=900, contacts=700, sales_reps=5, admin_users=3)

    result = await preview(gql, await add_on_id("credits-1000"))

    [warning] = result["warnings"]
    assert {k: warning[k] for k in ("kind", "used", "limitNow", "limitAfter")} == {
        "kind": "CREDITS",
        "used": 3108,
        "limitNow": 4000,
        "limitAfter": 3000,
    }
    assert "no sync process" in warning["message"]
    # The storage pack adds no credits: losing it warns about nothing here.
    assert (await preview(gql, await add_on_id("storage-10gb")))["warnings"] == []


async def test_preview_warns_about_storage_in_bytes_and_says_it_will_be_billed_as_overage(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await report_usage("acme", storage_bytes=15 * 1024**3 + 1)

    result = await preview(gql, await add_on_id("storage-10gb"))

    [warning] = result["warnings"]
    assert (warning["kind"], warning["used"], warning["limitNow"], warning["limitAfter"]) == (
        "STORAGE",
        15 * 1024**3 + 1,  # bytes, exactly as reported
        20 * 1024**3,
        10 * 1024**3,
    )
    # People read megabytes (rounded up): the message says so.
    assert "drops to 10240 MB while 15361 MB are in use" in warning["message"]
    assert "overage" in warning["message"]


async def test_storage_just_above_the_limit_left_warns_by_one_byte(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    await report_usage("acme", storage_bytes=10 * 1024**3)
    assert (await preview(gql, await add_on_id("storage-10gb")))["warnings"] == []

    await TenantUsage.filter(tenant_id=(await Tenant.get(slug="acme")).id).update(
        storage_bytes=10 * 1024**3 + 1
    )
    [warning] = (await preview(gql, await add_on_id("storage-10gb")))["warnings"]
    assert (warning["used"], warning["limitAfter"]) == (10 * 1024**3 + 1, 10 * 1024**3)


async def test_preview_warns_about_users_and_integrations(gql: GraphQLClient, demo: SeedResult) -> None:
    await report_usage("nova", users=12, integrations=4)

    users = await preview(gql, await add_on_id("users-5", "nova"), as_=NOVA)
    integration = await preview(gql, await add_on_id("integration-mercado-livre", "nova"), as_=NOVA)

    assert [(w["kind"], w["used"], w["limitNow"], w["limitAfter"]) for w in users["warnings"]] == [
        ("USERS", 12, 15, 10)
    ]
    assert [(w["kind"], w["used"], w["limitNow"], w["limitAfter"]) for w in integration["warnings"]] == [
        ("INTEGRATIONS", 4, 4, 3)
    ]


async def test_no_warning_while_usage_still_fits_the_limit_left(gql: GraphQLClient, demo: SeedResult) -> None:
    await report_usage("nova", users=10, integrations=3)
    assert (await preview(gql, await add_on_id("users-5", "nova"), as_=NOVA))["warnings"] == []
    mercado_livre = await add_on_id("integration-mercado-livre", "nova")
    assert (await preview(gql, mercado_livre, as_=NOVA))["warnings"] == []


async def test_preview_warns_when_another_add_on_requires_it(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    nova = await Tenant.get(slug="nova")
    for code in ("fiscal-bookkeeping", "make-to-order"):
        add_on = await AddOn.get(code=code)
        await AddOnSubscription.create(
            tenant=nova, add_on=add_on, unit_price=Decimal(add_on.prices["BRL"]), currency="BRL",
            contracted_at=clock.now() - dt.timedelta(days=2),
        )  # fmt: skip

    result = await preview(gql, await add_on_id("fiscal-bookkeeping", "nova"), as_=NOVA)

    [warning] = result["warnings"]
    assert (warning["kind"], warning["requiredByAddOnCodes"], warning["used"]) == (
        "REQUIRED_BY",
        ["make-to-order"],
        None,
    )


# --- Cancel ------------------------------------------------------------------------------------


async def test_cancel_records_the_end_date_emails_every_admin_and_audits(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    await add_second_admin()
    credits = await add_on_id("credits-1000")

    result = await cancel(gql, credits)

    assert result["__typename"] == "CancelAddOnSuccess"
    assert (result["availableUntil"], result["endsAt"]) == ("2026-11-30", "2026-12-01T00:00:00+00:00")
    assert (result["activeAddOn"]["status"], result["activeAddOn"]["availableUntil"]) == (
        "CANCELLING",
        "2026-11-30",
    )
    # The payload's My plan is the one a read now returns: the client needs no refetch.
    plan = await my_plan(gql)
    assert result["myPlan"] == plan
    # My plan shows the disable date; it still counts until then.
    shown = next(a for a in plan["activeAddOns"] if a["id"] == credits)
    assert (shown["status"], shown["endsAt"], shown["availableUntil"]) == (
        "CANCELLING",
        "2026-12-01T00:00:00+00:00",
        "2026-11-30",
    )
    assert plan["effectiveLimits"]["credits"] == 4000
    stored = await stored_add_on(credits)
    assert (stored.status, stored.cancelled_at, stored.ends_at) == (
        AddOnStatus.CANCELLING,
        clock.now(),
        ENDS_AT,
    )
    entry = await AuditEntry.get(action="add_on.cancel")
    assert (entry.actor, entry.subject_id, entry.details["ends_at"]) == (
        ACME,
        key(credits),
        ENDS_AT.isoformat(),
    )

    assert await smtp_server.dispatcher(clock).run_once() == 2
    assert sorted(m["To"] for m in smtp_server.inbox.messages) == ["admin@acme.test", "boss@acme.test"]
    message = smtp_server.inbox.to("boss@acme.test")[0]
    locale = language_of(message)
    name = await add_on_name("credits-1000", locale)
    assert subject_of(message) == says(
        locale,
        "Add-on cancelled: %(name)s (available until %(day)s)",
        name=name,
        day=day("2026-11-30", locale),
    )
    body = text_of(message)
    assert day("2026-12-01", locale) in body
    assert says(
        locale, "%(actor)s cancelled the add-on %(name)s of %(tenant_name)s.", actor=ACME, name=name,
        tenant_name="Acme Storefront",
    ) in body  # fmt: skip
    assert day("2026-12-01", locale) in html_of(message)


async def test_moving_the_clock_past_the_end_date_removes_the_add_on_and_sends_one_email(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    credits = await add_on_id("credits-1000")
    await cancel(gql, credits)
    dispatcher = smtp_server.dispatcher(clock)
    await dispatcher.run_once()  # the cancellation e-mail
    clock.set(ENDS_AT - dt.timedelta(seconds=1))
    assert (await my_plan(gql))["effectiveLimits"]["credits"] == 4000

    clock.set(ENDS_AT)

    # Nothing has run: the limits follow the clock.
    plan = await my_plan(gql)
    assert plan["effectiveLimits"]["credits"] == 3000
    assert credits not in [a["id"] for a in plan["activeAddOns"]]
    assert (await preview(gql, credits))["__typename"] == "AddOnEndedError"
    # The periodic task sends "disabled today" once, however often it runs.
    task = lifecycle.AddOnLifecycleTask(clock=clock)
    assert await task.run_once() == 1
    assert await task.run_once() == 0
    clock.advance(dt.timedelta(days=3))
    assert await lifecycle.notify_ended_add_ons(clock.now()) == 0
    await dispatcher.run_once()
    await dispatcher.run_once()
    disabled = about(smtp_server.inbox.to(ACME), "Add-on disabled today: %(name)s")
    assert len(disabled) == 1
    locale = language_of(disabled[0])
    assert await add_on_name("credits-1000", locale) in subject_of(disabled[0])
    assert day("2026-12-01", locale) in text_of(disabled[0])
    assert (await stored_add_on(credits)).status == AddOnStatus.ENDED
    entry = await AuditEntry.get(action="add_on.end")
    assert (entry.actor, entry.subject_id) == ("system", key(credits))


async def test_the_periodic_task_in_the_apps_lifespan_sends_the_disabled_today_email(
    demo: SeedResult, clock: FrozenClock, settings: Settings, smtp_server: SmtpServer, gql: GraphQLClient
) -> None:
    await cancel(gql, await add_on_id("credits-1000"))
    clock.set(ENDS_AT + dt.timedelta(hours=1))
    settings.smtp_url = smtp_server.url
    settings.lifecycle_interval_seconds = 0.05
    app = create_app(settings, clock=clock, manage_orm=False, run_background_tasks=True)

    async with app.router.lifespan_context(app):
        for _ in range(200):
            if about(smtp_server.inbox.messages, "Add-on disabled today: %(name)s"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few more passes of both loops

    messages = smtp_server.inbox.messages
    assert len(about(messages, "Add-on disabled today: %(name)s")) == 1
    assert len(about(messages, "Add-on cancelled: %(name)s (available until %(day)s)")) == 1


async def test_cancelling_twice_is_a_typed_error_and_sends_no_second_email(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    credits = await add_on_id("credits-1000")
    await cancel(gql, credits)

    again = await cancel(gql, credits)

    assert (again["__typename"], again["code"], again["field"]) == (
        "AddOnAlreadyCancelledError",
        "ADD_ON_ALREADY_CANCELLED",
        "activeAddOnId",
    )
    assert "2026-11-30" in again["message"]
    # The error says until when, as data: no need to parse the message.
    assert (again["endsAt"], again["availableUntil"]) == ("2026-12-01T00:00:00+00:00", "2026-11-30")
    assert (await preview(gql, credits))["__typename"] == "AddOnAlreadyCancelledError"
    assert await OutboxEmail.all().count() == 1
    assert await AuditEntry.filter(action="add_on.cancel").count() == 1


async def test_two_concurrent_cancellations_one_wins_the_other_gets_a_typed_error(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    credits = await add_on_id("credits-1000")
    await gql.token_for(ACME)

    results = await asyncio.gather(*(cancel(gql, credits) for _ in range(RACERS)))

    assert Counter(r["__typename"] for r in results) == {
        "CancelAddOnSuccess": 1,
        "AddOnAlreadyCancelledError": RACERS - 1,
    }
    assert await AuditEntry.filter(action="add_on.cancel").count() == 1
    assert await OutboxEmail.all().count() == 1  # acme has one admin
    assert (await stored_add_on(credits)).ends_at == ENDS_AT


async def test_concurrent_cancel_and_undo_leave_a_consistent_add_on(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    credits = await add_on_id("credits-1000")
    await cancel(gql, credits)
    await gql.token_for(ACME)

    results = await asyncio.gather(*(undo(gql, credits) for _ in range(RACERS)))

    assert Counter(r["__typename"] for r in results) == {
        "UndoCancellationSuccess": 1,
        "AddOnNotCancelledError": RACERS - 1,
    }
    stored = await stored_add_on(credits)
    assert (stored.status, stored.ends_at, stored.cancelled_at) == (AddOnStatus.ACTIVE, None, None)


async def test_another_tenants_add_on_answers_exactly_like_an_unknown_id(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    novas = await add_on_id("users-5", "nova")
    unknown = global_id("ActiveAddOn", "00000000-0000-4000-8000-000000000000")
    for document, field in (
        (PREVIEW, "cancellationPreview"),
        (CANCEL, "cancelAddOn"),
        (UNDO, "undoCancellation"),
    ):
        answers = [await call(gql, document, field, add_on) for add_on in (novas, unknown)]
        assert answers[0] == answers[1]
        assert (answers[0]["__typename"], answers[0]["code"], answers[0]["field"]) == (
            "NotFoundError",
            "NOT_FOUND",
            "activeAddOnId",
        )
    stored = await stored_add_on(novas)
    assert (stored.status, stored.ends_at) == (AddOnStatus.ACTIVE, None)
    assert not await OutboxEmail.exists()


async def ids_of_other_types(gql: GraphQLClient, code: str) -> dict[str, str]:
    """Ids that are not the ``ActiveAddOn.id`` of acme's ``code``: the catalog add-on's id as the API shows
    it, ids of other types that carry the subscription's own key, the raw key, and garbage."""
    catalog = await gql.post("query($code: String!) { addOn(code: $code) { id } }", {"code": code})
    own_key = await subscription_key(code)
    return {
        "catalog AddOn.id": catalog["data"]["addOn"]["id"],
        "AddOn id with its key": global_id("AddOn", own_key),
        "Order id with its key": global_id("Order", own_key),
        "raw key": own_key,
        "garbage": "42",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("document", "field"),
    [(PREVIEW, "cancellationPreview"), (CANCEL, "cancelAddOn"), (UNDO, "undoCancellation")],
    ids=["preview", "cancel", "undo"],
)
async def test_an_id_of_another_type_is_not_found_and_nothing_is_cancelled(
    gql: GraphQLClient, demo: SeedResult, document: str, field: str
) -> None:
    credits = await add_on_id("credits-1000")
    if field == "undoCancellation":
        await cancel(gql, credits)  # something to undo, were the id taken

    for name, other in (await ids_of_other_types(gql, "credits-1000")).items():
        answer = await call(gql, document, field, other)
        assert (answer["__typename"], answer["code"], answer["field"]) == (
            "NotFoundError",
            "NOT_FOUND",
            "activeAddOnId",
        ), name

    stored = await stored_add_on(credits)
    expected = AddOnStatus.CANCELLING if field == "undoCancellation" else AddOnStatus.ACTIVE
    assert stored.status == expected
    assert await AuditEntry.filter(action__in=["add_on.cancel", "add_on.undo_cancellation"]).count() == (
        1 if field == "undoCancellation" else 0
    )


async def test_the_active_add_on_id_is_my_plans_and_stays_the_same(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    in_my_plan = {a["addOn"]["code"]: a["id"] for a in (await my_plan(gql))["activeAddOns"]}
    credits = in_my_plan["credits-1000"]

    previewed = await preview(gql, credits)
    cancelled = await cancel(gql, credits)
    undone = await undo(gql, credits)

    assert (
        previewed["activeAddOn"]["id"]
        == cancelled["activeAddOn"]["id"]
        == undone["activeAddOn"]["id"]
        == credits
    )
    assert previewed["id"] == (await preview(gql, credits))["id"]
    assert previewed["id"] not in (credits, (await preview(gql, in_my_plan["storage-10gb"]))["id"])


async def test_a_one_off_item_cannot_be_cancelled(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    start_pack = await AddOn.get(code="start-pack")
    subscription = await AddOnSubscription.create(
        tenant=await Tenant.get(slug="acme"), add_on=start_pack, unit_price=Decimal("490.00"), currency="EUR",
        contracted_at=clock.now() - dt.timedelta(days=1),
    )  # fmt: skip
    result = await cancel(gql, global_id("ActiveAddOn", subscription.id))
    assert (result["__typename"], result["code"]) == ("AddOnNotCancellableError", "ADD_ON_NOT_CANCELLABLE")


@pytest.mark.parametrize(
    ("caller", "typename"), [("member@acme.test", "NotAdminError"), ("admin@legacy.test", "NotEligibleError")]
)
async def test_only_admins_of_eligible_environments_cancel(
    gql: GraphQLClient, demo: SeedResult, caller: str, typename: str
) -> None:
    credits = await add_on_id("credits-1000")
    assert (await cancel(gql, credits, as_=caller))["__typename"] == typename
    assert (await preview(gql, credits, as_=caller))["__typename"] == typename
    assert (await undo(gql, credits, as_=caller))["__typename"] == typename
    assert (await stored_add_on(credits)).ends_at is None


async def test_cancelling_needs_credentials(gql: GraphQLClient, demo: SeedResult) -> None:
    body = await gql.post(CANCEL, {"id": await add_on_id("credits-1000")})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- Undo --------------------------------------------------------------------------------------


async def test_undo_before_the_end_date_keeps_the_add_on_counting(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    credits = await add_on_id("credits-1000")
    await cancel(gql, credits)
    clock.set(ENDS_AT - dt.timedelta(minutes=1))

    result = await undo(gql, credits)

    assert result["__typename"] == "UndoCancellationSuccess"
    active = result["activeAddOn"]
    assert (active["status"], active["endsAt"], active["availableUntil"]) == ("ACTIVE", None, None)
    # The payload's My plan shows it ACTIVE again, as a read now does.
    in_plan = next(a for a in result["myPlan"]["activeAddOns"] if a["id"] == credits)
    assert (in_plan["status"], in_plan["endsAt"]) == ("ACTIVE", None)
    assert result["myPlan"] == await my_plan(gql)
    clock.set(ENDS_AT + dt.timedelta(days=1))
    assert (await my_plan(gql))["effectiveLimits"]["credits"] == 4000
    assert await lifecycle.notify_ended_add_ons(clock.now()) == 0
    assert await AuditEntry.filter(action="add_on.undo_cancellation", subject_id=key(credits)).count() == 1
    await smtp_server.dispatcher(clock).run_once()
    cancelled, withdrawn = smtp_server.inbox.messages
    assert is_about(cancelled, "Add-on cancelled: %(name)s (available until %(day)s)")
    assert is_about(withdrawn, "Cancellation withdrawn: %(name)s")
    # It can be cancelled again, in the period it is in now.
    again = await cancel(gql, credits)
    assert again["availableUntil"] == "2026-12-31"


async def test_undo_after_the_end_date_is_refused(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    credits = await add_on_id("credits-1000")
    await cancel(gql, credits)
    clock.set(ENDS_AT)

    result = await undo(gql, credits)

    assert (result["__typename"], result["code"], result["endedAt"]) == (
        "AddOnEndedError",
        "ADD_ON_ENDED",
        "2026-12-01T00:00:00+00:00",
    )
    cancelled_again = await cancel(gql, credits)
    assert (cancelled_again["__typename"], cancelled_again["endedAt"]) == (
        "AddOnEndedError",
        "2026-12-01T00:00:00+00:00",
    )
    assert (await my_plan(gql))["effectiveLimits"]["credits"] == 3000


async def test_undo_without_an_active_plan_is_a_typed_error_and_changes_nothing(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    credits = await add_on_id("credits-1000")
    await cancel(gql, credits)
    acme = await Tenant.get(slug="acme")
    await PlanSubscription.filter(tenant=acme).update(status=PlanSubscriptionStatus.SUSPENDED)

    result = await undo(gql, credits)

    assert (result["__typename"], result["code"]) == ("NoActivePlanError", "NO_ACTIVE_PLAN")
    assert (await stored_add_on(credits)).status == AddOnStatus.CANCELLING


async def test_undo_of_an_add_on_that_is_not_cancelled_is_a_typed_error(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    result = await undo(gql, await add_on_id("credits-1000"))
    assert (result["__typename"], result["code"], result["field"]) == (
        "AddOnNotCancelledError",
        "ADD_ON_NOT_CANCELLED",
        "activeAddOnId",
    )
    assert not await OutboxEmail.exists()


async def test_preview_and_cancel_use_a_constant_number_of_queries(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    credits = await add_on_id("credits-1000")
    await gql.token_for(ACME)
    with count_queries() as few:
        await preview(gql, credits)
    acme = await Tenant.get(slug="acme")
    pack = await AddOn.get(code="users-1")
    for hours in range(1, 31):
        await AddOnSubscription.create(
            tenant=acme, add_on=pack, unit_price=Decimal("4.90"), currency="EUR",
            contracted_at=clock.now() - dt.timedelta(hours=hours),
        )  # fmt: skip
    with count_queries() as many:
        await preview(gql, credits)
    with count_queries() as cancelling:
        await cancel(gql, credits)

    assert many.count == few.count <= 5  # caller, add-on, plan, add-ons, usage
    # The same reads, the conditional UPDATE, audit, admins, outbox, the webhook event and the endpoints
    # that want it; then the new My plan: plan, add-ons.
    assert cancelling.count <= 13
