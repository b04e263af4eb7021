"""The catalog file's fields of issue 14: an add-on's ``erp_prices`` and a plan's ``change_fee``
(docs/catalog.md): read, validated with their lines, applied, and exported back unchanged."""

from __future__ import annotations

import pytest
from tortoise.context import TortoiseContext

from app.clock import FrozenClock
from app.models.catalog import AddOn, Plan
from app.seed import DEMO_CATALOG
from app.services.catalog_apply import apply, diff, export_text
from app.services.catalog_file import load_path, parse
from tests.unit.test_catalog_file import BASE, edited, errors_of, only_error

PACK = """\
  - code: start-pack
    name: {en: Start Pack}
    category: SERVICES
    cadence: ONE_OFF
    prices: {EUR: "490.00", BRL: "2490.00"}
    max_quantity: 1
    erp_prices:
      bling: {EUR: "490.00", BRL: "2490.00"}
      tiny: {EUR: "390.00", BRL: "1990.00"}
"""
WITH_PACK = BASE + PACK
FEE = '    overage_per_gb: {EUR: "2.30", BRL: "12.90"}\n'
WITH_FEE = edited(FEE, FEE + '    change_fee: {EUR: "49.00", BRL: "249.00"}\n', WITH_PACK)


def test_erp_prices_and_change_fee_are_read() -> None:
    catalog = parse(WITH_FEE)

    pack = catalog.add_ons[-1]
    assert pack.erp_prices == {
        "bling": {"EUR": "490.00", "BRL": "2490.00"},
        "tiny": {"EUR": "390.00", "BRL": "1990.00"},
    }
    assert catalog.plans[1].change_fee == {"EUR": "49.00", "BRL": "249.00"}
    assert catalog.plans[0].change_fee == {}  # optional: free
    assert catalog.add_ons[0].erp_prices == {}  # sold for every ERP


def test_the_demo_catalog_sells_the_start_pack_for_bling_and_tiny() -> None:
    catalog = load_path(DEMO_CATALOG)

    pack = next(add_on for add_on in catalog.add_ons if add_on.code == "start-pack")
    assert pack.erp_prices["tiny"] == {"EUR": "390.00", "BRL": "1990.00"}
    assert sorted(pack.erp_prices) == ["bling", "tiny"]
    fees = {plan.code: plan.change_fee for plan in catalog.plans if plan.change_fee}
    assert fees == {
        "storefront-l": {"EUR": "49.00", "BRL": "249.00"},
        "erp-pro": {"EUR": "99.00", "BRL": "490.00"},
    }


@pytest.mark.parametrize(
    "name", ["Bling", "bling_erp", "sap.b1", "blíng", "x" * 65, "", "a b", "bling\x00"], ids=repr
)
def test_an_erp_name_is_a_lowercase_slug(name: str) -> None:
    error = only_error(edited("      bling: {", f"      {name!r}: {{", WITH_PACK))

    assert error.line == len(BASE.splitlines()) + 8
    assert error.path.startswith("add_ons[2].erp_prices")
    assert "not an ERP name" in error.message


def test_the_longest_erp_name_is_accepted() -> None:
    longest = "a" + "-" * 62 + "z"
    catalog = parse(edited("      bling: {", f"      {longest}: {{", WITH_PACK))
    assert longest in catalog.add_ons[-1].erp_prices


def test_every_currency_is_priced_for_every_erp() -> None:
    error = only_error(edited('tiny: {EUR: "390.00", BRL: "1990.00"}', 'tiny: {EUR: "390.00"}', WITH_PACK))

    assert error.path == "add_ons[2].erp_prices.tiny"
    assert error.line == len(BASE.splitlines()) + 9
    assert "missing the price in BRL" in error.message


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ('"-1.00"', "cannot be negative"),
        ('"3.999"', "at most 2 decimals"),
        ('"abc"', "not a decimal amount"),
        ("true", "not a decimal amount"),
        ('"1e12"', "at most 2 decimals"),
    ],
)
def test_erp_prices_are_amounts(amount: str, message: str) -> None:
    error = only_error(edited('tiny: {EUR: "390.00"', f"tiny: {{EUR: {amount}", WITH_PACK))

    assert error.path == "add_ons[2].erp_prices.tiny.EUR"
    assert message in error.message


