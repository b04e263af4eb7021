"""The catalog file's validation (docs/catalog.md): every error class, with its line, all at once."""

from __future__ import annotations

import textwrap

import pytest

from app.seed import DEMO_CATALOG
from app.services.catalog_file import CatalogError, InvalidCatalog, load_path, parse

BASE = textwrap.dedent(
    """\
    currencies: [EUR, BRL]
    locales: [en, pt-BR, es]
    plans:
      - code: basic
        name: {en: Basic, pt-BR: Básico, es: Básico}
        prices: {EUR: "10.00", BRL: "50.00"}
        limits: {users: 3, integrations: 1, credits: 1000}
      - code: pro
        name: {en: Pro}
        prices: {EUR: "20.00", BRL: "90.00"}
        limits: {users: 5, integrations: 2, credits: 2000}
        storage_policy: OVERAGE
        overage_per_gb: {EUR: "2.30", BRL: "12.90"}
    add_ons:
      - code: users-1
        name: {en: 1 extra user}
        category: USERS
        prices: {EUR: "4.90", BRL: "24.90"}
        increments: {users: 1}
        max_quantity: 20
      - code: reports
        name: {en: Reports}
        category: REPORTS
        prices: {EUR: "0.00", BRL: "0.00"}
        free: true
        eligible_plans: [pro]
        requires: [users-1]
    """
)


def errors_of(text: str) -> list[CatalogError]:
    with pytest.raises(InvalidCatalog) as raised:
        parse(text)
    return raised.value.errors


def only_error(text: str) -> CatalogError:
    errors = errors_of(text)
    assert len(errors) == 1, errors
    return errors[0]


def edited(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_base_and_the_demo_catalog_are_valid() -> None:
    catalog = parse(BASE)
    assert [plan.code for plan in catalog.plans] == ["basic", "pro"]
    assert catalog.add_ons[1].free
    demo = load_path(DEMO_CATALOG)
    assert len(demo.plans) == 5
    assert len(demo.add_ons) == 15
    assert all(set(item.name) == {"en", "pt-BR", "es"} for item in (*demo.plans, *demo.add_ons))


def test_a_yaml_syntax_error_is_reported_with_the_parsers_line() -> None:
    error = only_error(
        edited("    limits: {users: 3, integrations: 1, credits: 1000}", "    limits: {users: 3,")
    )
    assert error.line in (7, 8)
    assert "YAML syntax error" in error.message
    assert error.render("catalog.yaml").startswith(f"catalog.yaml:{error.line}: YAML syntax error")


def test_a_duplicate_key_is_a_yaml_error_on_its_line() -> None:
    error = only_error(edited("    category: USERS\n", "    category: USERS\n    category: REPORTS\n"))
    assert error.line == 18
    assert "YAML syntax error" in error.message


def test_an_unknown_key_suggests_the_closest_known_one() -> None:
    error = only_error(edited("    max_quantity: 20", "    max_quantiy: 20"))
    assert (error.line, error.path) == (20, "add_ons[0].max_quantiy")
    assert "unknown key 'max_quantiy' (did you mean 'max_quantity'?)" in error.message


def test_an_unknown_key_far_from_any_lists_the_allowed_ones() -> None:
    error = only_error(edited("currencies: [EUR, BRL]", "currencies: [EUR, BRL]\nwhatever: 1"))
    assert error.line == 2
    assert "allowed: currencies, locales, plans, add_ons" in error.message


def test_a_missing_required_key_is_reported_on_its_item() -> None:
    error = only_error(edited("    limits: {users: 3, integrations: 1, credits: 1000}\n", ""))
    assert (error.line, error.path, error.message) == (4, "plans[0]", "missing required key 'limits'")


def test_a_wrong_type_says_what_was_expected_and_what_came() -> None:
    error = only_error(edited("{users: 3, integrations: 1", "{users: three, integrations: 1"))
    assert (error.line, error.path) == (7, "plans[0].limits.users")
    assert "wrong type" in error.message
    assert "'three'" in error.message


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ('"-1.00"', "cannot be negative"),
        ('"4.999"', "at most 2 decimals"),
        ('"four"', "not a decimal amount"),
        ('".nan"', "not a decimal amount"),
        ("true", "not a decimal amount"),
    ],
)
def test_a_bad_amount_is_refused_on_its_line(amount: str, message: str) -> None:
    error = only_error(edited('{EUR: "4.90", BRL: "24.90"}', f'{{EUR: {amount}, BRL: "24.90"}}'))
    assert (error.line, error.path) == (18, "add_ons[0].prices.EUR")
    assert message in error.message


