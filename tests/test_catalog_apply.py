"""``tollgate catalog apply`` (docs/catalog.md): the diff, the one transaction, the price-change rule and
the removal rule seen through GraphQL, the export round trip, and the command line as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.broadcast import broadcaster_from_settings
from app.clock import FrozenClock
from app.models.billing import AddOnSubscription, PlanSubscription
from app.models.catalog import AddOn, Plan
from app.seed import DEMO_CATALOG, SeedResult
from app.services import catalog_apply
from app.services.catalog_apply import CatalogConflict, apply, diff, export_text
from app.services.catalog_file import Catalog, load_path, parse
from app.settings import Settings
from tests.api.test_checkout import checkout
from tests.api.test_invoice_preview import preview
from tests.api.test_store import add
from tests.conftest import GraphQLClient, post_to

DEMO_TEXT = DEMO_CATALOG.read_text(encoding="utf-8")
MY_PLAN = """
{ myPlan { ... on MyPlan {
  plan { code }
  monthlyTotal { amount currency }
  activeAddOns { addOn { code } unitPrice { amount } monthlyPrice { amount } }
} } }
"""
ADD_ONS = "{ addOns { code } }"
PLANS = "{ plans { code } }"


def edited(*edits: tuple[str, str], text: str = DEMO_TEXT) -> str:
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def without(code: str, text: str = DEMO_TEXT) -> str:
    """The file with the item ``code`` taken out (from its ``- code:`` line to the next item or comment)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- code: {code}")
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].lstrip().startswith(("- code:", "#", "add_ons:"))
        ),
        len(lines),
    )
    return "".join(lines[:start] + lines[end:])


async def my_plan(gql: GraphQLClient) -> dict[str, Any]:
    body = await gql.post(MY_PLAN, as_="admin@acme.test")
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["myPlan"]
    return result


def codes(body: dict[str, Any], field: str) -> list[str]:
    nodes = body["data"][field]
    return [node["code"] for node in (nodes["nodes"] if isinstance(nodes, dict) else nodes)]


async def test_the_seed_is_the_demo_file_and_applying_it_again_changes_nothing(
    demo: SeedResult, clock: FrozenClock
) -> None:
    changes = await apply(load_path(DEMO_CATALOG), now=clock.now())
    assert changes.empty
    assert changes.lines() == ["no changes"]
    plan = await Plan.get(code="storefront-m")
    assert plan.names == {"en": "Storefront M", "pt-BR": "Loja Virtual M", "es": "Tienda Online M"}
    assert (plan.prices, plan.storage_mb, plan.credits) == ({"EUR": "79.00", "BRL": "399.00"}, 10240, 3000)
    subscription = await PlanSubscription.get(tenant__slug="nova")
    assert (subscription.unit_price, subscription.currency) == (Decimal("349.90"), "BRL")


async def test_export_then_apply_changes_nothing(demo: SeedResult, clock: FrozenClock) -> None:
    await apply(parse(without("start-pack")), now=clock.now())  # an inactive item is not exported
    exported = parse(await export_text(), filename="exported.yaml")
    assert "start-pack" not in [add_on.code for add_on in exported.add_ons]
    assert (await diff(exported, now=clock.now())).empty
    assert exported.add_ons[0].name["pt-BR"] == "Armazenamento 500 MB"


