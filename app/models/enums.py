"""Enumerations shared by the models, the services and the GraphQL layer."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"


class StoragePolicy(StrEnum):
    HARD_CAP = "HARD_CAP"  # uploads refused when full
    OVERAGE = "OVERAGE"  # extra storage billed per started GB


class AddOnCategory(StrEnum):
    STORAGE = "STORAGE"
    USERS = "USERS"
    INTEGRATIONS = "INTEGRATIONS"
    REPORTS = "REPORTS"
    ADVANCED_FEATURES = "ADVANCED_FEATURES"
    CREDITS = "CREDITS"
    SERVICES = "SERVICES"  # one-off services such as the Start Pack


class Cadence(StrEnum):
    MONTHLY = "MONTHLY"
    ONE_OFF = "ONE_OFF"


class PlanSubscriptionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CANCELED = "CANCELED"


class AddOnStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CANCELLING = "CANCELLING"  # cancelled, still counting until ends_at
    ENDED = "ENDED"


class ConfigurationStatus(StrEnum):
    NOT_REQUIRED = "NOT_REQUIRED"
    PENDING = "PENDING"
    CONFIGURED = "CONFIGURED"


class OutboxStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    DEAD = "DEAD"  # gave up after the maximum number of attempts


class CouponKind(StrEnum):
    PERCENT = "PERCENT"
    FIXED = "FIXED"


class CouponDuration(StrEnum):
    ONCE = "ONCE"  # the first charge only
    REPEATING = "REPEATING"  # the first ``duration_months`` monthly charges
    FOREVER = "FOREVER"


class PlanChangeKind(StrEnum):
    UPGRADE = "UPGRADE"  # the new plan costs at least as much per day: applies at once
    DOWNGRADE = "DOWNGRADE"  # cheaper: scheduled for the end of the billing period


class PlanChangeStatus(StrEnum):
    SCHEDULED = "SCHEDULED"  # a downgrade waiting for the end of the period
    APPLIED = "APPLIED"
    CANCELLED = "CANCELLED"  # a scheduled downgrade withdrawn before it took effect


class PlanChangeSource(StrEnum):
    TENANT = "TENANT"  # an admin's changePlan
    OPERATOR = "OPERATOR"  # the vendor's provisionEnvironment
