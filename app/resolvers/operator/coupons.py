"""Coupons in the operator API: create, list with their redemptions, deactivate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.dataloader import DataLoader

from app.auth.operator import COUPONS_WRITE, OPS_READ
from app.models.coupons import Coupon as CouponModel
from app.models.enums import AddOnCategory, CouponDuration, CouponKind
from app.models.store import CouponRedemption as CouponRedemptionModel
from app.resolvers.catalog import AddOnCategoryEnum
from app.resolvers.common import (
    AFTER_HELP,
    DEFAULT_PAGE_SIZE,
    PAGE_SIZE_HELP,
    Connection,
    Money,
    page_size,
)
from app.resolvers.errors import Error, InvalidInputError, NotFoundError, register_errors
from app.resolvers.ids import global_id
from app.resolvers.operator.context import OperatorInfo
from app.resolvers.operator.operations import EnvironmentRef
from app.resolvers.operator.permissions import needs
from app.resolvers.store import CouponDurationEnum, CouponKindEnum
from app.services import coupon_admin
from app.services.coupon_admin import CouponCodeTaken, CouponDraft

MAX_REDEMPTIONS_SHOWN = 100

RedemptionKey = tuple[str, int]  # (coupon id, how many)


async def _load_redemptions(keys: Sequence[RedemptionKey]) -> list[list[CouponRedemptionModel]]:
    """One query for every coupon of a page (per distinct ``first``), never one per coupon."""
    found: dict[RedemptionKey, list[CouponRedemptionModel]] = {}
    for first in {first for _, first in keys}:
        ids = [coupon_id for coupon_id, wanted in keys if wanted == first]
        for coupon_id, rows in zip(ids, await coupon_admin.redemptions_of(ids, first), strict=True):
            found[(coupon_id, first)] = rows
    return [found[key] for key in keys]


def redemption_loader() -> DataLoader[RedemptionKey, list[CouponRedemptionModel]]:
    """Built per request (a loader shared between requests would serve one request's rows to another)."""
    return DataLoader(load_fn=_load_redemptions)


@strawberry.type(description="An environment's use of a coupon: the order it was redeemed with.")
class CouponRedemption:
    environment: EnvironmentRef = strawberry.field(description="The environment that redeemed it.")
    order_id: strawberry.ID = strawberry.field(description="The id of the order (`Order.id` on /graphql).")
    redeemed_at: dt.datetime = strawberry.field(description="When the order was confirmed.")
    discount: Money = strawberry.field(description="The discount the coupon gave on that order.")

    @classmethod
    def of(cls, row: CouponRedemptionModel) -> CouponRedemption:
        return cls(
            environment=EnvironmentRef.of(row.tenant),
            order_id=global_id("Order", row.order.id),
            redeemed_at=row.redeemed_at,
            discount=Money(amount=row.order.discount, currency=row.order.currency),
        )


@strawberry.type(description="A discount coupon, its terms and its use.")
class Coupon:
    id: strawberry.ID = strawberry.field(description="Opaque id of the coupon.")
    code: str = strawberry.field(description="The code customers type (upper-case).")
    description: str = strawberry.field(description="What it is for, as given at its creation.")
    kind: CouponKindEnum = strawberry.field(description="A percentage or a fixed amount off.")  # type: ignore[valid-type]
    percent_off: Decimal | None = strawberry.field(description='PERCENT: the percentage off ("10.00").')
    amounts_off: list[Money] = strawberry.field(description="FIXED: the amount off in each currency.")
    duration: CouponDurationEnum = strawberry.field(description="Which charges it discounts.")  # type: ignore[valid-type]
    duration_periods: int | None = strawberry.field(description="REPEATING: how many billing periods.")
    valid_from: dt.datetime | None = strawberry.field(description="It applies from then; null: already.")
    valid_until: dt.datetime | None = strawberry.field(
        description="It no longer applies from then; null: never."
    )
    max_redemptions: int | None = strawberry.field(description="Redemptions allowed in all; null: no cap.")
    times_redeemed: int = strawberry.field(description="Redemptions so far, every environment together.")
    remaining_redemptions: int | None = strawberry.field(description="Redemptions left; null: no cap.")
    applies_to_add_on_codes: list[str] = strawberry.field(description="Only these add-ons; empty: any.")
    applies_to_categories: list[AddOnCategoryEnum] = strawberry.field(  # type: ignore[valid-type]
        description="Only add-ons of these categories; empty: any."
    )
    is_active: bool = strawberry.field(description="False once deactivated: no new application or checkout.")
    coupon_id: strawberry.Private[str]
    loader: strawberry.Private[DataLoader[RedemptionKey, list[CouponRedemptionModel]]]

    @strawberry.field(description="Its latest redemptions, newest first.")
    async def redemptions(
        self,
        first: Annotated[
            int, strawberry.argument(description=f"At most this many (1 to {MAX_REDEMPTIONS_SHOWN}).")
        ] = 10,
    ) -> list[CouponRedemption]:
        wanted = max(1, min(first, MAX_REDEMPTIONS_SHOWN))
        return [CouponRedemption.of(row) for row in await self.loader.load((self.coupon_id, wanted))]

    @classmethod
    def of(
        cls, coupon: CouponModel, loader: DataLoader[RedemptionKey, list[CouponRedemptionModel]]
    ) -> Coupon:
        cap = coupon.max_redemptions
        return cls(
            id=global_id("Coupon", coupon.code),
            code=coupon.code,
            description=coupon.description,
            kind=coupon.kind,
            percent_off=coupon.percent_off,
            amounts_off=[
                Money(amount=Decimal(amount), currency=currency)
                for currency, amount in sorted(coupon.amounts_off.items())
            ],
            duration=coupon.duration,
            duration_periods=coupon.duration_months,
            valid_from=coupon.valid_from,
            valid_until=coupon.valid_until,
            max_redemptions=cap,
            times_redeemed=coupon.times_redeemed,
            remaining_redemptions=max(cap - coupon.times_redeemed, 0) if cap is not None else None,
            applies_to_add_on_codes=list(coupon.applies_to_add_on_codes),
            applies_to_categories=[AddOnCategory(c) for c in coupon.applies_to_categories],
            is_active=coupon.is_active,
            coupon_id=str(coupon.id),
            loader=loader,
        )


@strawberry.type(description="Coupons by code, by page.")
class CouponConnection(Connection[Coupon]):
    pass


@strawberry.input(description="An amount off in one currency.")
class CouponAmountInput:
    currency: str = strawberry.field(description='"EUR" or "BRL": a currency environments are billed in.')
    amount: Decimal = strawberry.field(description='Above 0, at most 2 decimals: "5.00".')


@strawberry.input(
    description="A new coupon's terms. Inconsistent combinations are refused, naming the field."
)
class CreateCouponInput:
    code: str = strawberry.field(description="2 to 64 letters (A-Z), digits, '-' or '_'; stored upper-case.")
    kind: CouponKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="PERCENT (give `percentOff`) or FIXED (give `amountsOff`)."
    )
    duration: CouponDurationEnum = strawberry.field(  # type: ignore[valid-type]
        description="ONCE, REPEATING (give `durationPeriods`) or FOREVER."
    )
    description: str = strawberry.field(default="", description="What it is for: at most 300 characters.")
    percent_off: Decimal | None = strawberry.field(
        default=None, description="PERCENT only: above 0, at most 100, at most 2 decimals."
    )
    amounts_off: list[CouponAmountInput] | None = strawberry.field(
        default=None, description="FIXED only: one amount per currency."
    )
    duration_periods: int | None = strawberry.field(
        default=None, description="REPEATING only: the number of billing periods it discounts, 1 to 120."
    )
    valid_from: dt.datetime | None = strawberry.field(default=None, description="It applies from then.")
    valid_until: dt.datetime | None = strawberry.field(
        default=None, description="It no longer applies from then: after `validFrom`, and in the future."
    )
    max_redemptions: int | None = strawberry.field(
        default=None, description="Redemptions allowed in all, at least 1; null: no cap."
    )
    applies_to_add_on_codes: list[str] = strawberry.field(
        default_factory=list, description="Only these add-ons (catalog codes, each must exist); empty: any."
    )
    applies_to_categories: list[AddOnCategoryEnum] = strawberry.field(  # type: ignore[valid-type]
        default_factory=list, description="Only add-ons of these categories; empty: any."
    )

    def draft(self) -> CouponDraft:
        return CouponDraft(
            code=self.code,
            kind=CouponKind(self.kind),
            duration=CouponDuration(self.duration),
            description=self.description,
            percent_off=self.percent_off,
            amounts_off=[(amount.currency, amount.amount) for amount in self.amounts_off or ()],
            duration_periods=self.duration_periods,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            max_redemptions=self.max_redemptions,
            applies_to_add_on_codes=self.applies_to_add_on_codes,
            applies_to_categories=[AddOnCategory(c) for c in self.applies_to_categories],
        )


