"""Plan sizing: the plan (and credit packs) a store of a given size needs (``planRecommendation``, issue 14).

The rules (``recommend`` applies them without the database; ``plan_recommendation`` loads what it needs):

- **Credits needed** = variants + customers + contacts + sales reps + admin users (seed 002: 340 + 1,200 +
  1,200 + 5 + 3 = 2,748), as ``app.services.credits`` counts them.
- **With margin** = ceil(needed x (100 + margin) / 100), in whole credits (2,748 with 20% -> 3,298).
- A plan **fits** when its credits >= the credits needed with margin. Its **headroom** = plan credits -
  credits with margin (negative when it falls short); **headroom percent** = headroom / plan credits x 100,
  rounded half-up to one decimal (null for a plan of no credits).
- **Recommended**: the cheapest plan that fits; on a price tie the one with more credits (more room for
  the same price), then the catalog's order. When none fits: the plan with the most credits (ties: the
  cheaper, then the catalog's order) plus the cheapest combination of credit packs sold with that plan
  (its ``eligible_plan_codes``, in the currency, within each ``max_quantity``) covering the deficit, found
  by an exact search over the pack counts (ties: fewer surplus credits, then fewer units). When even every
  pack at its maximum cannot cover it, ``covers_need`` is false and every pack is recommended at its
  maximum. The monthly price is the plan's plus each pack line (unit price x quantity, rounded once per
  line, half-up).
- **Validation** (``INVALID_INPUT`` naming the ``field``): each count 0..1,000,000,000, the margin
  0..1000 %, plan codes that name no plan on sale (listed); ``UNSUPPORTED_CURRENCY`` for a currency no
  candidate plan is sold in. An anonymous caller must send counts (missing ones count 0).
- **Defaults** (``plan_recommendation``): a signed-in caller's missing counts are those of its tenant's
  latest usage report (0 without one), its currency the tenant's. Anonymous: the configured default
  currency (``TOLLGATE_DEFAULT_CURRENCY``, EUR, as the catalog's ``price`` fields use) when the candidate
  plans are sold in it, else the alphabetically first currency they are sold in.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app import money
from app.i18n import _
from app.models.catalog import AddOn, Plan
from app.models.enums import AddOnCategory
from app.services.errors import InvalidInput, UnsupportedCurrency, shown
from app.services.usage import current_usage

COUNT_NAMES = ("variants", "customers", "contacts", "sales_reps", "admin_users")
# The names the GraphQL input gives them, for the ``field`` of an error.
COUNT_FIELDS = {
    "variants": "counts.variants",
    "customers": "counts.customers",
    "contacts": "counts.contacts",
    "sales_reps": "counts.salesReps",
    "admin_users": "counts.adminUsers",
}
MAX_COUNT = 1_000_000_000
MAX_MARGIN_PERCENT = 1000
DEFAULT_MARGIN_PERCENT = 20
MAX_PLAN_CODES = 50
# The exact search visits at most this many combinations of pack counts (the demo catalog: 21).
MAX_COMBINATIONS = 1_000_000


@dataclass(frozen=True, slots=True)
class Counts:
    variants: int = 0
    customers: int = 0
    contacts: int = 0
    sales_reps: int = 0
    admin_users: int = 0

    @property
    def credits(self) -> int:
        return self.variants + self.customers + self.contacts + self.sales_reps + self.admin_users


@dataclass(frozen=True, slots=True)
class PlanOption:
    code: str
    credits: int
    monthly_price: money.Money
    model: Any = None  # the catalog row, for the caller's display; never read here


@dataclass(frozen=True, slots=True)
class PackOption:
    code: str
    credits: int  # what one unit adds
    unit_price: money.Money
    max_quantity: int | None = None  # None: no limit
    eligible_plan_codes: tuple[str, ...] = ()  # empty: every plan
    model: Any = None

    def sold_with(self, plan_code: str) -> bool:
        return not self.eligible_plan_codes or plan_code in self.eligible_plan_codes


@dataclass(frozen=True, slots=True)
class PlanFit:
    plan: PlanOption
    fits: bool
    headroom: int
    headroom_percent: Decimal | None


@dataclass(frozen=True, slots=True)
class PackLine:
    pack: PackOption
    quantity: int

    @property
    def price(self) -> money.Money:
        return self.pack.unit_price.times(self.quantity)


@dataclass(frozen=True, slots=True)
class Choice:
    plan: PlanOption
    packs: tuple[PackLine, ...]
    monthly_price: money.Money
    covers_need: bool

    @property
    def credits(self) -> int:
        return self.plan.credits + sum(line.pack.credits * line.quantity for line in self.packs)


@dataclass(frozen=True, slots=True)
class Sizing:
    counts: Counts
    from_report: frozenset[str]  # the counts taken from the tenant's latest usage report
    report_measured_at: dt.datetime | None
    credits_needed: int
    credits_with_margin: int
    margin_percent: int
    currency: str
    plans: tuple[PlanFit, ...]
    recommendation: Choice | None  # None only without any candidate plan


# --- The rules, without the database -----------------------------------------------------------


def validate_counts(values: dict[str, int | None]) -> None:
    for name in COUNT_NAMES:
        value = values.get(name)
        if value is not None and not 0 <= value <= MAX_COUNT:
            raise InvalidInput(
                _(
                    "{name} is between 0 and {maximum}; got {value}.",
                    name=COUNT_FIELDS[name],
                    maximum=format(MAX_COUNT, ","),
                    value=shown(value),
                ),
                field=COUNT_FIELDS[name],
            )


def validate_margin(margin_percent: int) -> None:
    if not 0 <= margin_percent <= MAX_MARGIN_PERCENT:
        raise InvalidInput(
            _(
                "marginPercent is between 0 and {max_margin_percent}; got {margin_percent}.",
                max_margin_percent=MAX_MARGIN_PERCENT,
                margin_percent=shown(margin_percent),
            ),
            field="marginPercent",
        )


def with_margin(needed: int, margin_percent: int) -> int:
    """ceil(needed x (100 + margin) / 100), exactly (integers, no floats)."""
    return -(-needed * (100 + margin_percent) // 100)


def headroom_percent(headroom: int, plan_credits: int) -> Decimal | None:
    if plan_credits <= 0:
        return None
    return (Decimal(headroom) * 100 / Decimal(plan_credits)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def recommend(
    plans: Sequence[PlanOption],
    packs: Sequence[PackOption],
    counts: Counts,
    *,
    margin_percent: int,
    currency: str,
    from_report: Iterable[str] = (),
    report_measured_at: dt.datetime | None = None,
) -> Sizing:
    """The sizing of ``counts`` against ``plans`` (in catalog order) and credit ``packs``, every price in
    ``currency``. See the module's docstring for the rules."""
    validate_margin(margin_percent)
    validate_counts({name: getattr(counts, name) for name in COUNT_NAMES})
    needed = counts.credits
    target = with_margin(needed, margin_percent)
    fits = tuple(
        PlanFit(
            plan=plan,
            fits=plan.credits >= target,
            headroom=plan.credits - target,
            headroom_percent=headroom_percent(plan.credits - target, plan.credits),
        )
        for plan in plans
    )
    return Sizing(
        counts=counts,
        from_report=frozenset(from_report),
        report_measured_at=report_measured_at,
        credits_needed=needed,
        credits_with_margin=target,
        margin_percent=margin_percent,
        currency=currency,
        plans=fits,
        recommendation=choose(plans, packs, target, currency),
    )