async def test_a_price_change_keeps_contracted_prices_and_new_purchases_pay_the_new_one(
    demo: SeedResult, clock: FrozenClock, gql: GraphQLClient
) -> None:
    before = await my_plan(gql)
    assert before["monthlyTotal"]["amount"] == "123.00"  # storefront-m 79 + storage 19 + credits 25

    changes = await apply(
        parse(
            edited(
                ('prices: {EUR: "79.00", BRL: "399.00"}', 'prices: {EUR: "89.00", BRL: "449.00"}'),
                ('prices: {EUR: "25.00", BRL: "125.00"}', 'prices: {EUR: "30.00", BRL: "125.00"}'),
            )
        ),
        now=clock.now(),
    )
    assert changes.lines() == [
        '~ plan storefront-m: prices: {"BRL": "399.00", "EUR": "79.00"} -> {"BRL": "449.00", "EUR": "89.00"}',
        "  1 contracted subscription keep their price; new purchases pay the new one",
        '~ add-on credits-1000: prices: {"BRL": "125.00", "EUR": "25.00"} -> '
        '{"BRL": "125.00", "EUR": "30.00"}',
        "  1 contracted subscription keep their price; new purchases pay the new one",
        "0 new, 2 changed, 0 no longer sold, 0 sold again",
    ]
    after = await my_plan(gql)
    assert after["monthlyTotal"]["amount"] == "123.00"
    credits = next(a for a in after["activeAddOns"] if a["addOn"]["code"] == "credits-1000")
    assert credits["unitPrice"]["amount"] == "25.00"
    invoice = await preview(gql)
    unit_prices = {
        line["code"]: line["unitPrice"]["amount"] for line in invoice["lines"] if line["unitPrice"]
    }
    assert unit_prices["storefront-m"] == "79.00"
    assert unit_prices["credits-1000"] == "25.00"

    assert (await add(gql, "credits-1000"))["__typename"] == "AddToCartSuccess"
    bought = await checkout(gql, "after-price-change")
    assert bought["__typename"] == "CheckoutSuccess", bought
    assert [line["unitPrice"]["amount"] for line in bought["order"]["lines"]] == ["30.00"]
    assert (await my_plan(gql))["monthlyTotal"]["amount"] == "153.00"  # 123 + the new pack at 30


async def test_a_removed_item_stops_being_sold_and_its_subscriptions_continue(
    demo: SeedResult, clock: FrozenClock, gql: GraphQLClient
) -> None:
    changes = await apply(parse(without("storage-10gb", without("storefront-m"))), now=clock.now())
    lines = changes.lines()
    assert "- plan storefront-m: stops being sold; 1 active subscription continues" in lines
    assert "- add-on storage-10gb: stops being sold; 1 active subscription continues" in lines
    assert "~ plan storefront-l: sort_order: 2 -> 1" in lines  # the file's order is the store's
    assert "storage-10gb" not in codes(await gql.post(ADD_ONS), "addOns")
    assert "storefront-m" not in codes(await gql.post(PLANS), "plans")
    refused = await add(gql, "storage-10gb")
    assert (refused["__typename"], refused["code"]) == ("AddOnUnavailableError", "ADD_ON_UNAVAILABLE")
    plan = await my_plan(gql)
    assert plan["plan"]["code"] == "storefront-m"
    assert "storage-10gb" in [a["addOn"]["code"] for a in plan["activeAddOns"]]
    assert plan["monthlyTotal"]["amount"] == "123.00"
    assert "storage-10gb" in [line["code"] for line in (await preview(gql))["lines"]]
    assert not (await AddOn.get(code="storage-10gb")).is_active  # never deleted
    assert await AddOnSubscription.filter(add_on__code="storage-10gb").count() == 1

    back = await apply(load_path(DEMO_CATALOG), now=clock.now())
    assert "~ add-on storage-10gb: sold again" in back.lines()
    assert "storage-10gb" in codes(await gql.post(ADD_ONS), "addOns")


async def test_a_dry_run_writes_nothing(demo: SeedResult, clock: FrozenClock) -> None:
    catalog = parse(edited(("code: start-pack", "code: start-pack-2")))
    planned = await apply(catalog, now=clock.now(), dry_run=True)
    assert "+ add-on start-pack-2: new" in planned.lines()
    assert "- add-on start-pack: stops being sold; 0 active subscriptions continue" in planned.lines()
    assert not await AddOn.exists(code="start-pack-2")
    assert (await AddOn.get(code="start-pack")).is_active


async def test_concurrent_applies_create_each_item_once(demo: SeedResult, clock: FrozenClock) -> None:
    catalog = parse(edited(("code: start-pack", "code: start-pack-2")))
    results = await asyncio.gather(
        *(apply(catalog, now=clock.now()) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, catalog_apply.CatalogDiff | CatalogConflict) for r in results), results
    assert sum(1 for r in results if isinstance(r, catalog_apply.CatalogDiff) and not r.empty) >= 1
    assert await AddOn.filter(code="start-pack-2").count() == 1
    assert (await diff(catalog, now=clock.now())).empty


