"""The alert rules on their own: reaching a threshold, firing once, re-arming, counter crossings."""

from __future__ import annotations

from app.models.metering import AlertKind, AlertState
from app.services.alerts import (
    Measure,
    counter_crossings,
    normalized_thresholds,
    reached,
    transitions,
)

T = (80, 90, 100)


def states(measure: Measure, triggered: set[int]) -> list[tuple[int, str]]:
    return [(change.threshold, change.state.value) for change in transitions(measure, T, triggered)]


def test_a_threshold_is_reached_at_exactly_its_percentage() -> None:
    assert reached(3200, 4000, 80)  # 80.0%
    assert not reached(3199, 4000, 80)
    assert reached(4000, 4000, 100)
    assert not reached(3999, 4000, 100)
    # No float rounding: 2 of 3 is 66.67%.
    assert reached(2, 3, 66)
    assert not reached(2, 3, 67)


def test_a_zero_limit_is_reached_by_any_use() -> None:
    assert reached(1, 0, 100)
    assert not reached(0, 0, 80)


def test_crossing_up_fires_each_unfired_threshold_in_ascending_order() -> None:
    assert states(Measure(AlertKind.CREDITS, 3700, 4000), set()) == [(80, "TRIGGERED"), (90, "TRIGGERED")]


def test_an_already_fired_threshold_does_not_fire_again() -> None:
    assert states(Measure(AlertKind.CREDITS, 3700, 4000), {80, 90}) == []
    assert states(Measure(AlertKind.CREDITS, 4000, 4000), {80, 90}) == [(100, "TRIGGERED")]


def test_falling_below_re_arms_in_descending_order() -> None:
    assert states(Measure(AlertKind.STORAGE, 10, 100), {80, 90, 100}) == [
        (100, "RESOLVED"), (90, "RESOLVED"), (80, "RESOLVED"),
    ]  # fmt: skip
    assert states(Measure(AlertKind.STORAGE, 85, 100), {80, 90}) == [(90, "RESOLVED")]


def test_a_limit_raised_under_a_fired_alert_resolves_it() -> None:
    # 3,700 of 4,000 fired 80 and 90; after a 1,000 credit pack it is 74%.
    assert states(Measure(AlertKind.CREDITS, 3700, 5000), {80, 90}) == [(90, "RESOLVED"), (80, "RESOLVED")]


def test_transitions_carry_the_figures() -> None:
    (change,) = transitions(Measure(AlertKind.USERS, 5, 5), (100,), set())

    assert (change.kind, change.state, change.used, change.limit) == (
        AlertKind.USERS,
        AlertState.TRIGGERED,
        5,
        5,
    )


def test_a_counter_crosses_each_threshold_on_exactly_one_value() -> None:
    # Allowance 1,000: 80% at 800, 90% at 900, 100% at 1,000.
    crossings = {used: counter_crossings(used, 1000, T) for used in range(1, 1101)}

    assert {used: found for used, found in crossings.items() if found} == {800: [80], 900: [90], 1000: [100]}


def test_a_counter_crossing_rounds_the_threshold_value_up() -> None:
    # 80% of 159,600 is 127,680 exactly; 90% of 7 is 6.3 -> reached at 7.
    assert counter_crossings(127_680, 159_600, T) == [80]
    assert counter_crossings(127_679, 159_600, T) == []
    assert counter_crossings(7, 7, T) == [90, 100]


def test_thresholds_setting_is_normalised() -> None:
    assert normalized_thresholds([100, 80, 80, 90]) == (80, 90, 100)
    assert normalized_thresholds([0, -5, "90", 50, True]) == (50,)
    assert normalized_thresholds([]) == (80, 90, 100)
    assert normalized_thresholds(None) == (80, 90, 100)
