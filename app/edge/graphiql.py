"""GraphiQL for partners, served entirely by the gateway (no CDN): works on machines without internet.

The page is pre-filled with example operations for each kind of client and a header hint for the
token. Subscriptions run over graphql-transport-ws with the headers pane as ``connection_init``
payload. Assets are stored gzip-compressed and sent as such to every browser that accepts gzip.
"""

from __future__ import annotations

import gzip
import html
from functools import lru_cache
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

ASSETS = Path(__file__).parent.parent / "static" / "graphiql"
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

EXAMPLE_OPERATIONS = """\
# Welcome to Tollgate.
#
# Public operations (the catalog) need no credentials. For the rest, put a token in the
# Headers pane below:   {"Authorization": "Bearer <token>"}
#   a user token:       tollgate token --email admin@acme.test
#   a connector key:    printed by `tollgate serve --demo`, or `tollgate apikey create ...`
# Pick an operation with the play button's menu (or Ctrl-Enter on the one under the cursor).
#
# Expected failures are members of each field's result union (ask for `... on Error`); a field
# refused for lack of credentials is null, with an UNAUTHENTICATED or FORBIDDEN error beside it.
# Conventions: docs/api-conventions.md; changes: CHANGELOG.md.

query Catalog {
  plans { id code name price { amount currency } limits { storageBytes users integrations credits } }
  addOns { id code name category cadence isFree price { amount currency } conditions { summary } }
}

query WhoAmI {
  viewer { id kind role scopes tenant { id slug currency storeEligible } }
}

query MyPlan {
  myPlan {
    __typename
    ... on Error { code message }
    ... on MyPlan {
      id
      plan { id name }
      effectiveLimits { storageBytes users integrations credits }
      activeAddOns { id name monthlyPrice { amount currency } contractedAt status endsAt }
      monthlyTotal { amount currency }
    }
  }
}

query Cart {
  cart {
    __typename
    ... on Error { code message }
    ... on Cart {
      id
      lines { id addOnCode name quantity unitPrice { amount currency } total { amount currency } }
      summary { total { amount currency } dueOnNextInvoice { amount currency } period { name } }
    }
  }
}

# Live limit alerts (run it, then report usage as the connector in another tab or with curl).
subscription LiveAlerts {
  limitAlerts { id kind threshold state used limit period { name } at }
}

# Past alerts, newest first: a connection (first: at most 100; after: the last endCursor).
query Alerts {
  alerts(first: 20) {
    totalCount
    nodes { id kind threshold state used limit at }
    pageInfo { hasNextPage endCursor }
  }
}

query CreditUsage {
  creditUsage {
    __typename
    ... on Error { code message }
    ... on CreditUsage {
      id used limit remaining percent
      breakdown { variants customers contacts salesReps adminUsers }
      processes {
        period { name } used estimate allowance
        byKind { process starts share lastStartedAt paused monthlyCap }
      }
      forecast { dailyGrowth limitPassedOn daysLeft }
    }
  }
}

# One point per UTC day for a chart (at most 400 days a call).
query UsageHistory {
  usageHistory(from: "2026-11-01", to: "2026-11-30") {
    __typename
    ... on Error { code message field }
    ... on UsageHistory { days { date reported credits storageBytes processes } }
  }
}

# May the environment add 5 users now? (STORAGE takes bytes.)
query LimitCheck {
  limitCheck(resource: USERS, adding: 5) {
    __typename
    ... on Error { code message field }
    ... on LimitCheck { allowed reason limit used available }
  }
}

# Answers speak your language: saved choice, else Accept-Language, else the environment's (docs/locales.md).
mutation Language {
  setMyLocale(locale: PT_BR) {
    __typename
    ... on Error { code message }
    ... on SetMyLocaleSuccess { saved viewer { locale tenant { locale } } }
  }
}

# The store's texts and prices in the caller's language.
query StoreLabels {
  addOns(category: USERS) { name priceLabel price { formatted } conditions { summary } }
}

# The ERP connector (an API key with usage:report, quota:check, process:start).
query Quota {
  quota(process: PRODUCT_SYNC) { allowed reason creditsUsed creditsLimit processesUsed processAllowance }
}

# A retry with the same idempotencyKey returns the same answer and counts nothing twice.
mutation ReportUsage {
  reportUsage(
    input: {
      variants: 340, customers: 1200, contacts: 1200, salesReps: 5, adminUsers: 3,
      storageBytes: 0, measuredAt: "2026-11-23T12:00:00Z"
    }
    idempotencyKey: "graphiql-example-report"
  ) {
    __typename
    ... on ReportUsageSuccess { applied replayed creditUsage { id used limit } }
    ... on Error { code message field }
  }
}
"""

