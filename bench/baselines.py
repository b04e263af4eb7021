"""The two baselines the gateway is compared with, as bare Starlette endpoints.

- ``/__bench/constant``: a constant JSON answer, the ceiling of uvicorn + Starlette on this machine.
- ``/__bench/one-row``: one row read through Tortoise (the issue's reference figure).
- ``/__bench/quota`` and ``/__bench/start``: what a user would hand-write with Tortoise for the quota
  check and the process start, doing the same work as the gateway (authenticate the API key by its
  hash, load the plan and the add-ons counting now for the credit limit, read the usage and the
  period's counter; for a start, one transaction with the start's INSERT and the counter's
  conditional UPDATE), with none of GraphQL's parsing, validation or execution.
- ``/__bench/minimal-start``, ``/__bench/minimal-report``, ``/__bench/minimal-add`` and
  ``/__bench/minimal-checkout``: the least a correct hand-written endpoint must do (issue 17), raw SQL
  with RETURNING on the same connection, credentials and limits read once and then held in dicts (as a
  warm gateway caches them); see each endpoint for its statements.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.expressions import F, Q, Subquery
from tortoise.transactions import in_transaction

from app.auth import scopes
from app.auth.api_keys import hash_api_key
from app.auth.tokens import decode_user_token
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn
from app.models.enums import Cadence, ConfigurationStatus, Role
from app.models.metering import AlertKind, ProcessCounter, ProcessKind, ProcessStart
from app.models.tenancy import ApiKey, Tenant, User
from app.models.usage import TenantUsage
from app.services import alerts, sql
from app.services.checkout import activates_subscription
from app.services.errors import Unauthenticated
from app.services.idempotency import fingerprint
from app.services.periods import period_containing
from app.settings import get_settings

CONSTANT = orjson.dumps({"data": {"quota": {"allowed": True, "reason": None}}})


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


async def constant(request: Request) -> Response:
    return Response(CONSTANT, media_type="application/json")


async def one_row(request: Request) -> Response:
    """The issue's reference point: one row read through Tortoise, no authentication."""
    usage = await TenantUsage.get_or_none(tenant__slug=request.query_params["tenant"])
    return _json({"credits": usage.credits if usage else None})


async def _tenant_of(request: Request, scope: str) -> Tenant | None:
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    key = await ApiKey.get_or_none(key_hash=hash_api_key(token), revoked_at=None).select_related("tenant")
    if key is None or scope not in key.scopes:
        return None
    return key.tenant


async def _credits_limit(tenant: Tenant, now: dt.datetime) -> tuple[int, int] | None:
    """(credits limit, process allowance), or None without an active plan."""
    subscription = await PlanSubscription.get_or_none(tenant_id=tenant.id, status="ACTIVE").select_related(
        "plan"
    )
    if subscription is None:
        return None
    add_ons = await AddOnSubscription.filter(
        Q(contracted_at__lte=now) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now)), tenant_id=tenant.id
    ).select_related("add_on")
    limit = subscription.plan.credits + sum(a.add_on.increment_credits * a.quantity for a in add_ons)
    return limit, limit * 30 * (100 + subscription.plan.process_buffer_percent) // 100


async def quota(request: Request) -> Response:
    tenant = await _tenant_of(request, "quota:check")
    if tenant is None:
        return _json({"error": "unauthenticated"}, 401)
    now = dt.datetime.now(dt.UTC)
    limits = await _credits_limit(tenant, now)
    if limits is None:
        return _json({"allowed": False, "reason": "PLAN_INACTIVE"})
    limit, allowance = limits
    usage = await TenantUsage.get_or_none(tenant_id=tenant.id)
    used_credits = usage.credits if usage else 0
    period = period_containing(now, tenant.billing_anchor_day).name
    counter = await ProcessCounter.get_or_none(tenant_id=tenant.id, period=period)
    processes = counter.used if counter else 0
    allowed = used_credits <= limit
    return _json(
        {
            "allowed": allowed,
            "reason": None if allowed else "CREDITS_EXCEEDED",
            "creditsUsed": used_credits,
            "creditsLimit": limit,
            "processesUsed": processes,
            "processAllowance": allowance,
        }
    )


