"""The two baselines the gateway is compared with, as bare Starlette endpoints.

- ``/__bench/constant``: a constant JSON answer, the ceiling of uvicorn + Starlette on this machine.
- ``/__bench/one-row``: one row read through Tortoise (the issue's reference figure).
- ``/__bench/quota`` and ``/__bench/start``: what a user would hand-write with Tortoise for the quota
  check and the process start, doing the same work as the gateway (authenticate the API key by its
  hash, load the plan and the add-ons counting now for the credit limit, read the usage and the
  period's counter; for a start, one transaction with the start's INSERT and the counter's
  conditional UPDATE), with none of GraphQL's parsing, validation or execution.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.expressions import F, Q, Subquery
from tortoise.transactions import in_transaction

from app.auth.api_keys import hash_api_key
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.metering import ProcessCounter, ProcessStart
from app.models.tenancy import ApiKey, Tenant
from app.models.usage import TenantUsage
from app.services.periods import period_containing

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


def create_baseline_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/__bench/constant", constant, methods=["GET", "POST"]),
            Route("/__bench/one-row", one_row, methods=["GET"]),
            Route("/__bench/quota", quota, methods=["POST"]),
            Route("/__bench/start", start, methods=["POST"]),
        ]
    )