def choose(
    plans: Sequence[PlanOption], packs: Sequence[PackOption], target: int, currency: str
) -> Choice | None:
    if not plans:
        return None
    order = {plan.code: position for position, plan in enumerate(plans)}
    fitting = [plan for plan in plans if plan.credits >= target]
    if fitting:
        best = min(fitting, key=lambda p: (p.monthly_price.amount, -p.credits, order[p.code]))
        return Choice(plan=best, packs=(), monthly_price=best.monthly_price, covers_need=True)
    largest = min(plans, key=lambda p: (-p.credits, p.monthly_price.amount, order[p.code]))
    eligible = [pack for pack in packs if pack.credits > 0 and pack.sold_with(largest.code)]
    quantities = cheapest_packs(eligible, target - largest.credits)
    covers = quantities is not None
    if quantities is None:
        # Even every pack at its maximum falls short (they all have one): the most that can be bought.
        quantities = [pack.max_quantity or 0 for pack in eligible]
    lines = tuple(
        PackLine(pack, quantity) for pack, quantity in zip(eligible, quantities, strict=True) if quantity
    )
    total = largest.monthly_price
    for line in lines:
        total += line.price
    return Choice(
        plan=largest, packs=lines, monthly_price=money.Money.of(total.amount, currency), covers_need=covers
    )


