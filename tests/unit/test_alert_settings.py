"""The alert settings' rules on their own: which thresholds and recipients are accepted, and the start path's
shortcut (``may_cross``) against the crossings it stands for."""

from __future__ import annotations

import random

import pytest

from app.services import alerts
from app.services.alert_settings import (
    MAX_RECIPIENTS,
    may_cross,
    valid_recipient,
    valid_recipients,
    valid_thresholds,
)
from app.services.errors import InvalidInput


def refusal(call: object, *args: object) -> InvalidInput:
    assert callable(call)
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    return caught.value


# --- Thresholds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [([80, 90, 100], (80, 90, 100)), ([100, 1], (1, 100)), ([42], (42,)), ([5, 4, 3, 2, 1], (1, 2, 3, 4, 5))],
)
def test_one_to_five_distinct_percentages_are_stored_ascending(
    given: list[int], stored: tuple[int, ...]
) -> None:
    assert valid_thresholds(given) == stored


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ([], "0 were given"),
        ([1, 2, 3, 4, 5, 6], "6 were given"),
        ([0], "threshold 0 is not"),
        ([101], "threshold 101 is not"),
        ([-1, 50], "threshold -1 is not"),
        ([50, 60, 50], "threshold 50 is listed twice"),
        ([True], "not a whole number"),
        ([50.0], "not a whole number"),
        (["80"], "not a whole number"),
    ],
)
def test_other_lists_are_refused_naming_the_value(given: list[object], words: str) -> None:
    error = refusal(valid_thresholds, given)

    assert error.field == "thresholds"
    assert words in error.message


# --- Recipients ----------------------------------------------------------------------------------


def test_addresses_are_trimmed_and_kept_as_given() -> None:
    assert valid_recipients(["  Finance@Example.com ", "ops+alerts@mail.example.org"]) == (
        "Finance@Example.com",
        "ops+alerts@mail.example.org",
    )
    assert valid_recipients([]) == ()
    assert len(valid_recipients([f"a{n}@example.com" for n in range(MAX_RECIPIENTS)])) == MAX_RECIPIENTS


@pytest.mark.parametrize(
    "address",
    [
        "",
        "  ",
        "plain",
        "@example.com",
        "ops@",
        "ops@example",
        "ops@@example.com",
        "ops example@example.com",
        "ops\x00@example.com",
        "ops@example.com\x00",
        "ops@example.com\r\nBcc: thief@example.net",
        "ops@exam\tple.com",
        "\u202eops@example.com",
        "ops\u2028@example.com",
        "jürgen@exämple.de",
        "a" * 65 + "@example.com",  # a local part of 65 characters
        "a@" + "b" * 250 + ".com",  # 256 characters
        "a" * 10_000,
        None,
        42,
    ],
)
def test_implausible_or_hostile_addresses_are_refused_with_a_short_message(address: object) -> None:
    error = refusal(valid_recipient, address)

    assert error.field == "recipients"
    assert len(error.message) <= 140
    assert "\x00" not in error.message
    assert "\n" not in error.message


def test_a_duplicate_whatever_its_case_or_spacing_is_refused() -> None:
    error = refusal(valid_recipients, ["ops@example.com", " OPS@Example.com"])

    assert "listed twice" in error.message
    assert error.field == "recipients"


def test_more_than_the_maximum_is_refused_before_any_address_is_looked_at() -> None:
    error = refusal(valid_recipients, ["\x00"] * (MAX_RECIPIENTS + 1))

    assert f"At most {MAX_RECIPIENTS}" in error.message


# --- may_cross against the crossings it stands for -----------------------------------------------


def pairs() -> list[tuple[int, int]]:
    small = [
        (used, limit)
        for limit in (0, 1, 2, 3, 7, 99, 100, 101, 333, 1000)
        for used in range(1, 3 * limit + 5)
    ]
    rng = random.Random(15)
    large = [
        (rng.randint(1, 2 * limit), limit) for limit in (159_600, 199_500, 10**9 + 7) for _ in range(3000)
    ]
    edges = [
        (limit * t // 100 + d, limit) for limit in (159_600, 7_777) for t in range(1, 101) for d in (-1, 0, 1)
    ]
    return small + large + [(used, limit) for used, limit in edges if used >= 1]


def test_may_cross_is_true_exactly_when_some_whole_percentage_is_crossed() -> None:
    for used, limit in pairs():
        top = 100 * used // limit + 2 if limit > 0 else 101
        crossed = alerts.counter_crossings(used, limit, range(1, top))
        assert may_cross(used, limit) == bool(crossed), (used, limit, crossed)


def test_when_may_cross_is_false_no_setting_of_thresholds_is_crossed() -> None:
    every_setting_value = range(1, 101)
    for used, limit in pairs():
        if not may_cross(used, limit):
            assert alerts.counter_crossings(used, limit, every_setting_value) == [], (used, limit)