DEFAULT_HEADERS = '{\n  "Authorization": "Bearer <paste a user token or an API key>"\n}'

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Tollgate · GraphiQL</title>
  <link rel="stylesheet" href="{assets}/graphiql.min.css">
  <style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script type="application/json" id="tollgate-config">{config}</script>
  <script src="{assets}/react.production.min.js"></script>
  <script src="{assets}/react-dom.production.min.js"></script>
  <script src="{assets}/graphql-ws.min.js"></script>
  <script src="{assets}/graphiql.min.js"></script>
  <script>
    const config = JSON.parse(document.getElementById("tollgate-config").textContent);
    const httpUrl = new URL(config.endpoint, window.location.href).toString();
    const wsUrl = httpUrl.replace(/^http/, "ws");
    const httpFetcher = GraphiQL.createFetcher({{ url: httpUrl }});

    function isSubscription(params) {{
      const query = params.query || "";
      const name = params.operationName;
      return name
        ? new RegExp("subscription\\\\s+" + name + "\\\\b").test(query)
        : /^\\s*subscription\\b/m.test(query);
    }}

    // Subscriptions: one graphql-transport-ws connection each, authenticated with the headers pane.
    function fetcher(params, options) {{
      if (!isSubscription(params)) return httpFetcher(params, options);
      const headers = (options && options.headers) || {{}};
      return {{
        subscribe(observer) {{
          const client = graphqlWs.createClient({{ url: wsUrl, connectionParams: headers, lazy: true }});
          const dispose = client.subscribe(params, {{
            next: (value) => observer.next(value),
            error: (e) => observer.error(e instanceof Error ? e : new Error(e.reason || "closed")),
            complete: () => observer.complete(),
          }});
          return {{ unsubscribe() {{ dispose(); client.dispose(); }} }};
        }},
      }};
    }}

    const search = new URLSearchParams(window.location.search);
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{
        fetcher,
        defaultQuery: config.defaultQuery,
        query: search.get("query") || undefined,
        defaultHeaders: config.defaultHeaders,
        headers: search.get("headers") || undefined,
        defaultEditorToolsVisibility: "headers",
        shouldPersistHeaders: true,
      }}),
    );
  </script>
</body>
</html>
"""


@lru_cache
def render_page(endpoint: str = "/graphql", assets: str = "/graphiql/assets") -> str:
    config = orjson.dumps(
        {"endpoint": endpoint, "defaultQuery": EXAMPLE_OPERATIONS, "defaultHeaders": DEFAULT_HEADERS}
    ).decode()
    # The JSON sits in a <script> element: "</" must not close it early.
    return PAGE.format(assets=html.escape(assets), config=config.replace("</", "<\\/"))


async def graphiql_page(request: Request) -> HTMLResponse:
    return HTMLResponse(render_page())


@lru_cache(maxsize=16)
def _compressed(name: str) -> bytes | None:
    path = ASSETS / f"{name}.gz"
    return path.read_bytes() if path.is_file() else None


async def graphiql_asset(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = MEDIA_TYPES.get(Path(name).suffix)
    compressed = _compressed(name) if media_type and "/" not in name else None
    if compressed is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(compressed, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(gzip.decompress(compressed), media_type=media_type, headers=headers)
