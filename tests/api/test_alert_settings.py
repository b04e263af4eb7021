"""Alert settings over GraphQL (issue 15): admins choose the thresholds and the extra recipients; both are
audited, apply to the next crossing on every instance, and a change of thresholds judges the current usage
at once (a threshold now below it fires)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from app.clock import FrozenClock
from app.models.audit import AuditEntry
from app.models.metering import LimitAlert, ProcessCounter
from app.models.notifications import OutboxEmail
from app.models.tenancy import Tenant
from app.seed import SeedResult
from app.settings import Settings
from tests.api.test_alerts import alert_log, credits_to
from tests.api.test_process_starts import start
from tests.api.test_quota import key_with_scopes
from tests.api.test_usage_reports import report
from tests.conftest import GraphQLClient, client_for
from tests.emails import alert_subject, html_of, language_of, number, subject_of, text_of
from tests.smtp import SmtpServer

ADMIN, MEMBER = "admin@acme.test", "member@acme.test"
ALLOWANCE = 159_600  # acme: 4,000 credits x 30 days + 33%
ALERT = "kind threshold state used limit period { name }"
SETTINGS = "id thresholds recipients"
SET_THRESHOLDS = f"""
mutation Set($thresholds: [Int!]!) {{
  setAlertThresholds(thresholds: $thresholds) {{
    __typename
    ... on SetAlertThresholdsSuccess {{ settings {{ {SETTINGS} }} alerts {{ {ALERT} }} }}
    ... on Error {{ code message field }}
  }}
}}
"""
SET_RECIPIENTS = f"""
mutation Set($recipients: [String!]!) {{
  setAlertRecipients(recipients: $recipients) {{
    __typename
    ... on SetAlertRecipientsSuccess {{ settings {{ {SETTINGS} }} }}
    ... on Error {{ code message field }}
  }}
}}
"""
READ = f"query {{ alertSettings {{ {SETTINGS} }} }}"


async def set_thresholds(gql: GraphQLClient, thresholds: list[int], as_: str = ADMIN) -> dict[str, Any]:
    body = await gql.post(SET_THRESHOLDS, {"thresholds": thresholds}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["setAlertThresholds"]
    return result


async def set_recipients(gql: GraphQLClient, recipients: list[str], as_: str = ADMIN) -> dict[str, Any]:
    body = await gql.post(SET_RECIPIENTS, {"recipients": recipients}, as_=as_)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["setAlertRecipients"]
    return result


def raised(result: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(a["kind"], a["threshold"], a["state"]) for a in result["alerts"]]


async def processes_at(used: int) -> None:
    """acme's counter of billing period 2026-11 at ``used``."""
    tenant = await Tenant.get(slug="acme")
    await ProcessCounter.create(tenant=tenant, period="2026-11", used=used)


# --- Thresholds ----------------------------------------------------------------------------------


