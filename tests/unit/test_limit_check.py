"""The limit check's decision without a database: within, at and beyond the limit; storage under a hard
cap and under overage (whole extra GB, rounded up, only the GB the addition adds); the bounds of
``adding``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app import money
from app.models.catalog import Plan
from app.models.enums import StoragePolicy
from app.services.errors import InvalidInput
from app.services.limit_check import (
    LimitCheckReason,
    LimitResource,
    decide,
    inactive,
    limit_of,
    validate_adding,
)
from app.services.limits import Limits

GIB = 1024**3
LIMITS = Limits(storage_mb=20 * 1024, users=5, integrations=2, credits=4000)


def plan(policy: StoragePolicy) -> Plan:
    prices = {"EUR": "2.30", "BRL": "12.90"} if policy == StoragePolicy.OVERAGE else {}
    return Plan(
        code="p", storage_mb=10240, users=5, integrations=2, credits=1, prices={}, storage_policy=policy,
        overage_prices_per_gb=prices,
    )  # fmt: skip


OVERAGE = plan(StoragePolicy.OVERAGE)
HARD_CAP = plan(StoragePolicy.HARD_CAP)


def eur(amount: str) -> money.Money:
    return money.Money(Decimal(amount), "EUR")


@pytest.mark.parametrize(
    ("resource", "used", "adding", "allowed", "available"),
    [
        (LimitResource.USERS, 3, 2, True, 2),  # at the limit: fine
        (LimitResource.USERS, 3, 3, False, 2),
        (LimitResource.USERS, 6, 0, False, 0),  # already beyond: nothing available
        (LimitResource.INTEGRATIONS, 0, 2, True, 2),
        (LimitResource.INTEGRATIONS, 2, 1, False, 0),
    ],
)
def test_users_and_integrations_beyond_the_limit_are_refused(
    resource: LimitResource, used: int, adding: int, allowed: bool, available: int
) -> None:
    check = decide(resource, adding, used=used, limits=LIMITS, plan=OVERAGE, currency="EUR")

    assert (check.allowed, check.available) == (allowed, available)
    assert check.reason == (None if allowed else LimitCheckReason.LIMIT_REACHED)
    assert (check.policy, check.extra_monthly_cost, check.overage_cost_after) == (None, None, None)


def test_storage_is_measured_in_bytes_of_the_effective_limit() -> None:
    assert limit_of(LIMITS, LimitResource.STORAGE) == 20 * GIB
    check = decide(LimitResource.STORAGE, 20 * GIB, used=0, limits=LIMITS, plan=HARD_CAP, currency="EUR")
    assert (check.allowed, check.reason, check.limit) == (True, None, 20 * GIB)


def test_storage_beyond_a_hard_cap_is_refused_at_no_cost() -> None:
    check = decide(LimitResource.STORAGE, 1, used=20 * GIB, limits=LIMITS, plan=HARD_CAP, currency="EUR")

    assert (check.allowed, check.reason, check.available) == (False, LimitCheckReason.STORAGE_CAP, 0)
    assert (check.policy, check.extra_monthly_cost) == (StoragePolicy.HARD_CAP, None)
    assert check.overage_cost_after == eur("0.00")


@pytest.mark.parametrize(
    ("used", "adding", "extra", "after"),
    [
        (20 * GIB, 1, "2.30", "2.30"),  # one byte beyond: a whole GB
        (19 * GIB, 2 * GIB + 1, "4.60", "4.60"),
        (20 * GIB + GIB // 2, GIB // 4, "0.00", "2.30"),  # within the GB already billed
        (20 * GIB + GIB // 2, 3 * GIB, "6.90", "9.20"),  # 1 GB billed now, 4 after
        (21 * GIB, 0, "0.00", "2.30"),  # already beyond, adding nothing
    ],
)
def test_storage_beyond_the_included_under_overage_is_allowed_with_its_cost(
    used: int, adding: int, extra: str, after: str
) -> None:
    check = decide(LimitResource.STORAGE, adding, used=used, limits=LIMITS, plan=OVERAGE, currency="EUR")

    assert (check.allowed, check.reason) == (True, LimitCheckReason.STORAGE_OVERAGE)
    assert (check.extra_monthly_cost, check.overage_cost_after) == (eur(extra), eur(after))


def test_storage_overage_is_priced_in_the_tenant_currency() -> None:
    check = decide(LimitResource.STORAGE, 2 * GIB, used=20 * GIB, limits=LIMITS, plan=OVERAGE, currency="BRL")

    assert check.extra_monthly_cost == money.Money(Decimal("25.80"), "BRL")


def test_without_an_active_plan_nothing_may_be_added() -> None:
    check = inactive(LimitResource.USERS, 1, used=2)

    assert (check.allowed, check.reason, check.limit, check.used, check.available) == (
        False, LimitCheckReason.PLAN_INACTIVE, 0, 2, 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("resource", "adding"),
    [
        (LimitResource.USERS, -1),
        (LimitResource.USERS, 1_000_000_001),
        (LimitResource.INTEGRATIONS, 1_000_000_001),
        (LimitResource.STORAGE, -1),
        (LimitResource.STORAGE, 10**16 + 1),
    ],
)
def test_adding_out_of_bounds_is_invalid_input_on_adding(resource: LimitResource, adding: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_adding(resource, adding)
    assert refused.value.field == "adding"


@pytest.mark.parametrize(
    ("resource", "adding"),
    [(LimitResource.USERS, 0), (LimitResource.USERS, 1_000_000_000), (LimitResource.STORAGE, 10**16)],
)
def test_adding_within_bounds_is_accepted(resource: LimitResource, adding: int) -> None:
    assert validate_adding(resource, adding) == adding
