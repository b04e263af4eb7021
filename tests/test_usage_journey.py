"""Issue 15's journey on the demo data, as the clients see it (run with ``-s`` to read the answers):

1. acme's connector reports its counts once a day for five days (2,748 credits, then 150 more a day) and
   starts processes of two kinds.
2. acme's admin charts the week (``usageHistory``), reads the credit forecast and the processes per kind.
3. The admin caps one kind and pauses another: the connector's quota check and starts refuse those only.
4. The admin lowers the alert thresholds below the usage: the alerts fire at once.
5. The SPA asks whether 20 GiB more storage may be uploaded, and what it would cost.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.seed import SeedResult
from tests.conftest import GraphQLClient
from tests.test_billing_journey import ERROR, MONEY, show

ACME = "admin@acme.test"
REPORT = f"""
mutation Report($input: UsageReportInput!, $key: String!) {{
  reportUsage(input: $input, idempotencyKey: $key) {{ {ERROR} ... on ReportUsageSuccess {{ applied }} }}
}}
"""
START = f"""
mutation Start($process: ProcessKind!, $key: String!) {{
  startProcess(process: $process, idempotencyKey: $key) {{
    {ERROR} ... on StartProcessSuccess {{ allowed reason kindStarts processesUsed }}
  }}
}}
"""
QUOTA = """
query Quota($process: ProcessKind!) {
  quota(process: $process) { process allowed reason kindStarts paused monthlyCap creditsUsed creditsLimit }
}
"""
HISTORY = f"""
query History($from: Date!, $to: Date!) {{
  usageHistory(from: $from, to: $to) {{
    {ERROR}
    ... on UsageHistory {{
      days {{ date reported credits storageBytes processes processesByKind {{ process starts }} }}
    }}
  }}
}}
"""
USAGE = f"""
query Usage {{
  creditUsage {{
    {ERROR}
    ... on CreditUsage {{
      used limit percent
      forecast {{ dailyGrowth limitPassedOn daysLeft basedOnReports since }}
      processes {{
        used allowance
        byKind {{ process starts share dailyPace lastStartedAt paused monthlyCap capRemaining }}
      }}
    }}
  }}
}}
"""
CONTROL = f"""
mutation Control($process: ProcessKind!, $paused: Boolean!, $cap: Int) {{
  setProcessControl(process: $process, paused: $paused, monthlyCap: $cap) {{
    {ERROR} ... on SetProcessControlSuccess {{ control {{ process paused monthlyCap updatedBy }} }}
  }}
}}
"""
THRESHOLDS = f"""
mutation Thresholds($thresholds: [Int!]!) {{
  setAlertThresholds(thresholds: $thresholds) {{
    {ERROR}
    ... on SetAlertThresholdsSuccess {{
      settings {{ thresholds }} alerts {{ kind threshold state used limit }}
    }}
  }}
}}
"""
LIMIT = f"""
query Limit($resource: LimitResource!, $adding: Long!) {{
  limitCheck(resource: $resource, adding: $adding) {{
    {ERROR}
    ... on LimitCheck {{
      resource adding allowed reason limit used available policy
      extraMonthlyCost {MONEY} overageCostAfter {MONEY}
    }}
  }}
}}
"""
GIB = 1024**3


async def test_history_forecast_control_alert_settings_and_limit_check(
    gql: GraphQLClient, demo: SeedResult
) -> None:
    key = demo.connector_keys["acme"]

    async def connector(document: str, variables: dict[str, Any]) -> Any:
        body = await gql.post(document, variables, key=key)
        assert "errors" not in body, body
        return next(iter(body["data"].values()))

    async def admin(document: str, variables: dict[str, Any] | None = None) -> Any:
        body = await gql.post(document, variables or {}, as_=ACME)
        assert "errors" not in body, body
        return next(iter(body["data"].values()))

    # 1. Five daily reports from Nov 19 to Nov 23 at noon: 2,748 credits, then 150 more each day; and starts.
    today = gql.clock.now()  # 2026-11-23 12:00 UTC
    for day in range(5):
        gql.clock.set(today - dt.timedelta(days=4 - day))
        counts = {
            "variants": 340 + 150 * day, "customers": 1200, "contacts": 1200, "salesReps": 5, "adminUsers": 3,
            "storageBytes": 5 * GIB, "measuredAt": gql.clock.now().isoformat(),
        }  # fmt: skip
        assert (await connector(REPORT, {"input": counts, "key": f"day-{day}"}))["applied"] is True
        for n in range(day + 1):
            started = await connector(START, {"process": "PRODUCT_SYNC", "key": f"p-{day}-{n}"})
            assert started["allowed"] is True
        if day % 2 == 0:
            assert (await connector(START, {"process": "STOCK_UPDATE", "key": f"s-{day}"}))["allowed"]

    # 2. The admin's dashboard.
    history = await admin(HISTORY, {"from": "2026-11-18", "to": "2026-11-30"})
    show("usageHistory(2026-11-18, 2026-11-30) as acme's admin", history)
    days = history["days"]
    assert [day["date"] for day in days] == [f"2026-11-{d}" for d in range(18, 24)]  # none after today
    assert (days[0]["reported"], days[0]["credits"]) == (False, None)  # before the first report
    assert [day["credits"] for day in days[1:]] == [2748, 2898, 3048, 3198, 3348]
    assert [day["processes"] for day in days[1:]] == [2, 2, 4, 4, 6]
    usage = await admin(USAGE)
    show("creditUsage as acme's admin", usage)
    # A perfect line: 150 credits a day; (4,000 - 3,348) / 150 = 4.35 days after Nov 23 12:00: Nov 27.
    assert usage["forecast"] == {
        "dailyGrowth": "150.00", "limitPassedOn": "2026-11-27", "daysLeft": 4, "basedOnReports": 5,
        "since": "2026-11-19T12:00:00+00:00",
    }  # fmt: skip
    by_kind = {kind["process"]: kind for kind in usage["processes"]["byKind"]}
    assert len(by_kind) == 9
    assert (by_kind["PRODUCT_SYNC"]["starts"], by_kind["PRODUCT_SYNC"]["share"]) == (15, "83.33")
    assert (by_kind["STOCK_UPDATE"]["starts"], by_kind["STOCK_UPDATE"]["share"]) == (3, "16.67")

    # 3. STOCK_UPDATE capped at its 3 starts, PRODUCT_SYNC paused: those kinds only are refused.
    capped = await admin(CONTROL, {"process": "STOCK_UPDATE", "paused": False, "cap": 3})
    paused = await admin(CONTROL, {"process": "PRODUCT_SYNC", "paused": True, "cap": None})
    show("setProcessControl(STOCK_UPDATE, cap 3) and (PRODUCT_SYNC, paused)", [capped, paused])
    kinds = ("STOCK_UPDATE", "PRODUCT_SYNC", "PRICE_UPDATE")
    answers = [await connector(QUOTA, {"process": process}) for process in kinds]
    show("quota of three kinds, as acme's connector", answers)
    assert [(a["allowed"], a["reason"]) for a in answers] == [
        (False, "PROCESS_CAP_REACHED"),
        (False, "PROCESS_PAUSED"),
        (True, None),
    ]
    refused = await connector(START, {"process": "STOCK_UPDATE", "key": "s-over"})
    assert (refused["allowed"], refused["reason"], refused["kindStarts"]) == (False, "PROCESS_CAP_REACHED", 3)
    assert (await connector(START, {"process": "PRICE_UPDATE", "key": "price-1"}))["allowed"] is True

    # 4. Thresholds 50 and 75 (and 100): 3,348 of 4,000 credits is 83.7%, so both fire now; the 3 admin
    # users of acme's 5 are 60%: 50 fires for them too.
    lowered = await admin(THRESHOLDS, {"thresholds": [75, 50, 100]})
    show("setAlertThresholds([75, 50, 100]) as acme's admin", lowered)
    assert lowered["settings"]["thresholds"] == [50, 75, 100]
    assert [(a["kind"], a["threshold"], a["state"]) for a in lowered["alerts"]] == [
        ("CREDITS", 50, "TRIGGERED"),
        ("CREDITS", 75, "TRIGGERED"),
        ("USERS", 50, "TRIGGERED"),
    ]

    # 5. 5 GiB used of 20 GB (10 included + a 10 GB pack), overage at 2.30 EUR per started GB.
    storage = await connector(LIMIT, {"resource": "STORAGE", "adding": 20 * GIB})
    show("limitCheck(STORAGE, 20 GiB) as acme's connector", storage)
    assert (storage["allowed"], storage["reason"]) == (True, "STORAGE_OVERAGE")
    assert storage["extraMonthlyCost"] == {"amount": "11.50", "currency": "EUR"}  # 5 GB over x 2.30
