"""Types shared by every domain: Money, Limits, billing periods."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from app import money
from app.services import limits, periods


@strawberry.type(description="An amount in a currency; `amount` travels as a decimal string, never a float.")
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, value: money.Money) -> Money:
        return cls(amount=value.amount, currency=value.currency)


@strawberry.type(description="Storage, users, integrations and credits.")
class Limits:
    storage_mb: int = strawberry.field(description="Storage in MB (a plan includes 10 GB = 10240 MB).")
    users: int
    integrations: int
    credits: int

    @classmethod
    def of(cls, value: limits.Limits) -> Limits:
        return cls(
            storage_mb=value.storage_mb,
            users=value.users,
            integrations=value.integrations,
            credits=value.credits,
        )


@strawberry.type(description='A billing period, named after the month it starts in ("2026-11").')
class BillingPeriod:
    name: str
    start: dt.date
    end: dt.date = strawberry.field(description="First day after the period.")

    @classmethod
    def of(cls, value: periods.BillingPeriod) -> BillingPeriod:
        return cls(name=value.name, start=value.start, end=value.end)