def test_an_unknown_currency_code_is_refused_where_declared_and_where_priced() -> None:
    declared = only_error(edited("currencies: [EUR, BRL]", "currencies: [EUR, BRL, XYZ]"))
    assert (declared.line, declared.path) == (1, "currencies[2]")
    assert "unknown currency code 'XYZ'" in declared.message
    priced = errors_of(edited('{EUR: "10.00", BRL: "50.00"}', '{EUR: "10.00", BRL: "50.00", USD: "11.00"}'))
    assert [(e.line, e.path) for e in priced] == [(6, "plans[0].prices.USD")]
    assert "not in currencies" in priced[0].message


def test_every_price_gives_every_declared_currency() -> None:
    error = only_error(edited('{EUR: "20.00", BRL: "90.00"}', '{EUR: "20.00"}'))
    assert (error.line, error.path) == (10, "plans[1].prices")
    assert "missing the price in BRL" in error.message


def test_duplicate_codes_are_refused_for_plans_and_add_ons() -> None:
    errors = errors_of(
        edited("  - code: pro\n", "  - code: basic\n").replace("code: reports", "code: users-1")
    )
    assert [(e.line, e.path) for e in errors][:2] == [(8, "plans[1].code"), (21, "add_ons[1].code")]
    assert "duplicate code 'basic' (first at line 4)" in errors[0].message
    assert "duplicate code 'users-1' (first at line 15)" in errors[1].message


def test_references_to_unknown_plans_and_add_ons_are_refused() -> None:
    errors = errors_of(
        edited("eligible_plans: [pro]", "eligible_plans: [prp]").replace("[users-1]", "[users-2]")
    )
    assert [(e.line, e.path) for e in errors] == [
        (26, "add_ons[1].eligible_plans[0]"),
        (27, "add_ons[1].requires[0]"),
    ]
    assert errors[0].message == "unknown plan 'prp' (did you mean 'pro'?)"
    assert errors[1].message == "unknown add-on 'users-2' (did you mean 'users-1'?)"


def test_a_requirement_cycle_is_refused_once() -> None:
    error = only_error(edited("    max_quantity: 20\n", "    max_quantity: 20\n    requires: [reports]\n"))
    assert error.line == 21
    assert error.message == "requirement cycle: users-1 -> reports -> users-1"


def test_max_quantity_below_one_is_refused() -> None:
    error = only_error(edited("max_quantity: 20", "max_quantity: 0"))
    assert (error.line, error.path) == (20, "add_ons[0].max_quantity")
    assert "greater than or equal to 1" in error.message


def test_a_free_add_on_must_cost_nothing() -> None:
    error = only_error(edited('{EUR: "0.00", BRL: "0.00"}', '{EUR: "0.00", BRL: "1.00"}'))
    assert (error.line, error.path) == (24, "add_ons[1].prices.BRL")
    assert "a free add-on costs nothing" in error.message


def test_bad_enum_values_list_the_allowed_ones() -> None:
    errors = errors_of(edited("category: USERS", "category: USER").replace("OVERAGE\n", "OVERAGES\n"))
    assert [(e.line, e.path) for e in errors] == [
        (12, "plans[1].storage_policy"),
        (17, "add_ons[0].category"),
    ]
    assert "'HARD_CAP' or 'OVERAGE'" in errors[0].message
    assert "'USERS'" in errors[1].message
    cadence = only_error(edited("category: USERS", "category: USERS\n    cadence: WEEKLY"))
    assert (cadence.line, cadence.path) == (18, "add_ons[0].cadence")


def test_the_default_locale_is_required_in_names_and_locales() -> None:
    name = only_error(edited("name: {en: Pro}", "name: {es: Pro}"))
    assert (name.line, name.message) == (9, "the name in the default locale 'en' is missing")
    locales = errors_of(edited("locales: [en, pt-BR, es]", "locales: [pt-BR, es]"))[0]
    assert (locales.line, locales.path) == (2, "locales")
    assert "must include the default 'en'" in locales.message