async def start(request: Request) -> Response:
    tenant = await _tenant_of(request, "process:start")
    if tenant is None:
        return _json({"error": "unauthenticated"}, 401)
    body = orjson.loads(await request.body())
    now = dt.datetime.now(dt.UTC)
    limits = await _credits_limit(tenant, now)
    if limits is None:
        return _json({"allowed": False, "reason": "PLAN_INACTIVE"})
    limit, allowance = limits
    period = period_containing(now, tenant.billing_anchor_day).name
    ticket = uuid.uuid4()
    over_limit = TenantUsage.filter(tenant_id=tenant.id, credits__gt=limit).values("tenant_id")
    async with in_transaction():
        await ProcessStart.create(
            id=ticket,
            tenant_id=tenant.id,
            idempotency_key=body["idempotencyKey"],
            process=body["process"],
            period=period,
            started_at=now,
        )
        counted = await (
            ProcessCounter.filter(tenant_id=tenant.id, period=period)
            .exclude(tenant_id__in=Subquery(over_limit))
            .update(used=F("used") + 1)
        )
        if not counted:
            return _json({"allowed": False, "reason": "CREDITS_EXCEEDED"})
        counter = await ProcessCounter.get(tenant_id=tenant.id, period=period)
    return _json(
        {"allowed": True, "ticket": str(ticket), "processesUsed": counter.used, "allowance": allowance}
    )


# -- The minimal baselines (issue 17): the least a correct hand-written endpoint must do -------------
#
# Raw SQL with RETURNING on Tortoise's connection (``app.services.sql`` renders the placeholders for SQLite
# and PostgreSQL). Credentials and the figures a warm gateway caches (the tenant, its anchor day, its
# credit limit; an add-on's row) are read once per worker into plain dicts, as a warm gateway holds them.


@dataclass(frozen=True, slots=True)
class _Connector:
    tenant_id: uuid.UUID
    anchor_day: int
    credits_limit: int


@dataclass(frozen=True, slots=True)
class _Admin:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    anchor_day: int
    currency: str
    email: str


_connectors: dict[tuple[str, str], _Connector] = {}
_admins: dict[str, _Admin] = {}
_add_ons: dict[str, AddOn] = {}