async def test_the_defaults_are_read_by_users_and_partner_keys(gql: GraphQLClient, demo: SeedResult) -> None:
    partner = await key_with_scopes("acme", "tenant:read")

    for body in (
        await gql.post(READ, as_=ADMIN),
        await gql.post(READ, as_=MEMBER),
        await gql.post(READ, key=partner),
    ):
        assert body["data"]["alertSettings"]["thresholds"] == [80, 90, 100], body
        assert body["data"]["alertSettings"]["recipients"] == []

    refused = await gql.post(READ, key=demo.connector_keys["acme"])  # no tenant:read
    assert refused["data"] == {"alertSettings": None}
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_new_thresholds_apply_to_the_next_crossing(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    result = await set_thresholds(gql, [75, 50])

    assert result["__typename"] == "SetAlertThresholdsSuccess"
    assert result["settings"]["thresholds"] == [50, 75]  # stored ascending
    assert result["alerts"] == []  # nothing reported yet
    key = demo.connector_keys["acme"]
    await credits_to(gql, key, clock, 2100)  # 52.5%; users 3 of 5 (60%)
    await credits_to(gql, key, clock, 3300)  # 82.5%: 75, and no 80 any more

    assert await alert_log("acme") == [
        ("CREDITS", 50, "TRIGGERED"),
        ("USERS", 50, "TRIGGERED"),
        ("CREDITS", 75, "TRIGGERED"),
    ]
    assert (await gql.post(READ, as_=MEMBER))["data"]["alertSettings"]["thresholds"] == [50, 75]


async def test_a_threshold_below_the_usage_fires_at_once_and_only_once(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 2400)  # 60%: under 80
    assert await alert_log("acme") == []

    result = await set_thresholds(gql, [50])

    assert raised(result) == [("CREDITS", 50, "TRIGGERED"), ("USERS", 50, "TRIGGERED")]
    assert (result["alerts"][0]["used"], result["alerts"][0]["limit"]) == (2400, 4000)
    assert await alert_log("acme") == raised(result)
    assert raised(await set_thresholds(gql, [50])) == []  # the same again: nothing new
    assert raised(await set_thresholds(gql, [50, 55])) == [
        ("CREDITS", 55, "TRIGGERED"),
        ("USERS", 55, "TRIGGERED"),
    ]
    assert await LimitAlert.filter(tenant__slug="acme", published_at__isnull=True).count() == 0
    # E-mailed to the admin in the same transaction, once per evaluation, naming each of its alerts.
    assert await OutboxEmail.filter(tenant__slug="acme").count() == 2


async def test_a_threshold_removed_and_added_again_is_judged_afresh(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await credits_to(gql, demo.connector_keys["acme"], clock, 3300)  # 82.5%: 80 fires
    assert await alert_log("acme") == [("CREDITS", 80, "TRIGGERED")]

    assert raised(await set_thresholds(gql, [90, 100])) == []  # a removal raises nothing
    assert raised(await set_thresholds(gql, [80, 90, 100])) == [("CREDITS", 80, "TRIGGERED")]
    # Kept in the list, a threshold already fired does not fire again.
    assert raised(await set_thresholds(gql, [80, 100])) == []
    assert await alert_log("acme") == [("CREDITS", 80, "TRIGGERED"), ("CREDITS", 80, "TRIGGERED")]


async def test_processes_past_a_new_threshold_trigger_it_once(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await processes_at(100_000)  # 62.7% of the allowance

    result = await set_thresholds(gql, [50, 60, 70])

    assert raised(result) == [("PROCESSES", 50, "TRIGGERED"), ("PROCESSES", 60, "TRIGGERED")]
    assert result["alerts"][0]["period"] == {"name": "2026-11"}
    assert (result["alerts"][0]["used"], result["alerts"][0]["limit"]) == (100_000, ALLOWANCE)
    # Already in the list: not again, neither by another change nor by the next starts.
    assert raised(await set_thresholds(gql, [50, 60, 70, 100])) == []
    await start(gql, demo.connector_keys["acme"], "after-the-change")
    # Removed, then added again: judged afresh.
    assert raised(await set_thresholds(gql, [70])) == []
    assert raised(await set_thresholds(gql, [60, 70])) == [("PROCESSES", 60, "TRIGGERED")]
    assert [row[:2] for row in await alert_log("acme")] == [
        ("PROCESSES", 50),
        ("PROCESSES", 60),
        ("PROCESSES", 60),
    ]


async def test_a_start_crosses_the_thresholds_set_last(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await processes_at(ALLOWANCE // 2 - 1)
    await set_thresholds(gql, [50])

    await start(gql, demo.connector_keys["acme"], "the-half")

    assert await alert_log("acme") == [("PROCESSES", 50, "TRIGGERED")]


@pytest.mark.parametrize("round_", range(4))
async def test_a_change_racing_a_start_and_a_report_raises_each_crossing_once(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, round_: int
) -> None:
    key = demo.connector_keys["acme"]
    await processes_at(ALLOWANCE // 2 - 1)  # the next start reaches 50%
    clock.advance(dt.timedelta(minutes=1))

    await asyncio.gather(
        set_thresholds(gql, [50]),
        start(gql, key, f"racing-{round_}"),
        report(gql, key, clock.now(), variants=2100, customers=0, contacts=0, salesReps=0),  # 52.6%
    )

    log = await alert_log("acme")
    assert sorted(log) == [
        ("CREDITS", 50, "TRIGGERED"),
        ("PROCESSES", 50, "TRIGGERED"),
        ("USERS", 50, "TRIGGERED"),
    ], log


async def test_invalid_thresholds_are_refused_naming_the_value(gql: GraphQLClient, demo: SeedResult) -> None:
    cases = [
        ([], "0 were given"),
        ([10, 20, 30, 40, 50, 60], "6 were given"),
        ([0], "threshold 0 "),
        ([50, 101], "threshold 101 "),
        ([-5], "threshold -5 "),
        ([50, 80, 50], "threshold 50 is listed twice"),
    ]
    for thresholds, words in cases:
        result = await set_thresholds(gql, thresholds)
        assert (result["__typename"], result["code"], result["field"]) == (
            "InvalidInputError", "INVALID_INPUT", "thresholds",
        ), thresholds  # fmt: skip
        assert words in result["message"], (thresholds, result["message"])

    too_big = await gql.post(SET_THRESHOLDS, {"thresholds": [2**40]}, as_=ADMIN)  # not a GraphQL Int
    assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await gql.post(READ, as_=ADMIN))["data"]["alertSettings"]["thresholds"] == [80, 90, 100]
    assert await AuditEntry.filter(action="alert_thresholds.set").count() == 0


async def test_only_admins_change_the_settings(gql: GraphQLClient, demo: SeedResult) -> None:
    for document, variables in ((SET_THRESHOLDS, {"thresholds": [50]}), (SET_RECIPIENTS, {"recipients": []})):
        member = (await gql.post(document, variables, as_=MEMBER))["data"]
        assert [(r["__typename"], r["code"]) for r in member.values()] == [("NotAdminError", "NOT_ADMIN")]
        for key in (demo.connector_keys["acme"], await key_with_scopes("acme", "tenant:read")):
            body = await gql.post(document, variables, key=key)
            assert list(body["data"].values()) == [None]
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    assert (await gql.post(READ, as_=ADMIN))["data"]["alertSettings"]["thresholds"] == [80, 90, 100]
    assert await AuditEntry.filter(action__startswith="alert_").count() == 0


async def test_both_changes_are_audited_with_the_values_before_and_after(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await set_thresholds(gql, [90, 50])
    clock.advance(dt.timedelta(seconds=1))
    await set_recipients(gql, ["ops@example.com"])
    clock.advance(dt.timedelta(seconds=1))
    await set_recipients(gql, [])

    entries = await AuditEntry.filter(tenant__slug="acme", action__startswith="alert_").order_by("created_at")
    assert [(e.actor, e.action, e.details) for e in entries] == [
        (ADMIN, "alert_thresholds.set", {"before": [80, 90, 100], "after": [50, 90]}),
        (ADMIN, "alert_recipients.set", {"before": [], "after": ["ops@example.com"]}),
        (ADMIN, "alert_recipients.set", {"before": ["ops@example.com"], "after": []}),
    ]


# --- Recipients ----------------------------------------------------------------------------------


async def test_recipients_receive_the_alert_e_mail_and_admins_still_do(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    result = await set_recipients(gql, ["  Finance@Example.com ", "ADMIN@acme.test", "ops@example.org"])
    assert result["__typename"] == "SetAlertRecipientsSuccess"
    assert result["settings"]["recipients"] == ["Finance@Example.com", "ADMIN@acme.test", "ops@example.org"]
    assert result["settings"]["thresholds"] == [80, 90, 100]

    await credits_to(gql, demo.connector_keys["acme"], clock, 3300)  # 80%
    await smtp_server.dispatcher(clock).run_once()

    for address in ("admin@acme.test", "Finance@Example.com", "ops@example.org"):
        messages = smtp_server.inbox.to(address)
        locale = language_of(messages[0])
        assert [subject_of(m) for m in messages] == [alert_subject(locale, "Credits", 80)], address
        assert number(3300, locale) in text_of(messages[0])
        assert number(4000, locale) in html_of(messages[0])
    assert len(smtp_server.inbox.messages) == 3  # the admin listed again is not e-mailed twice
    assert smtp_server.inbox.to("member@acme.test") == []

    await set_recipients(gql, ["ops@example.org"])
    await credits_to(gql, demo.connector_keys["acme"], clock, 3700)  # 90%
    await smtp_server.dispatcher(clock).run_once()
    assert len(smtp_server.inbox.to("Finance@Example.com")) == 1  # removed: no more
    assert len(smtp_server.inbox.to("ops@example.org")) == 2


async def test_hostile_or_invalid_recipients_are_refused_before_reaching_the_database(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    cases = [
        "ops\x00@example.com",
        "ops@example.com\r\nBcc: thief@example.net",
        "a" * 10_000 + "@example.com",
        "x" * 60 + "@" + ".".join(["d" * 60] * 4) + ".com",  # 310 characters
        "not an address",
        "",
        "   ",
        "jürgen@exämple.de",
        "\u202eops@example.com",
        "ops@example",
    ]
    for address in cases:
        result = await set_recipients(gql, ["fine@example.com", address])
        assert (result["__typename"], result["field"]) == ("InvalidInputError", "recipients"), address
        assert len(result["message"]) < 200, result["message"]
        assert "\x00" not in result["message"], result["message"]

    duplicate = await set_recipients(gql, ["ops@example.com", "OPS@example.com"])
    assert "listed twice" in duplicate["message"]
    assert duplicate["field"] == "recipients"
    eleven = await set_recipients(gql, [f"ops{n}@example.com" for n in range(11)])
    assert "At most 10" in eleven["message"]
    assert (await set_recipients(gql, [f"ops{n}@example.com" for n in range(10)]))["__typename"] == (
        "SetAlertRecipientsSuccess"
    )
    assert (await Tenant.get(slug="acme")).alert_recipients == [f"ops{n}@example.com" for n in range(10)]


# --- Another instance, a stale credential cache ----------------------------------------------------


async def test_a_change_applies_where_the_callers_tenant_is_cached_stale(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock, settings: Settings
) -> None:
    key = demo.connector_keys["acme"]
    async with client_for(settings, clock, auth_cache_seconds=3600) as cached:
        cached_gql = GraphQLClient(cached, settings, clock)
        await credits_to(cached_gql, key, clock, 2000)  # 50%: the key's caller (and tenant) is cached now

        await set_thresholds(gql, [60])  # on another instance
        await credits_to(cached_gql, key, clock, 2500)  # 62.5%
        await credits_to(cached_gql, key, clock, 2000)  # 50%: 60 re-arms

    assert [row for row in await alert_log("acme") if row[0] == "CREDITS"] == [
        ("CREDITS", 60, "TRIGGERED"),
        ("CREDITS", 60, "RESOLVED"),
    ]


async def test_the_settings_of_one_environment_do_not_touch_another(
    gql: GraphQLClient, demo: SeedResult, clock: FrozenClock
) -> None:
    await set_thresholds(gql, [10])
    await set_recipients(gql, ["ops@example.com"])

    await credits_to(gql, demo.connector_keys["nova"], clock, 4000)  # nova: 80% of 5,000

    assert [row for row in await alert_log("nova") if row[0] == "CREDITS"] == [("CREDITS", 80, "TRIGGERED")]
    nova = (await gql.post(READ, as_="admin@nova.test"))["data"]["alertSettings"]
    assert (nova["thresholds"], nova["recipients"]) == ([80, 90, 100], [])
    assert await OutboxEmail.filter(to_address="ops@example.com").count() == 0
