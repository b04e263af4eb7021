"""Plan sizing without the database (app.services.plan_sizing): the seed's example, each plan's fit and
headroom on the demo catalog, the cheapest credit packs when no plan is enough (checked by brute force),
margins at both ends and validation."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.money import Money
from app.services.errors import InvalidInput
from app.services.plan_sizing import (
    Counts,
    PackOption,
    PlanOption,
    cheapest_packs,
    recommend,
    with_margin,
)

# The demo catalog (app/data/demo-catalog.yaml) in EUR, in catalog order.
PLANS = [
    PlanOption("storefront-s", 1500, Money.of("39.00", "EUR")),
    PlanOption("storefront-m", 3000, Money.of("79.00", "EUR")),
    PlanOption("storefront-l", 10000, Money.of("199.00", "EUR")),
    PlanOption("erp-start", 1000, Money.of("29.90", "EUR")),
    PlanOption("erp-pro", 5000, Money.of("69.90", "EUR")),
]
PACKS = [
    PackOption("credits-1000", 1000, Money.of("25.00", "EUR"), max_quantity=20),
    PackOption("credits-5000", 5000, Money.of("99.00", "EUR"), max_quantity=10),
]
SEED = Counts(variants=340, customers=1200, contacts=1200, sales_reps=5, admin_users=3)


def size(counts: Counts, margin: int = 20, plans: list[PlanOption] = PLANS, packs: list[PackOption] = PACKS):  # type: ignore[no-untyped-def]
    return recommend(plans, packs, counts, margin_percent=margin, currency="EUR")


def test_the_seed_example_needs_2748_credits_and_3298_with_20_percent() -> None:
    sizing = size(SEED)

    assert sizing.credits_needed == 2748
    assert sizing.credits_with_margin == 3298  # 2748 x 1.2 = 3297.6, rounded up


def test_each_demo_plan_fit_and_headroom_for_the_seed_example() -> None:
    fits = {fit.plan.code: (fit.fits, fit.headroom, fit.headroom_percent) for fit in size(SEED).plans}

    assert fits == {
        "storefront-s": (False, -1798, Decimal("-119.9")),
        "storefront-m": (False, -298, Decimal("-9.9")),
        "storefront-l": (True, 6702, Decimal("67.0")),
        "erp-start": (False, -2298, Decimal("-229.8")),
        "erp-pro": (True, 1702, Decimal("34.0")),
    }


def test_the_cheapest_fitting_plan_is_recommended_without_packs() -> None:
    choice = size(SEED).recommendation
    assert choice is not None
    assert (choice.plan.code, choice.packs, choice.monthly_price, choice.covers_need) == (
        "erp-pro",
        (),
        Money.of("69.90", "EUR"),
        True,
    )
    storefronts = [plan for plan in PLANS if plan.code.startswith("storefront")]
    choice = size(SEED, plans=storefronts).recommendation
    assert choice is not None
    assert choice.plan.code == "storefront-l"


def test_a_price_tie_goes_to_the_plan_with_more_credits() -> None:
    twins = [PlanOption("a", 4000, Money.of("50", "EUR")), PlanOption("b", 6000, Money.of("50", "EUR"))]

    choice = size(SEED, plans=twins).recommendation

    assert choice is not None
    assert choice.plan.code == "b"


@pytest.mark.parametrize(
    ("variants", "expected_packs", "monthly"),
    [
        (20000, {"credits-5000": 2}, "397.00"),  # 199 + 2 x 99 (not 10 x 25)
        (21000, {"credits-5000": 2, "credits-1000": 1}, "422.00"),  # 11,000 short
        (24000, {"credits-5000": 3}, "496.00"),  # 14,000 short: 3 x 99 = 297 < 2 x 99 + 4 x 25 = 298
        (10001, {"credits-1000": 1}, "224.00"),
    ],
)
def test_none_fits_the_largest_plan_and_the_cheapest_packs(
    variants: int, expected_packs: dict[str, int], monthly: str
) -> None:
    choice = size(Counts(variants=variants), margin=0).recommendation

    assert choice is not None
    assert choice.plan.code == "storefront-l"
    assert {line.pack.code: line.quantity for line in choice.packs} == expected_packs
    assert choice.monthly_price == Money.of(monthly, "EUR")
    assert choice.covers_need is True
    assert choice.credits >= variants


def test_beyond_every_pack_at_its_maximum_the_choice_does_not_cover_the_need() -> None:
    choice = size(
        Counts(customers=80_001), margin=0
    ).recommendation  # 10,000 + 20 x 1,000 + 10 x 5,000 = 80,000

    assert choice is not None
    assert choice.covers_need is False
    assert {line.pack.code: line.quantity for line in choice.packs} == {
        "credits-1000": 20,
        "credits-5000": 10,
    }
    assert choice.monthly_price == Money.of("1689.00", "EUR")  # 199 + 500 + 990


def test_packs_not_sold_with_the_largest_plan_are_left_out() -> None:
    packs = [
        PackOption("erp-only", 5000, Money.of("1.00", "EUR"), eligible_plan_codes=("erp-pro",)),
        *PACKS,
    ]

    choice = size(Counts(variants=15000), margin=0, packs=packs).recommendation

    assert choice is not None
    assert {line.pack.code: line.quantity for line in choice.packs} == {"credits-5000": 1}


def test_margins_zero_and_one_thousand_percent() -> None:
    assert size(SEED, margin=0).credits_with_margin == 2748
    assert size(SEED, margin=1000).credits_with_margin == 30228
    assert with_margin(1, 1) == 2  # 1.01 rounds up
    assert with_margin(0, 1000) == 0
    nothing = size(Counts(), margin=1000)
    assert all(fit.fits for fit in nothing.plans)
    assert nothing.recommendation is not None
    assert nothing.recommendation.plan.code == "erp-start"


@pytest.mark.parametrize(
    ("counts", "margin", "field"),
    [
        (Counts(variants=-1), 20, "counts.variants"),
        (Counts(sales_reps=1_000_000_001), 20, "counts.salesReps"),
        (Counts(admin_users=-5), 20, "counts.adminUsers"),
        (SEED, -1, "marginPercent"),
        (SEED, 1001, "marginPercent"),
    ],
)
def test_out_of_range_input_is_invalid(counts: Counts, margin: int, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        size(counts, margin=margin)
    assert raised.value.field == field


def test_the_largest_counts_are_sized_exactly() -> None:
    most = Counts(*(1_000_000_000,) * 5)

    sizing = size(most, margin=1000)

    assert sizing.credits_with_margin == 55_000_000_000
    assert sizing.recommendation is not None
    assert sizing.recommendation.covers_need is False


def test_an_unlimited_pack_covers_any_deficit() -> None:
    unlimited = [PackOption("credits-1000", 1000, Money.of("25.00", "EUR"))]

    choice = size(Counts(variants=10_000_000), margin=0, packs=unlimited).recommendation

    assert choice is not None
    assert choice.covers_need is True
    assert [(line.pack.code, line.quantity) for line in choice.packs] == [("credits-1000", 9990)]


# --- The cheapest combination, against brute force -------------------------------------------------

packs_strategy = st.lists(
    st.builds(
        lambda credits, cents, maximum: (credits, cents, maximum),
        st.integers(1, 40),
        st.integers(0, 5000),
        st.none() | st.integers(0, 6),
    ),
    min_size=1,
    max_size=3,
)


def brute_force(packs: list[PackOption], deficit: int) -> Decimal | None:
    ranges = [
        range((pack.max_quantity if pack.max_quantity is not None else math.ceil(deficit / pack.credits)) + 1)
        for pack in packs
    ]
    costs = [
        sum((pack.unit_price.times(q).amount for pack, q in zip(packs, quantities, strict=True)), Decimal(0))
        for quantities in itertools.product(*ranges)
        if sum(pack.credits * q for pack, q in zip(packs, quantities, strict=True)) >= deficit
    ]
    return min(costs) if costs else None


@settings(max_examples=300, deadline=None)
@given(specs=packs_strategy, deficit=st.integers(1, 200))
def test_the_packs_chosen_are_the_cheapest_combination(
    specs: list[tuple[int, int, int | None]], deficit: int
) -> None:
    packs = [
        PackOption(f"p{i}", credits, Money.of(Decimal(cents) / 100, "EUR"), max_quantity=maximum)
        for i, (credits, cents, maximum) in enumerate(specs)
    ]

    found = cheapest_packs(packs, deficit)
    expected = brute_force(packs, deficit)

    if expected is None:
        assert found is None
        return
    assert found is not None
    assert sum(pack.credits * q for pack, q in zip(packs, found, strict=True)) >= deficit
    for pack, quantity in zip(packs, found, strict=True):
        assert pack.max_quantity is None or quantity <= pack.max_quantity
    assert (
        sum((pack.unit_price.times(q).amount for pack, q in zip(packs, found, strict=True)), Decimal(0))
        == expected
    )