def cheapest_packs(packs: Sequence[PackOption], deficit: int) -> list[int] | None:
    """The quantity of each pack of the cheapest combination adding at least ``deficit`` credits (ties:
    fewer surplus credits, then fewer units), or None when every pack at its maximum falls short.

    Exact: every combination of counts is considered, the last pack's count computed rather than
    enumerated. The pack of the lowest price per credit among those without a maximum goes last; any
    other unlimited pack then needs fewer than ``c_last / gcd(c, c_last)`` units (that many are worth
    ``c / gcd`` units of the last pack, which cost no more), which bounds the search."""
    if deficit <= 0:
        return [0] * len(packs)
    unlimited = [i for i, pack in enumerate(packs) if pack.max_quantity is None]
    if unlimited:
        last = min(unlimited, key=lambda i: (packs[i].unit_price.amount / packs[i].credits, i))
    elif sum(pack.credits * (pack.max_quantity or 0) for pack in packs) < deficit:
        return None
    else:
        last = len(packs) - 1
    others = [i for i in range(len(packs)) if i != last]

    def bound(i: int) -> int:
        pack = packs[i]
        most = math.ceil(deficit / pack.credits)
        if pack.max_quantity is not None:
            return min(pack.max_quantity, most)
        c_last = packs[last].credits
        return min(most, c_last // math.gcd(pack.credits, c_last) - 1)

    bounds = [bound(i) for i in others]
    assert math.prod(b + 1 for b in bounds) <= MAX_COMBINATIONS, "too many credit packs to search exactly"
    best: tuple[tuple[Decimal, int, int], list[int]] | None = None
    counts = [0] * len(packs)

    def search(position: int, credits: int, cost: Decimal, units: int) -> None:
        nonlocal best
        if best is not None and cost > best[0][0]:
            return  # already dearer than the best found: adding packs only costs more
        if position == len(others):
            pack = packs[last]
            need = max(0, math.ceil((deficit - credits) / pack.credits))
            if pack.max_quantity is not None and need > pack.max_quantity:
                return
            counts[last] = need
            total = cost + pack.unit_price.times(need).amount
            key = (total, credits + need * pack.credits - deficit, units + need)
            if best is None or key < best[0]:
                best = (key, list(counts))
            return
        i = others[position]
        for quantity in range(bounds[position] + 1):
            counts[i] = quantity
            search(
                position + 1,
                credits + quantity * packs[i].credits,
                cost + packs[i].unit_price.times(quantity).amount,
                units + quantity,
            )
        counts[i] = 0

    search(0, 0, Decimal(0), 0)
    return None if best is None else best[1]


# --- With the catalog and the tenant's report --------------------------------------------------


def plan_option(plan: Plan, currency: str) -> PlanOption | None:
    try:
        price = money.price_in(plan.prices, currency)
    except money.UnsupportedCurrencyError:
        return None
    return PlanOption(code=plan.code, credits=plan.credits, monthly_price=price, model=plan)


def pack_option(add_on: AddOn, currency: str) -> PackOption | None:
    if add_on.erp_prices:  # sold for some ERPs only, at their own prices: quoted, not recommended
        return None
    try:
        price = money.price_in(add_on.prices, currency)
    except money.UnsupportedCurrencyError:
        return None
    return PackOption(
        code=add_on.code,
        credits=add_on.increment_credits,
        unit_price=price,
        max_quantity=add_on.max_quantity,
        eligible_plan_codes=tuple(add_on.eligible_plan_codes),
        model=add_on,
    )


def pick_currency(plans: Sequence[Plan], requested: str | None, default: str) -> str:
    sold_in = sorted({currency for plan in plans for currency in plan.prices})
    if requested is not None:
        currency = requested.strip().upper()
        if currency not in sold_in:
            raise UnsupportedCurrency(
                _("The plans are not sold in {requested}.", requested=shown(requested, 8)),
                field="currency",
                currency=currency[:8],
                available_currencies=sold_in,
            )
        return currency
    if default in sold_in or not sold_in:
        return default
    return sold_in[0]


async def plan_recommendation(
    counts: dict[str, int | None] | None,
    *,
    tenant_id: object | None,
    tenant_currency: str | None,
    margin_percent: int = DEFAULT_MARGIN_PERCENT,
    currency: str | None = None,
    plan_codes: Sequence[str] | None = None,
    default_currency: str = "EUR",
) -> Sizing:
    """The sizing for a caller: ``tenant_id`` (signed in) fills missing counts from its latest usage
    report and ``tenant_currency`` is its default currency; anonymous (None) must send ``counts``."""
    validate_margin(margin_percent)
    given = dict(counts or {})
    validate_counts(given)
    if tenant_id is None and counts is None:
        raise InvalidInput(
            _("Send the counts to size (or sign in to use your usage report)."), field="counts"
        )
    wanted = _plan_codes(plan_codes)
    plans = await Plan.filter(is_active=True)  # in catalog order (Meta.ordering)
    if wanted is not None:
        unknown = sorted(wanted - {plan.code for plan in plans})
        if unknown:
            raise InvalidInput(
                _(
                    "No plan on sale has the code(s) {codes}.",
                    codes=", ".join(shown(code) for code in unknown[:10]),
                ),
                field="planCodes",
            )
        plans = [plan for plan in plans if plan.code in wanted]
    chosen = pick_currency(plans, currency, tenant_currency or default_currency)
    options = [option for plan in plans if (option := plan_option(plan, chosen)) is not None]
    packs = [
        pack
        for add_on in await AddOn.filter(is_active=True, category=AddOnCategory.CREDITS)
        if (pack := pack_option(add_on, chosen)) is not None
    ]
    missing = [name for name in COUNT_NAMES if given.get(name) is None]
    from_report: list[str] = []
    measured_at = None
    if tenant_id is not None and missing:
        usage = await current_usage(str(tenant_id))
        measured_at = usage.measured_at
        for name in missing:
            given[name] = getattr(usage, name)
        if measured_at is not None:
            from_report = missing
    values = Counts(**{name: int(given.get(name) or 0) for name in COUNT_NAMES})
    return recommend(
        options,
        packs,
        values,
        margin_percent=margin_percent,
        currency=chosen,
        from_report=from_report,
        report_measured_at=measured_at,
    )


def _plan_codes(plan_codes: Sequence[str] | None) -> set[str] | None:
    if plan_codes is None:
        return None
    if len(plan_codes) > MAX_PLAN_CODES:
        raise InvalidInput(
            _("At most {max_plan_codes} plan codes.", max_plan_codes=MAX_PLAN_CODES), field="planCodes"
        )
    if not plan_codes:
        raise InvalidInput(
            _("Name at least one plan, or leave planCodes out for every plan."), field="planCodes"
        )
    return {code.strip() for code in plan_codes}