class _Refused(Exception):
    """Raised inside a transaction to roll it back; carries the answer."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__()
        self.answer = answer


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


async def _connector(request: Request, scope: str, now: dt.datetime) -> _Connector | None:
    """The key's tenant and credit limit: read once (the hand-written baseline's statements), then a dict."""
    cache_key = (hash_api_key(_bearer(request)), scope)
    known = _connectors.get(cache_key)
    if known is None:
        tenant = await _tenant_of(request, scope)
        limits = await _credits_limit(tenant, now) if tenant else None
        if tenant is None or limits is None:
            return None
        known = _connectors[cache_key] = _Connector(tenant.id, tenant.billing_anchor_day, limits[0])
    return known


async def _admin(request: Request, now: dt.datetime) -> _Admin | None:
    """The admin of a bearer token: verified and read once, then a dict."""
    token = _bearer(request)
    known = _admins.get(token)
    if known is None:
        try:
            claims = decode_user_token(token, secret=get_settings().jwt_secret, now=now)
        except Unauthenticated:
            return None
        row = await sql.fetch_first(
            sql.with_tenant(User, 'm."id" = {0} AND m."tenant_id" = {1}'),
            uuid.UUID(str(claims["sub"])),
            uuid.UUID(str(claims["tid"])),
        )
        if row is None:
            return None
        user, tenant = sql.split_with_tenant(User, row)
        if user.role != Role.ADMIN:
            return None
        known = _admins[token] = _Admin(
            tenant.id, user.id, tenant.billing_anchor_day, tenant.currency, user.email
        )
    return known


async def _add_on(code: str) -> AddOn | None:
    known = _add_ons.get(code)
    if known is None:
        known = await AddOn.get_or_none(code=code, is_active=True)
        if known is not None:
            _add_ons[code] = known
    return known


_MINIMAL_START = (
    "INSERT INTO process_start (id, tenant_id, idempotency_key, process, period, started_at)"
    " VALUES ({0}, {1}, {2}, {3}, {4}, {5})"
    " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id"
)
_REPLAYED_START = "SELECT id FROM process_start WHERE tenant_id = {0} AND idempotency_key = {1}"


@cache
def _minimal_count(process: ProcessKind) -> str:
    """The counter's conditional UPDATE: +1 in all and for the kind while the credits are within the limit
    and the kind is neither paused nor at its cap (the gateway's rules, docs/design.md)."""
    column = ProcessCounter.column_of(process)
    return (
        f'UPDATE process_counter SET "used" = "used" + 1, "{column}" = "{column}" + 1'
        " WHERE tenant_id = {0} AND period = {1}"
        ' AND NOT EXISTS (SELECT 1 FROM tenant_usage WHERE tenant_id = {0} AND "credits" > {2})'
        " AND NOT EXISTS (SELECT 1 FROM process_control WHERE tenant_id = {0} AND process = {3}"
        f' AND (paused OR "{column}" >= monthly_cap))'
        ' RETURNING "used"'
    )


async def minimal_start(request: Request) -> Response:
    """One transaction: the start's INSERT under its key, then the counter's conditional UPDATE."""
    now = dt.datetime.now(dt.UTC)
    connector = await _connector(request, scopes.PROCESS_START, now)
    if connector is None:
        return _json({"error": "unauthenticated"}, 401)
    body = orjson.loads(await request.body())
    process = ProcessKind(body["process"])
    key = str(body["idempotencyKey"])
    period = period_containing(now, connector.anchor_day).name
    tenant_id = connector.tenant_id
    try:
        async with in_transaction():
            inserted = await sql.fetch_first(
                _MINIMAL_START, uuid.uuid4(), tenant_id, key, process.value, period, now
            )
            if not inserted:  # a retry: the first attempt's ticket
                ticket = (await sql.fetch_one(_REPLAYED_START, tenant_id, key))[0]
                return _json({"allowed": True, "ticket": str(ticket), "replayed": True})
            counted = await sql.fetch_first(
                _minimal_count(process), tenant_id, period, connector.credits_limit, process.value
            )
            if not counted:
                raise _Refused({"allowed": False, "reason": "DENIED"})
    except _Refused as refused:
        return _json(refused.answer)
    return _json({"allowed": True, "ticket": str(inserted["id"]), "count": int(counted["used"])})


_MINIMAL_REPORT = (
    "INSERT INTO tenant_usage (tenant_id, variants, customers, contacts, sales_reps, admin_users, credits,"
    " users, integrations, storage_bytes, measured_at, updated_at)"
    " VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, COALESCE({8}, CAST(0 AS BIGINT)), {9}, {10}, {11})"
    " ON CONFLICT (tenant_id) DO UPDATE SET variants = excluded.variants, customers = excluded.customers,"
    " contacts = excluded.contacts, sales_reps = excluded.sales_reps, admin_users = excluded.admin_users,"
    " credits = excluded.credits, users = excluded.users,"
    " integrations = COALESCE({8}, tenant_usage.integrations), storage_bytes = excluded.storage_bytes,"
    " measured_at = excluded.measured_at, updated_at = excluded.updated_at"
    " WHERE tenant_usage.measured_at IS NULL OR tenant_usage.measured_at < excluded.measured_at"
    " RETURNING credits, storage_bytes, users, integrations"
)
_ALERT_STATE = (
    "SELECT t.alert_thresholds, a.kind, a.threshold FROM tenant AS t"
    " LEFT JOIN alert_arming AS a ON a.tenant_id = t.id AND a.triggered WHERE t.id = {0}"
)


async def minimal_report(request: Request) -> Response:
    """One transaction: the upsert of the usage guarded by ``measured_at``, then the thresholds and the
    triggered armings the alert evaluation starts from; the credit crossings are judged (no threshold
    is crossed in the bench, so nothing more is written)."""
    now = dt.datetime.now(dt.UTC)
    connector = await _connector(request, scopes.USAGE_REPORT, now)
    if connector is None:
        return _json({"error": "unauthenticated"}, 401)
    body = orjson.loads(await request.body())
    counts = [int(body[name]) for name in ("variants", "customers", "contacts", "salesReps", "adminUsers")]
    measured_at = dt.datetime.fromisoformat(body["measuredAt"])
    integrations = body.get("integrations")
    async with in_transaction():
        applied = await sql.fetch_first(
            _MINIMAL_REPORT,
            connector.tenant_id,
            *counts,
            sum(counts),
            int(body.get("users", counts[4])),
            None if integrations is None else int(integrations),
            int(body["storageBytes"]),
            measured_at,
            now,
        )
        if not applied:
            return _json({"applied": False})
        rows = await sql.fetch_rows(_ALERT_STATE, connector.tenant_id)
    settings = rows[0][0]
    thresholds = alerts.normalized_thresholds(
        orjson.loads(settings) if isinstance(settings, str) else settings
    )
    triggered = {int(threshold) for _, kind, threshold in rows if kind == AlertKind.CREDITS.value}
    credits = int(applied["credits"])
    measure = alerts.Measure(AlertKind.CREDITS, credits, connector.credits_limit)
    crossed = alerts.transitions(measure, thresholds, triggered)
    return _json({"applied": True, "credits": credits, "crossed": len(crossed)})


_OPEN_CART = (
    "INSERT INTO cart (id, tenant_id, user_id, status, open_owner, created_at, updated_at)"
    " VALUES ({0}, {1}, {2}, 'OPEN', {3}, {4}, {4})"
    " ON CONFLICT (open_owner) DO UPDATE SET updated_at = excluded.updated_at RETURNING id"
)
_ADD_LINE = (
    "INSERT INTO cart_line (id, cart_id, add_on_id, position, quantity, unit_price, currency, added_at)"
    " VALUES ({0}, {1}, {2}, (SELECT COUNT(*) FROM cart_line WHERE cart_id = {1}), {3}, {4}, {5}, {6})"
    " ON CONFLICT (cart_id, add_on_id) DO UPDATE SET quantity = cart_line.quantity + excluded.quantity,"
    " unit_price = excluded.unit_price, currency = excluded.currency RETURNING quantity"
)


async def minimal_add_to_cart(request: Request) -> Response:
    """One transaction: the open cart created or touched (its row lock, which checkout's close takes too),
    then the line's upsert at the price shown now."""
    now = dt.datetime.now(dt.UTC)
    admin = await _admin(request, now)
    if admin is None:
        return _json({"error": "unauthenticated"}, 401)
    body = orjson.loads(await request.body())
    add_on = await _add_on(str(body["code"]))
    if add_on is None or admin.currency not in add_on.prices:
        return _json({"error": "unavailable"})
    price = Decimal(add_on.prices[admin.currency])
    async with in_transaction():
        # Both upserts always return their row (inserted or updated).
        cart = (
            await sql.fetch_all(
                _OPEN_CART, uuid.uuid4(), admin.tenant_id, admin.user_id, str(admin.user_id), now
            )
        )[0]
        line = (
            await sql.fetch_all(
                _ADD_LINE,
                uuid.uuid4(),
                cart["id"],
                add_on.id,
                int(body["quantity"]),
                price,
                admin.currency,
                now,
            )
        )[0]
    return _json({"added": True, "cart": str(cart["id"]), "quantity": int(line["quantity"])})


_CLOSE_CART = (
    "UPDATE cart SET status = 'CHECKED_OUT', open_owner = NULL, checked_out_at = {1}, updated_at = {1}"
    " WHERE open_owner = {0} RETURNING id"
)
_CART_LINES = (
    "SELECT l.add_on_id, l.quantity, l.unit_price, a.code, a.name, a.cadence, a.is_free, a.prices,"
    " a.increment_storage_mb, a.increment_users, a.increment_integrations, a.increment_credits, a.features,"
    " a.requires_configuration"
    " FROM cart_line AS l JOIN add_on AS a ON a.id = l.add_on_id WHERE l.cart_id = {0} ORDER BY l.position"
)
_INSERT_ORDER = (
    "INSERT INTO store_order (id, tenant_id, user_id, cart_id, idempotency_key, request_fingerprint,"
    " currency, period_start, period_end, subtotal, discount, total, monthly_increase, due_on_next_invoice,"
    " one_off_total, new_monthly_total, created_at)"
    " VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {9}, {11}, {9}, {12}, {11}, {13})"
    " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id"
)
_ZERO = Decimal("0.00")
_REPLAYED_ORDER = "SELECT id FROM store_order WHERE tenant_id = {0} AND idempotency_key = {1}"
_SUBSCRIPTION_ROW = "({}, {}, {}, {}, {}, {}, {}, 'ACTIVE', {}, {})"
_ORDER_LINE_ROW = "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, FALSE)"
_INSERT_SUBSCRIPTIONS = (
    "INSERT INTO add_on_subscription (id, tenant_id, add_on_id, quantity, unit_price, currency,"
    " contracted_at, status, configuration_status, configuration)"
)
_INSERT_ORDER_LINES = (
    "INSERT INTO store_order_line (id, order_id, add_on_id, position, add_on_code, name, cadence, is_free,"
    " quantity, unit_price, line_total, amount_due, discount, total, subscription_id, coupon_applies)"
)
_OUTBOX = (
    "INSERT INTO outbox_email (id, tenant_id, dedupe_key, to_address, subject, body, kind, locale,"
    " attachments, status, attempts, next_attempt_at, created_at)"
    " VALUES ({0}, {1}, {2}, {3}, {4}, {5}, 'purchase', 'en', '[]', 'PENDING', 0, {6}, {6})"
)


def _multi_row(head: str, row: str, rows: list[list[Any]]) -> tuple[str, list[Any]]:
    """One INSERT of all ``rows`` (each ``row`` template's ``{}`` numbered in turn) and its flat values."""
    templates: list[str] = []
    values: list[Any] = []
    for row_values in rows:
        marks = [f"{{{len(values) + n}}}" for n in range(len(row_values))]
        templates.append(row.format(*marks))
        values += row_values
    return head + " VALUES " + ", ".join(templates), values


async def minimal_checkout(request: Request) -> Response:
    """One transaction: close the open cart (first: its row lock orders this after any add in flight),
    read its lines with their add-ons' prices (one join), insert the order, the add-on subscriptions and
    the order's lines (one multi-row INSERT each, whatever the number of lines), and the outbox e-mail."""
    now = dt.datetime.now(dt.UTC)
    admin = await _admin(request, now)
    if admin is None:
        return _json({"error": "unauthenticated"}, 401)
    key = str(orjson.loads(await request.body())["idempotencyKey"])
    period = period_containing(now, admin.anchor_day)
    try:
        async with in_transaction():
            closed = await sql.fetch_first(_CLOSE_CART, str(admin.user_id), now)
            if not closed:
                raise _Refused({"error": "EMPTY_CART"})
            cart_id = closed["id"]
            lines = await sql.fetch_rows(_CART_LINES, cart_id)
            if not lines:
                raise _Refused({"error": "EMPTY_CART"})
            subscriptions, order_lines = [], []
            subtotal = monthly = _ZERO
            order_id = uuid.uuid4()
            for position, line in enumerate(lines):
                add_on_id, quantity, unit_price, code, name, cadence, is_free, prices = line[:8]
                prices = orjson.loads(prices) if isinstance(prices, str) else prices
                unit_price = Decimal(str(unit_price))
                if Decimal(prices.get(admin.currency, "-1")) != unit_price:
                    raise _Refused({"error": "PRICE_CHANGED", "addOnCode": code})
                line_total = unit_price * quantity
                subtotal += line_total
                subscription_id = None
                features = orjson.loads(line[12]) if isinstance(line[12], str) else line[12]
                if activates_subscription(
                    Cadence(cadence), has_increments=any(line[8:12]), has_features=bool(features)
                ):
                    subscription_id = uuid.uuid4()
                    status = ConfigurationStatus.PENDING if line[13] else ConfigurationStatus.NOT_REQUIRED
                    subscriptions.append(
                        [subscription_id, admin.tenant_id, add_on_id, quantity, unit_price, admin.currency,
                         now, status.value, "{}"]
                    )  # fmt: skip
                if cadence == Cadence.MONTHLY:
                    monthly += line_total
                order_lines.append(
                    [uuid.uuid4(), order_id, add_on_id, position, code, name, cadence, bool(is_free),
                     quantity, unit_price, line_total, line_total, _ZERO, line_total, subscription_id]
                )  # fmt: skip
            fingerprint_ = fingerprint({"cart": str(cart_id), "lines": [row[:3] for row in lines]})
            inserted = await sql.fetch_first(
                _INSERT_ORDER, order_id, admin.tenant_id, admin.user_id, cart_id, key, fingerprint_,
                admin.currency, period.start, period.end, subtotal, _ZERO, monthly, subtotal - monthly,
                now,
            )  # fmt: skip
            if not inserted:  # a retry: the first attempt's order, and the cart stays as it was
                replayed = await sql.fetch_one(_REPLAYED_ORDER, admin.tenant_id, key)
                raise _Refused({"order": str(replayed[0]), "replayed": True})
            if subscriptions:
                statement, values = _multi_row(_INSERT_SUBSCRIPTIONS, _SUBSCRIPTION_ROW, subscriptions)
                await sql.execute(statement, *values)
            statement, values = _multi_row(_INSERT_ORDER_LINES, _ORDER_LINE_ROW, order_lines)
            await sql.execute(statement, *values)
            names = ", ".join(f"{row[8]} x {row[5]}" for row in order_lines)
            await sql.execute(
                _OUTBOX, uuid.uuid4(), admin.tenant_id, f"order:{order_id}", admin.email,
                "Your purchase is confirmed",
                f"Order {order_id}: {names}; total {subtotal} {admin.currency}.", now,
            )  # fmt: skip
    except _Refused as refused:
        return _json(refused.answer)
    return _json({"order": str(order_id), "lines": len(order_lines), "total": str(subtotal)})


def create_baseline_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/__bench/constant", constant, methods=["GET", "POST"]),
            Route("/__bench/one-row", one_row, methods=["GET"]),
            Route("/__bench/quota", quota, methods=["POST"]),
            Route("/__bench/start", start, methods=["POST"]),
            Route("/__bench/minimal-start", minimal_start, methods=["POST"]),
            Route("/__bench/minimal-report", minimal_report, methods=["POST"]),
            Route("/__bench/minimal-add", minimal_add_to_cart, methods=["POST"]),
            Route("/__bench/minimal-checkout", minimal_checkout, methods=["POST"]),
        ]
    )