def test_erp_prices_in_an_undeclared_currency() -> None:
    error = only_error(
        edited(
            'bling: {EUR: "490.00", BRL: "2490.00"}',
            'bling: {EUR: "490.00", BRL: "2490.00", USD: "5"}',
            WITH_PACK,
        )
    )

    assert error.path == "add_ons[2].erp_prices.bling.USD"
    assert error.message.startswith("unknown currency code 'USD'")


def test_erp_prices_of_the_wrong_shape() -> None:
    error = only_error(edited('tiny: {EUR: "390.00", BRL: "1990.00"}', 'tiny: "390.00"', WITH_PACK))

    assert error.path == "add_ons[2].erp_prices.tiny"
    assert error.message.startswith("wrong type")


def test_a_free_add_on_has_no_erp_prices() -> None:
    text = edited(
        "    requires: [users-1]\n",
        '    requires: [users-1]\n    erp_prices: {bling: {EUR: "0.00", BRL: "0.00"}}\n',
    )

    error = only_error(text)

    assert error.path == "add_ons[1].erp_prices"
    assert "free" in error.message


def test_a_change_fee_prices_every_currency() -> None:
    errors = errors_of(
        edited('change_fee: {EUR: "49.00", BRL: "249.00"}', 'change_fee: {EUR: "49.00", JPY: "1"}', WITH_FEE)
    )
    negative = only_error(edited('change_fee: {EUR: "49.00"', 'change_fee: {EUR: "-1"', WITH_FEE))

    assert [(error.line, error.path) for error in errors] == [
        (14, "plans[1].change_fee"),
        (14, "plans[1].change_fee.JPY"),
    ]
    assert "missing the price in BRL" in errors[0].message
    assert (negative.path, negative.line) == ("plans[1].change_fee.EUR", 14)
    assert "cannot be negative" in negative.message


def test_a_misspelt_key_is_suggested() -> None:
    error = only_error(edited("    erp_prices:\n", "    erp_price:\n", WITH_PACK))
    assert "did you mean 'erp_prices'" in error.message


async def test_apply_writes_them_and_export_gives_them_back(db: TortoiseContext, clock: FrozenClock) -> None:
    await apply(parse(WITH_FEE), now=clock.now())

    pack = await AddOn.get(code="start-pack")
    assert pack.erp_prices == {
        "bling": {"EUR": "490.00", "BRL": "2490.00"},
        "tiny": {"EUR": "390.00", "BRL": "1990.00"},
    }
    assert (await Plan.get(code="pro")).change_fees == {"EUR": "49.00", "BRL": "249.00"}
    assert (await Plan.get(code="basic")).change_fees == {}

    exported_text = await export_text()
    exported = parse(exported_text, filename="exported.yaml")

    assert (await diff(exported, now=clock.now())).empty
    assert exported.add_ons[-1].erp_prices == parse(WITH_FEE).add_ons[-1].erp_prices
    assert exported.plans[1].change_fee == {"EUR": "49.00", "BRL": "249.00"}
    assert "change_fee" not in exported_text.split("- code: pro")[0]  # basic has none: not written


async def test_changing_erp_prices_is_a_change_of_the_add_on(db: TortoiseContext, clock: FrozenClock) -> None:
    await apply(parse(WITH_FEE), now=clock.now())

    changed = await diff(
        parse(edited('tiny: {EUR: "390.00"', 'tiny: {EUR: "395.00"', WITH_FEE)), now=clock.now()
    )
    removed = await apply(
        parse(edited(FEE + '    change_fee: {EUR: "49.00", BRL: "249.00"}\n', FEE, WITH_FEE)),
        now=clock.now(),
    )

    assert [(change.code, [field.name for field in change.fields]) for change in changed.changes] == [
        ("start-pack", ["erp_prices"])
    ]
    assert [(change.code, [field.name for field in change.fields]) for change in removed.changes] == [
        ("pro", ["change_fees"])
    ]
    assert (await Plan.get(code="pro")).change_fees == {}