def test_a_name_in_an_undeclared_locale_is_refused() -> None:
    error = only_error(edited("name: {en: Pro}", "name: {en: Pro, fr: Pro}"))
    assert (error.line, error.path) == (9, "plans[1].name.fr")


def test_a_secret_setting_cannot_be_declared_in_clear() -> None:
    error = only_error(
        edited(
            "    max_quantity: 20\n",
            "    max_quantity: 20\n    configuration:\n"
            "      - {name: token, label: Token, kind: SECRET, secret: false}\n",
        )
    )
    assert error.path == "add_ons[0].configuration[0].secret"


def test_hostile_values_are_refused_without_echoing_them_whole() -> None:
    long_code = "x" * 5000
    errors = errors_of(edited("code: basic", f"code: {long_code}").replace("{en: Pro}", '{en: "a\\u0000b"}'))
    assert [(e.line, e.path) for e in errors] == [(4, "plans[0].code"), (9, "plans[1].name.en")]
    assert all(len(e.render("c.yaml")) < 400 for e in errors)


def test_every_error_is_reported_at_once_sorted_by_line() -> None:
    text = (
        edited("max_quantity: 20", "max_quantity: 0")
        .replace("category: REPORTS", "category: REPORT")
        .replace('{EUR: "10.00", BRL: "50.00"}', '{EUR: "10.001", BRL: "50.00"}')
        .replace("[users-1]", "[nothing]")
    )
    errors = errors_of(text)
    assert [e.line for e in errors] == [6, 20, 23]  # the reference is checked once its add-on is valid
    rendered = str(InvalidCatalog("shop.yaml", errors))
    assert (
        rendered.splitlines()[0] == "shop.yaml:6: plans[0].prices.EUR: not a decimal amount with at most 2 "
        "decimals: '10.001'"
    )


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    assert "must be a mapping" in only_error("- just\n- a list\n").message
    assert only_error("plans: []\n").message == "missing required key 'currencies'"


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    layers = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    layers += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    error = only_error("currencies: [EUR]\n" + "\n".join(layers) + "\n")
    assert "too large" in error.message


# --- conditions: the add-on's own wording per locale, optional like description ----------------------------

WITH_CONDITIONS = "name: {en: Reports}\n    conditions: {en: Pro plan only, pt-BR: Somente o plano Pro}"


def test_conditions_are_read_per_locale() -> None:
    catalog = parse(edited("name: {en: Reports}", WITH_CONDITIONS))
    reports = next(add_on for add_on in catalog.add_ons if add_on.code == "reports")
    assert reports.conditions == {"en": "Pro plan only", "pt-BR": "Somente o plano Pro"}
    assert next(add_on for add_on in catalog.add_ons if add_on.code == "users-1").conditions == {}
    demo = load_path(DEMO_CATALOG)
    start_pack = next(add_on for add_on in demo.add_ons if add_on.code == "start-pack")
    assert set(start_pack.conditions) == {"en", "pt-BR", "es"}


def test_conditions_need_the_default_locale_when_given() -> None:
    text = edited("name: {en: Reports}", "name: {en: Reports}\n    conditions: {pt-BR: Somente o plano Pro}")
    error = only_error(text)
    assert (error.line, error.path) == (23, "add_ons[1].conditions")
    assert error.message == "the conditions in the default locale 'en' is missing"


def test_conditions_in_an_undeclared_locale_are_refused() -> None:
    error = only_error(edited("name: {en: Reports}", "name: {en: Reports}\n    conditions: {en: x, fr: y}"))
    assert (error.line, error.path) == (23, "add_ons[1].conditions.fr")
    assert "not declared in locales" in error.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('""', "must not be empty"),
        ('"a\\x00b"', "control characters are not allowed in text"),
        ('"' + "x" * 2001 + '"', "at most 2000 characters"),
        ("[a, b]", "wrong type"),
    ],
)
def test_bad_conditions_texts_are_refused(value: str, message: str) -> None:
    error = only_error(
        edited("name: {en: Reports}", f"name: {{en: Reports}}\n    conditions: {{en: {value}}}")
    )
    assert error.path == "add_ons[1].conditions.en"
    assert message in error.message
