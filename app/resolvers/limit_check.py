"""``limitCheck``: may the environment add users, integrations or bytes now (issue 15). The rules are in
``app.services.limit_check``; like ``quota`` it is advice that counts and reserves nothing."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.auth import scopes
from app.resolvers.catalog import StoragePolicyEnum
from app.resolvers.common import Money, described_enum
from app.resolvers.context import Info
from app.resolvers.errors import InvalidInputError
from app.resolvers.permissions import allow
from app.resolvers.scalars import Long
from app.services import limit_check as service

LimitResourceEnum = described_enum(
    service.LimitResource,
    "LimitResource",
    "A limit of the environment that `limitCheck` measures an addition against.",
    {
        service.LimitResource.USERS: "User accounts, against the users limit.",
        service.LimitResource.INTEGRATIONS: "Integrations in use, against the integrations limit.",
        service.LimitResource.STORAGE: "Storage, in bytes, against the storage included (1 MB = 1 MiB).",
    },
)
LimitCheckReasonEnum = described_enum(
    service.LimitCheckReason,
    "LimitCheckReason",
    "Why an addition is refused, or allowed at a cost.",
    {
        service.LimitCheckReason.LIMIT_REACHED: "Denied: the users or integrations would pass the limit; "
        "`available` says how many still fit (an add-on raises the limit at once).",
        service.LimitCheckReason.STORAGE_CAP: "Denied: the storage would pass the storage included and the "
        "plan's policy is a hard cap.",
        service.LimitCheckReason.STORAGE_OVERAGE: "Allowed beyond the storage included: the plan bills each "
        "extra GB started (`extraMonthlyCost`).",
        service.LimitCheckReason.PLAN_INACTIVE: "Denied: the environment has no active plan.",
    },
)

_UNITS = "A count of users or integrations, or bytes for storage."


@strawberry.type(
    description="Whether an addition fits the environment's limits now, and the figures behind it."
)
class LimitCheck:
    resource: LimitResourceEnum = strawberry.field(  # type: ignore[valid-type]
        description="The limit measured."
    )
    adding: Long = strawberry.field(description=f"The amount asked about, as sent. {_UNITS}")
    allowed: bool = strawberry.field(
        description="Whether it may be added now: used + adding within the limit, or storage under an "
        "overage plan. Advice: nothing is reserved."
    )
    reason: LimitCheckReasonEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="Why it is refused or billed as overage; null: allowed within the limit."
    )
    limit: Long = strawberry.field(
        description="The effective limit: the plan's plus the active add-ons' (bytes for storage); 0 "
        "without an active plan."
    )
    used: Long = strawberry.field(
        description="The use as last reported by the connector (bytes for storage); 0 before any report."
    )
    available: Long = strawberry.field(
        description="What still fits within the limit: limit - used, 0 at or beyond it (bytes for storage)."
    )
    policy: StoragePolicyEnum | None = strawberry.field(  # type: ignore[valid-type]
        description="What happens beyond the storage included; null except for STORAGE with an active plan."
    )
    extra_monthly_cost: Money | None = strawberry.field(
        description="What the addition adds to the monthly overage bill: the overage cost after it minus "
        "the overage cost now (whole extra GB, rounded up, at the plan's price per GB); 0 when it stays "
        "within a GB already billed. Null except for STORAGE_OVERAGE."
    )
    overage_cost_after: Money | None = strawberry.field(
        description="The monthly overage cost of the storage once the addition is made (0 within the "
        "storage included, and under a hard cap); null except for STORAGE with an active plan."
    )

    @classmethod
    def of(cls, check: service.LimitCheck) -> LimitCheck:
        return cls(
            resource=check.resource,
            adding=Long(check.adding),
            allowed=check.allowed,
            reason=check.reason,
            limit=Long(check.limit),
            used=Long(check.used),
            available=Long(check.available),
            policy=check.policy,
            extra_monthly_cost=Money.of(check.extra_monthly_cost)
            if check.extra_monthly_cost is not None
            else None,
            overage_cost_after=Money.of(check.overage_cost_after)
            if check.overage_cost_after is not None
            else None,
        )


LimitCheckResult = Annotated[
    LimitCheck | InvalidInputError,
    strawberry.union("LimitCheckResult", description="The answer, or why the question was refused."),
]


@strawberry.type
class Query:
    @strawberry.field(
        name="limitCheck",
        extensions=allow(scopes.QUOTA_CHECK),
        description="May the environment add that many users, integrations or bytes now? Compares the use "
        "as last reported plus `adding` with the effective limit; storage beyond the storage included is "
        "refused under a hard cap and allowed, with its monthly cost, under overage. Counts and reserves "
        "nothing (advice, like `quota`).",
    )
    async def limit_check(
        self,
        info: Info,
        resource: Annotated[
            LimitResourceEnum,  # type: ignore[valid-type]
            strawberry.argument(description="The limit to measure against."),
        ],
        adding: Annotated[
            Long,
            strawberry.argument(
                description="How many to add: users or integrations (0 to 1,000,000,000), or bytes for "
                "storage (0 to 10^16); 0 asks whether the environment is within the limit now."
            ),
        ],
    ) -> LimitCheckResult | None:
        principal = await info.context.require_principal()
        check = await service.check_limit(
            principal.tenant,
            resource,
            adding,
            now=info.context.clock.now(),
            plan_cache=info.context.services.plan_cache,
        )
        return LimitCheck.of(check)
