"""Plan limits and effective limits (docs/design.md, "Plans and limits")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.models.billing import AddOnSubscription
from app.models.catalog import AddOn, Plan


@dataclass(frozen=True, slots=True)
class Limits:
    storage_mb: int = 0
    users: int = 0
    integrations: int = 0
    credits: int = 0

    def __add__(self, other: Limits) -> Limits:
        return Limits(
            storage_mb=self.storage_mb + other.storage_mb,
            users=self.users + other.users,
            integrations=self.integrations + other.integrations,
            credits=self.credits + other.credits,
        )

    def times(self, quantity: int) -> Limits:
        return Limits(
            storage_mb=self.storage_mb * quantity,
            users=self.users * quantity,
            integrations=self.integrations * quantity,
            credits=self.credits * quantity,
        )

    @classmethod
    def of_plan(cls, plan: Plan) -> Limits:
        return cls(
            storage_mb=plan.storage_mb, users=plan.users, integrations=plan.integrations, credits=plan.credits
        )

    @classmethod
    def increments_of(cls, add_on: AddOn) -> Limits:
        return cls(
            storage_mb=add_on.increment_storage_mb,
            users=add_on.increment_users,
            integrations=add_on.increment_integrations,
            credits=add_on.increment_credits,
        )


def effective_limits(plan: Plan, active: Iterable[AddOnSubscription]) -> Limits:
    """Plan limits plus each active add-on's increments times its quantity.

    ``active`` must already be filtered to the add-ons counting at the moment of interest and have
    ``add_on`` loaded.
    """
    total = Limits.of_plan(plan)
    for subscription in active:
        total += Limits.increments_of(subscription.add_on).times(subscription.quantity)
    return total


def effective_features(plan: Plan, active: Iterable[AddOnSubscription]) -> list[str]:
    features = dict.fromkeys(plan.features)
    for subscription in active:
        features.update(dict.fromkeys(subscription.add_on.features))
    return list(features)
