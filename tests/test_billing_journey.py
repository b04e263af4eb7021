"""Issue 14's journey on the demo data, as the clients see it (run with ``-s`` to read the answers):

1. A pricing page sizes the seed's example anonymously (2,748 credits).
2. acme's admin previews and makes an upgrade: new limits at once, the prorated difference on this
   period's invoice with the change fee.
3. nova's connector reports more credits than ERP Start allows and nova's admin, who bought the fiscal
   bookkeeping add-on, asks for the downgrade: refused, each conflict named.
4. acme's billing period ends: the gateway's task issues its invoice, the admin reads it and downloads
   its PDF, whose text holds the number, the lines and the total.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pypdf

from app.seed import SeedResult
from app.services import invoice_issuing
from tests.api.test_checkout import checkout
from tests.api.test_store import add
from tests.conftest import GraphQLClient

ACME = "admin@acme.test"
NOVA = "admin@nova.test"
MONEY = "{ amount currency }"
ERROR = "__typename ... on Error { code message field }"
LINES = f"lines {{ kind code description quantity days amount {MONEY} }}"
RECOMMEND = f"""
query Sizing($counts: PlanSizingCounts!) {{
  planRecommendation(counts: $counts) {{
    {ERROR}
    ... on PlanRecommendation {{
      creditsNeeded creditsWithMargin marginPercent currency
      plans {{ plan {{ code }} fits headroom }}
      recommendation {{
        plan {{ code }} creditPacks {{ addOn {{ code }} quantity }} monthlyPrice {MONEY} coversNeed
      }}
    }}
  }}
}}
"""
PREVIEW = f"""
query Preview($code: String!) {{
  planChangePreview(planCode: $code) {{
    {ERROR}
    ... on PlanChangePreview {{
      kind effectiveAt changeFee {MONEY} conflicts {{ kind message }}
      currentPlan {{ code monthlyPrice {MONEY} }} newPlan {{ code monthlyPrice {MONEY} }}
      invoice {{ period {{ name }} {LINES} total {MONEY} }}
      currentMonthlyTotal {MONEY} newMonthlyTotal {MONEY}
    }}
  }}
}}
"""
CHANGE = f"""
mutation Change($code: String!, $key: String!) {{
  changePlan(planCode: $code, idempotencyKey: $key) {{
    {ERROR}
    ... on PlanChangeConflictsError {{ conflicts {{ kind used limit addOnCode message }} }}
    ... on ChangePlanSuccess {{
      planChange {{ kind status effectiveAt fromPlan {{ code }} toPlan {{ code }} changeFee {MONEY} }}
      myPlan {{ plan {{ code }} effectiveLimits {{ users integrations credits }} monthlyTotal {MONEY} }}
    }}
  }}
}}
"""
REPORT = f"""
mutation Report($input: UsageReportInput!, $key: String!) {{
  reportUsage(input: $input, idempotencyKey: $key) {{ {ERROR} ... on ReportUsageSuccess {{ applied }} }}
}}
"""
INVOICES = f"""
query Invoices {{
  invoices(first: 5) {{
    {ERROR}
    ... on IssuedInvoiceConnection {{
      nodes {{
        number period {{ name start end }} issuedAt currency {LINES}
        subtotal {MONEY} discount {MONEY} total {MONEY} pdfPath
      }}
    }}
  }}
}}
"""


def compact(value: Any, indent: str = "") -> str:
    """JSON, each value on one line when it fits in 100 characters (an invoice line, a money amount)."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= 100 or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, list):
        items = [inner + compact(item, inner) for item in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    items = [f"{inner}{json.dumps(key)}: {compact(item, inner)}" for key, item in value.items()]
    return "{\n" + ",\n".join(items) + f"\n{indent}}}"


def show(title: str, answer: Any) -> None:
    print(f"\n== {title}\n{compact(answer)}")


async def test_upgrade_refused_downgrade_and_issued_invoice(gql: GraphQLClient, demo: SeedResult) -> None:
    # 1. The pricing page, anonymously.
    seed_example = {"variants": 340, "customers": 1200, "contacts": 1200, "salesReps": 5, "adminUsers": 3}
    sizing = (await gql.post(RECOMMEND, {"counts": seed_example}))["data"]["planRecommendation"]
    show("planRecommendation (anonymous, the seed's example)", sizing)
    assert (sizing["creditsNeeded"], sizing["creditsWithMargin"]) == (2748, 3298)

    # 2. acme upgrades from Storefront M to Storefront L (the catalog's change fee: 49.00 EUR).
    preview = (await gql.post(PREVIEW, {"code": "storefront-l"}, as_=ACME))["data"]["planChangePreview"]
    show("planChangePreview(storefront-l) as acme's admin", preview)
    upgraded = await gql.post(CHANGE, {"code": "storefront-l", "key": "up-1"}, as_=ACME)
    upgrade = upgraded["data"]["changePlan"]
    show("changePlan(storefront-l) as acme's admin", upgrade)
    assert upgrade["planChange"]["status"] == "APPLIED"
    assert upgrade["myPlan"]["effectiveLimits"]["credits"] == 11_000  # 10,000 + the 1,000 pack, now
    # 120.00 EUR more a month, for the 8 days left of 30, and the fee once.
    assert [(line["kind"], line["amount"]["amount"]) for line in preview["invoice"]["lines"][:3]] == [
        ("PLAN", "79.00"),
        ("PLAN_CHANGE", "32.00"),
        ("CHANGE_FEE", "49.00"),
    ]

    # 3. nova: fiscal bookkeeping bought in the store, 1,500 credits reported, then the downgrade.
    assert (await add(gql, "fiscal-bookkeeping", as_=NOVA))["__typename"] == "AddToCartSuccess"
    assert (await checkout(gql, "fiscal", as_=NOVA))["__typename"] == "CheckoutSuccess"
    usage = {
        "variants": 600, "customers": 400, "contacts": 400, "salesReps": 95, "adminUsers": 5,
        "storageBytes": 1_000_000, "measuredAt": gql.clock.now().isoformat(),
    }  # fmt: skip
    reported = await gql.post(REPORT, {"input": usage, "key": "r-1"}, key=demo.connector_keys["nova"])
    assert reported["data"]["reportUsage"]["applied"] is True
    refused = (await gql.post(CHANGE, {"code": "erp-start", "key": "down-1"}, as_=NOVA))["data"]["changePlan"]
    show("changePlan(erp-start) as nova's admin", refused)
    assert refused["code"] == "PLAN_CHANGE_CONFLICTS"
    assert [(c["kind"], c["addOnCode"]) for c in refused["conflicts"]] == [
        ("CREDITS", None),
        ("ADD_ON", "fiscal-bookkeeping"),
    ]

    # 4. The period ends; the gateway's task issues acme's invoice.
    gql.clock.set(gql.clock.now().replace(month=12, day=1, hour=0, minute=5))
    issued = await invoice_issuing.issue_due_invoices(gql.clock.now())
    assert issued
    listing = (await gql.post(INVOICES, as_=ACME))["data"]["invoices"]
    show("invoices(first: 5) as acme's admin", listing)
    invoice = listing["nodes"][0]
    assert invoice["number"] == "ACME-2026-0001"
    assert invoice["lines"] == preview["invoice"]["lines"]  # the preview showed what was issued
    response = await gql.http.get(
        invoice["pdfPath"], headers={"Authorization": f"Bearer {await gql.token_for(ACME)}"}
    )
    assert response.headers["content-type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(response.content)).pages)
    print(f"\n== GET {invoice['pdfPath']}: {len(response.content)} bytes of PDF; its text:\n{text}")
    assert invoice["number"] in text
    assert f"Total: {invoice['total']['amount']} EUR" in text
    for line in invoice["lines"]:
        assert line["description"] in text