@pytest.mark.skipif(not os.environ.get("TOLLGATE_REDIS_URL"), reason="needs TOLLGATE_REDIS_URL (CI sets it)")
async def test_running_gateways_drop_their_catalog_answers_when_told(
    settings: Settings, clock: FrozenClock, demo: SeedResult
) -> None:
    from app.main import create_app

    shared = settings.model_copy(
        update={
            "redis_url": os.environ["TOLLGATE_REDIS_URL"],
            "redis_channel_prefix": f"t-{uuid.uuid4().hex}:",
            "catalog_cache_seconds": 600,
        }
    )
    gateway = create_app(shared, clock=clock, manage_orm=False, run_background_tasks=False)
    async with gateway.router.lifespan_context(gateway):
        assert "storage-10gb" in codes(await post_to(gateway, ADD_ONS, {}, {}), "addOns")  # now cached
        await apply(parse(without("storage-10gb")), now=clock.now())
        assert "storage-10gb" in codes(await post_to(gateway, ADD_ONS, {}, {}), "addOns")  # still cached
        broadcaster = broadcaster_from_settings(shared)
        try:
            await broadcaster.publish(catalog_apply.CHANNEL, "*")  # what the command does after applying
        finally:
            await broadcaster.aclose()
        for _ in range(100):
            listed = codes(await post_to(gateway, ADD_ONS, {}, {}), "addOns")
            if "storage-10gb" not in listed:
                break
            await asyncio.sleep(0.02)
        assert "storage-10gb" not in listed


# The command line, as an operator runs it: a real process on an SQLite file whose tables are the models'.


def tollgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite://{tmp_path / 'catalog.sqlite3'}"
    schema = (
        "from tortoise import Tortoise, run_async\n"
        "from app.db import tortoise_config\nfrom app.settings import Settings\n"
        "async def main():\n"
        f"    await Tortoise.init(config=tortoise_config(Settings(database_url={url!r})))\n"
        "    await Tortoise.generate_schemas()\n"
        "    await Tortoise.close_connections()\n"
        "run_async(main())\n"
    )
    subprocess.run([sys.executable, "-c", schema], check=True, timeout=120)
    return {**os.environ, "TOLLGATE_DATABASE_URL": url, "TOLLGATE_REDIS_URL": ""}


def test_the_command_refuses_an_invalid_file_with_every_error_and_exit_2(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        edited(
            ('prices: {EUR: "1.50", BRL: "7.90"}', 'prices: {EUR: "1.505", BRL: "7.90"}'),
            ("category: STORAGE", "categroy: STORAGE"),
        ),
        encoding="utf-8",
    )
    result = tollgate("catalog", "apply", str(bad), env=cli_env)
    assert result.returncode == 2
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"{bad}:69: add_ons[0]: missing required key 'category'")
    assert errors[1].startswith(f"{bad}:75: add_ons[0].categroy: unknown key 'categroy' (did you mean")
    assert (
        errors[2] == f"{bad}:76: add_ons[0].prices.EUR: not a decimal amount with at most 2 decimals: '1.505'"
    )
    assert "nothing applied" in errors[-1]
    assert result.stdout == ""


def test_the_command_prints_the_diff_applies_it_and_exports_it(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    dry = tollgate("catalog", "apply", str(DEMO_CATALOG), "--dry-run", env=cli_env)
    assert dry.returncode == 0, dry.stderr
    assert "+ plan storefront-s: new" in dry.stdout
    assert dry.stdout.strip().endswith("dry run: nothing applied")
    applied = tollgate("catalog", "apply", str(DEMO_CATALOG), env=cli_env)
    assert applied.returncode == 0, applied.stderr
    assert "5 new, 0 changed, 0 no longer sold, 0 sold again" not in applied.stdout  # plans and add-ons
    assert "20 new, 0 changed, 0 no longer sold, 0 sold again" in applied.stdout
    again = tollgate("catalog", "apply", str(DEMO_CATALOG), env=cli_env)
    assert again.stdout.strip() == "no changes"

    exported = tollgate("catalog", "export", env=cli_env)
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / "exported.yaml"
    path.write_text(exported.stdout, encoding="utf-8")
    assert isinstance(parse(exported.stdout), Catalog)
    assert tollgate("catalog", "apply", str(path), env=cli_env).stdout.strip() == "no changes"
