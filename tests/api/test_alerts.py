"""Limit alerts: each crossing of 80/90/100% alerts once, re-arms when usage falls back, is stored,
listed page by page and e-mailed to the tenant's admins."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from app.clock import FrozenClock
from app.models.metering import LimitAlert, ProcessCounter
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant
from app.observability import REGISTRY
from app.resolvers.ids import key_of
from app.seed import SeedResult
from app.services.lifecycle import notify_ended_add_ons
from tests.api.test_cancellation import add_on_id, cancel
from tests.api.test_checkout import checkout
from tests.api.test_process_starts import start
from tests.api.test_store import add
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient
from tests.emails import alert_subject, language_of, number, says, subject_of, text_of
from tests.smtp import SmtpServer

ALERT = "id kind threshold state used limit period { name start end } at"
ALERTS = f"""
query Alerts($first: Int, $after: String) {{
  alerts(first: $first, after: $after) {{
    edges {{ cursor node {{ {ALERT} }} }}
    nodes {{ {ALERT} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    totalCount
  }}
}}
"""

# acme has 4,000 credits; with no customers, contacts or sales reps and 3 admin users, the variants vary.
BASE = 3
GB = 1024**3


async def credits_to(gql: GraphQLClient, key: str, clock: FrozenClock, credits: int, **extra: Any) -> None:
    clock.advance(dt.timedelta(minutes=1))
    counts = {"variants": credits - BASE, "customers": 0, "contacts": 0, "salesReps": 0, **extra}
    result = await report(gql, key, clock.now(), **counts)
    assert result["applied"] is True, result


async def alert_log(slug: str) -> list[tuple[str, int, str]]:
    rows = await LimitAlert.filter(tenant__slug=slug).order_by("id")
    return [(row.kind.value, row.threshold, row.state.value) for row in rows]


async def test_each_threshold_crossing_alerts_once(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await credits_to(gql, key, clock, 3000)  # 75%
    await credits_to(gql, key, clock, 3200)  # 80%
    await credits_to(gql, key, clock, 3300)  # still above 80%: nothing new
    await credits_to(gql, key, clock, 3700)  # 92.5%
    await credits_to(gql, key, clock, 4100)  # 102.5%
    await credits_to(gql, key, clock, 4200)

    assert await alert_log("acme") == [
        ("CREDITS", 80, "TRIGGERED"),
        ("CREDITS", 90, "TRIGGERED"),
        ("CREDITS", 100, "TRIGGERED"),
    ]


async def test_a_jump_past_several_thresholds_raises_each_in_ascending_order(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 4000)

    assert await alert_log("acme") == [
        ("CREDITS", 80, "TRIGGERED"),
        ("CREDITS", 90, "TRIGGERED"),
        ("CREDITS", 100, "TRIGGERED"),
    ]


async def test_falling_back_below_a_threshold_resolves_and_rearms_it(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await credits_to(gql, key, clock, 3650)  # 91.25%: 80 and 90
    await credits_to(gql, key, clock, 3400)  # 85%: 90 re-arms
    await credits_to(gql, key, clock, 3700)  # 92.5%: 90 fires again
    await credits_to(gql, key, clock, 1000)  # 25%: both re-arm, highest first

    assert await alert_log("acme") == [
        ("CREDITS", 80, "TRIGGERED"),
        ("CREDITS", 90, "TRIGGERED"),
        ("CREDITS", 90, "RESOLVED"),
        ("CREDITS", 90, "TRIGGERED"),
        ("CREDITS", 90, "RESOLVED"),
        ("CREDITS", 80, "RESOLVED"),
    ]


async def test_a_late_report_does_not_move_alerts(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    await credits_to(gql, key, clock, 3300)
    late = await report(gql, key, clock.now() - dt.timedelta(hours=1), variants=0)

    assert late["applied"] is False
    assert await alert_log("acme") == [("CREDITS", 80, "TRIGGERED")]


async def test_storage_users_and_integrations_alert_against_their_limits(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    # acme: 20 GB of storage, 5 users, 2 integrations.
    await credits_to(
        gql, demo.connector_keys["acme"], clock, 100 + BASE, storageBytes=18 * GB, users=5, integrations=1
    )

    assert await alert_log("acme") == [
        ("STORAGE", 80, "TRIGGERED"),
        ("STORAGE", 90, "TRIGGERED"),
        ("USERS", 80, "TRIGGERED"),
        ("USERS", 90, "TRIGGERED"),
        ("USERS", 100, "TRIGGERED"),
    ]


async def test_thresholds_are_a_setting_per_tenant(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await Tenant.filter(slug="acme").update(alert_thresholds=[50, 100])

    await credits_to(gql, demo.connector_keys["acme"], clock, 3700)  # 92.5%

    # Credits at 92.5% and users at 3 of 5 (60%) pass 50%, not 100%.
    assert await alert_log("acme") == [("CREDITS", 50, "TRIGGERED"), ("USERS", 50, "TRIGGERED")]


async def test_alerts_are_listed_newest_first_page_by_page(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 4000)
    await credits_to(gql, demo.connector_keys["acme"], clock, 1000)

    first = (await gql.post(ALERTS, {"first": 4}, as_="admin@acme.test"))["data"]["alerts"]
    after = first["pageInfo"]["endCursor"]
    second = (await gql.post(ALERTS, {"first": 4, "after": after}, as_="admin@acme.test"))["data"]["alerts"]

    def states(page: dict[str, Any]) -> list[tuple[int, str]]:
        return [(edge["node"]["threshold"], edge["node"]["state"]) for edge in page["edges"]]

    assert states(first) == [(80, "RESOLVED"), (90, "RESOLVED"), (100, "RESOLVED"), (100, "TRIGGERED")]
    assert first["pageInfo"]["hasNextPage"] is True
    assert states(second) == [(90, "TRIGGERED"), (80, "TRIGGERED")]
    assert second["pageInfo"]["hasNextPage"] is False
    node = second["edges"][0]["node"]
    assert (node["kind"], node["used"], node["limit"], node["period"]) == ("CREDITS", 4000, 4000, None)


async def test_alerts_of_another_tenant_are_never_listed(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 4000)

    nova = (await gql.post(ALERTS, as_="admin@nova.test"))["data"]["alerts"]

    assert nova == {
        "edges": [],
        "nodes": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
        "totalCount": 0,
    }


async def test_alerts_page_through_the_whole_list_with_complete_page_info(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 4000)  # 3 TRIGGERED
    await credits_to(gql, demo.connector_keys["acme"], clock, 1000)  # 3 RESOLVED
    await credits_to(gql, demo.connector_keys["acme"], clock, 3300)  # 1 TRIGGERED: 7 in all

    pages, after = [], None
    for _ in range(3):
        variables = {"first": 3, "after": after}
        page = (await gql.post(ALERTS, variables, as_="admin@acme.test"))["data"]["alerts"]
        pages.append(page)
        after = page["pageInfo"]["endCursor"]

    assert [len(page["edges"]) for page in pages] == [3, 3, 1]
    assert [page["totalCount"] for page in pages] == [7, 7, 7]
    assert [page["pageInfo"]["hasPreviousPage"] for page in pages] == [False, True, True]
    assert [page["pageInfo"]["hasNextPage"] for page in pages] == [True, True, False]
    for page in pages:
        assert page["nodes"] == [edge["node"] for edge in page["edges"]]
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
    ids = [node["id"] for page in pages for node in page["nodes"]]
    stored = await LimitAlert.filter(tenant__slug="acme").order_by("-id")
    assert [key_of(alert_id, "LimitAlert", field="id") for alert_id in ids] == [str(a.id) for a in stored]
    # The default page holds them all.
    everything = (await gql.post(ALERTS, as_="admin@acme.test"))["data"]["alerts"]
    assert [node["id"] for node in everything["nodes"]] == ids


async def test_a_page_size_out_of_range_or_a_foreign_cursor_is_bad_user_input(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 3300)
    await credits_to(gql, demo.connector_keys["nova"], clock, 5000)
    nova_cursor = (await gql.post(ALERTS, as_="admin@nova.test"))["data"]["alerts"]["edges"][0]["cursor"]
    acme_alert_id = (await gql.post(ALERTS, as_="admin@acme.test"))["data"]["alerts"]["nodes"][0]["id"]

    cases = [
        ({"first": 0}, "first"),
        ({"first": 101}, "first"),
        ({"first": -1}, "first"),
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "YWxlcnQ6OTk5OTk5"}, "after"),  # a well-formed cursor of no alert ("alert:999999")
        ({"after": nova_cursor}, "after"),  # another environment's alert
        ({"after": acme_alert_id}, "after"),  # an id is not a cursor
    ]
    for variables, argument in cases:
        body = await gql.post(ALERTS, variables, as_="admin@acme.test")
        assert body["data"] == {"alerts": None}, variables
        [error] = body["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"], error["path"]) == (
            "BAD_USER_INPUT", argument, ["alerts"],
        ), variables  # fmt: skip
    hundred = await gql.post(ALERTS, {"first": 100}, as_="admin@acme.test")
    assert "errors" not in hundred


async def test_a_process_alert_names_its_billing_period(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    nova = await Tenant.get(slug="nova")  # anchor day 10
    await ProcessCounter.create(tenant=nova, period="2026-11", used=199_499)
    started = await start(gql, demo.connector_keys["nova"], "the-last-one")
    assert started["processesUsed"] == 199_500

    [node] = (await gql.post(ALERTS, as_="admin@nova.test"))["data"]["alerts"]["nodes"]

    assert (node["kind"], node["threshold"]) == ("PROCESSES", 100)
    assert node["period"] == {"name": "2026-11", "start": "2026-11-10", "end": "2026-12-10"}


async def test_alerts_are_e_mailed_to_every_admin_through_the_outbox(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 3300)

    await smtp_server.dispatcher(clock).run_once()

    messages = smtp_server.inbox.to("admin@acme.test")
    locale = language_of(messages[0])
    assert [subject_of(message) for message in messages] == [alert_subject(locale, "Credits", 80)]
    assert says(
        locale, "%(used)s used of %(limit)s", used=number(3300, locale), limit=number(4000, locale)
    ) in (text_of(messages[0]))
    assert smtp_server.inbox.to("member@acme.test") == []
    assert await OutboxEmail.filter(tenant__slug="nova").count() == 0


def raised(kind: str, threshold: int, state: str) -> float:
    labels = {"kind": kind, "threshold": str(threshold), "state": state}
    return REGISTRY.get_sample_value("tollgate_alerts_raised_total", labels) or 0


async def test_alerts_are_counted_in_the_metrics(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    before = raised("CREDITS", 90, "TRIGGERED"), raised("CREDITS", 90, "RESOLVED")

    await credits_to(gql, demo.connector_keys["acme"], clock, 3700)
    await credits_to(gql, demo.connector_keys["acme"], clock, 3750)
    await credits_to(gql, demo.connector_keys["acme"], clock, 3000)

    after = raised("CREDITS", 90, "TRIGGERED"), raised("CREDITS", 90, "RESOLVED")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


async def test_concurrent_reports_above_a_threshold_alert_once(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    key = demo.connector_keys["acme"]
    base = clock.now() - dt.timedelta(hours=1)
    counts = {"customers": 0, "contacts": 0, "salesReps": 0}

    await asyncio.gather(
        *(report(gql, key, base + dt.timedelta(seconds=n), variants=3400 + n, **counts) for n in range(40))
    )

    assert await alert_log("acme") == [("CREDITS", 80, "TRIGGERED")]
    assert await OutboxEmail.filter(tenant__slug="acme").count() == 1


async def test_a_purchase_that_raises_the_limit_resolves_the_alerts_it_no_longer_deserves(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 3700)  # 92.5% of 4,000

    await add(gql, "credits-1000")
    assert (await checkout(gql, "more-credits"))["__typename"] == "CheckoutSuccess"

    assert await alert_log("acme") == [  # 3,700 of 5,000 is 74%
        ("CREDITS", 80, "TRIGGERED"),
        ("CREDITS", 90, "TRIGGERED"),
        ("CREDITS", 90, "RESOLVED"),
        ("CREDITS", 80, "RESOLVED"),
    ]


async def test_an_add_on_that_ends_raises_the_alerts_its_loss_causes(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 3300)  # 82.5% of 4,000
    ends_at = (await cancel(gql, await add_on_id("credits-1000")))["endsAt"]

    clock.set(dt.datetime.fromisoformat(ends_at) + dt.timedelta(minutes=1))
    assert await notify_ended_add_ons(clock.now()) == 1

    assert await alert_log("acme") == [  # 3,300 of 3,000 is 110%
        ("CREDITS", 80, "TRIGGERED"),
        ("CREDITS", 90, "TRIGGERED"),
        ("CREDITS", 100, "TRIGGERED"),
    ]
    assert await notify_ended_add_ons(clock.now()) == 0
    assert len(await alert_log("acme")) == 3