@strawberry.type(description="A coupon with this code exists with other terms.")
class CouponCodeTakenError(Error):
    pass


register_errors({CouponCodeTaken: CouponCodeTakenError})


@strawberry.type(description="The coupon created, or the one a retry had created.")
class CreateCouponSuccess:
    coupon: Coupon = strawberry.field(description="The coupon.")
    replayed: bool = strawberry.field(
        description="True when it existed with these very terms (a retry): nothing was written."
    )


@strawberry.type(description="The coupon, deactivated.")
class DeactivateCouponSuccess:
    coupon: Coupon = strawberry.field(description="The coupon, inactive.")
    was_active: bool = strawberry.field(description="False when it was inactive already: nothing changed.")


CreateCouponResult = Annotated[
    CreateCouponSuccess | InvalidInputError | CouponCodeTakenError,
    strawberry.union("CreateCouponResult", description="The coupon created, or why not."),
]
CouponResult = Annotated[
    Coupon | NotFoundError, strawberry.union("CouponResult", description="The coupon, or why there is none.")
]
DeactivateCouponResult = Annotated[
    DeactivateCouponSuccess | NotFoundError,
    strawberry.union("DeactivateCouponResult", description="The coupon deactivated, or why not."),
]


@strawberry.type
class Query:
    @strawberry.field(description="Coupons by code, each with its terms and use.", extensions=needs(OPS_READ))
    async def coupons(
        self,
        first: Annotated[int | None, strawberry.argument(description=PAGE_SIZE_HELP)] = DEFAULT_PAGE_SIZE,
        after: Annotated[str | None, strawberry.argument(description=AFTER_HELP)] = None,
        active: Annotated[
            bool | None,
            strawberry.argument(description="true: active ones only; false: inactive; null: all."),
        ] = None,
    ) -> CouponConnection | None:
        page = await coupon_admin.page(first=page_size(first), after=after, active=active)
        loader = redemption_loader()
        return CouponConnection.from_page(page, lambda coupon: Coupon.of(coupon, loader), after=after)

    @strawberry.field(
        description="One coupon by its code (any case), active or not.", extensions=needs(OPS_READ)
    )
    async def coupon(
        self, code: Annotated[str, strawberry.argument(description="The coupon's code.")]
    ) -> CouponResult | None:
        return Coupon.of(await coupon_admin.find_coupon(code), redemption_loader())


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Create a coupon (audited: `coupon.create`). Retrying with the same code and terms "
        "returns the coupon created (`replayed`); the same code with other terms is refused.",
        extensions=needs(COUPONS_WRITE),
    )
    async def create_coupon(
        self,
        info: OperatorInfo,
        input: Annotated[CreateCouponInput, strawberry.argument(description="Its terms.")],
    ) -> CreateCouponResult | None:
        context = info.context
        created = await coupon_admin.create_coupon(context.operator, input.draft(), now=context.clock.now())
        return CreateCouponSuccess(
            coupon=Coupon.of(created.coupon, redemption_loader()), replayed=created.replayed
        )

    @strawberry.mutation(
        description="Deactivate a coupon (audited: `coupon.deactivate`): no new application, and carts that "
        "have it applied are refused at checkout until it is removed; its redemptions stay.",
        extensions=needs(COUPONS_WRITE),
    )
    async def deactivate_coupon(
        self, info: OperatorInfo, code: Annotated[str, strawberry.argument(description="The coupon's code.")]
    ) -> DeactivateCouponResult | None:
        context = info.context
        outcome = await coupon_admin.deactivate_coupon(context.operator, code, now=context.clock.now())
        return DeactivateCouponSuccess(
            coupon=Coupon.of(outcome.coupon, redemption_loader()), was_active=outcome.changed
        )
