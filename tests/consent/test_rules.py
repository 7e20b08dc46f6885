"""Calling rules by prefix: what the operator's value may say, how a bad one is refused (naming
the prefix and the field), which rules a number falls under, and that rules only narrow."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.consent.hours import ALL_DAYS, CallingHours, parse_calling_hours
from chalicelib.consent.rules import (
    CallingRule,
    InvalidCallingRules,
    apply_rules,
    parse_calling_rules,
    rules_for,
)

FLORIDA = {"hours": "08:00-20:00", "days": "Mon-Sat", "max_calls": 3, "note": "Florida 501.616"}


def rules(value: Any) -> tuple[CallingRule, ...]:
    return parse_calling_rules(json.dumps(value))


def test_a_rule_with_every_field() -> None:
    (rule,) = rules({"+1305": FLORIDA})
    assert rule == CallingRule(
        prefix="+1305",
        hours=CallingHours(480, 1200, frozenset(range(6))),
        max_calls=3,
        note="Florida 501.616",
    )


def test_each_field_alone() -> None:
    found = rules(
        {"+44": {"max_calls": 2}, "+1": {"days": "Mon-Fri"}, "+61": {"hours": "09:00-17:00"}}
    )
    assert found == (
        CallingRule("+1", CallingHours(0, 1440, frozenset(range(5))), None),
        CallingRule("+44", None, 2),
        CallingRule("+61", CallingHours(540, 1020, ALL_DAYS), None),
    )


@pytest.mark.parametrize("text", [None, "", "  \n", "{}"])
def test_no_rules(text: str | None) -> None:
    assert parse_calling_rules(text) == ()


@given(prefix=st.text(max_size=20).filter(lambda p: not re.fullmatch(r"\+[0-9]{1,15}", p)))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_a_key_that_is_not_a_prefix_is_refused_by_name(prefix: str) -> None:
    with pytest.raises(InvalidCallingRules, match="is not a prefix") as raised:
        rules({"+1": {"max_calls": 1}, prefix: {"max_calls": 1}})
    assert repr(prefix[:20]) in str(raised.value)


BAD_VALUES = [
    ("hours", "8-20"),
    ("hours", "20:00-08:00"),
    ("hours", None),
    ("hours", 800),
    ("days", "Mon-Fry"),
    ("days", ""),
    ("days", None),
    ("days", ["Mon"]),
    ("max_calls", 0),
    ("max_calls", 101),
    ("max_calls", -1),
    ("max_calls", 2.5),
    ("max_calls", "3"),
    ("max_calls", True),
    ("max_calls", None),
    ("note", 5),
    ("note", "x" * 201),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_a_bad_value_is_refused_naming_prefix_and_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidCallingRules) as raised:
        rules({"+1": {"max_calls": 1}, "+1305": {**FLORIDA, field: value}})
    assert str(raised.value).startswith(f"calling rule '+1305' field '{field}' must ")


field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-5, 120),  # around the cap's range, so caps are taken, not only refused
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["08:00-20:00", "09:30-17:00", "mon-fri", "Sat,Sun", "24:00-08:00", "mon-"]),
    st.lists(st.integers()),
)


@given(field=st.sampled_from(["hours", "days", "max_calls", "note"]), value=field_values)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_any_value_is_taken_or_refused_by_name(field: str, value: Any) -> None:
    try:
        (rule,) = rules({"+1305": {**FLORIDA, field: value}})
    except InvalidCallingRules as err:
        refusal = str(err)
    else:
        refusal = f"calling rule '+1305' field '{field}' "
        assert rule.max_calls is None or 1 <= rule.max_calls <= 100
        if field == "max_calls":
            assert rule.max_calls == value  # taken as given, never adjusted
    assert refusal.startswith(f"calling rule '+1305' field '{field}' ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"+1": {"max_calls": 1, "max_call": 2}}', "unknown field 'max_call'"),
        ('{"+1": {}}', "needs at least one of hours, days and max_calls"),
        ('{"+1": {"note": "only a note"}}', "needs at least one"),
        ('{"+1": 3}', "must be an object"),
        ('{"+1": {"max_calls": 1}, "+1": {"max_calls": 2}}', r"names '\+1' twice"),
        ('[{"+1": {"max_calls": 1}}]', "must be a JSON object"),
        ('{"+1": {"max_calls": 1}', "not valid JSON"),
        ("[" * 60000, "nested too deeply|not valid JSON"),
        ("{" + " " * 65536 + "}", "longer than 65536"),
        ('{"+1234567890123456": {"max_calls": 1}}', "is not a prefix"),
    ],
)
def test_a_bad_value_is_refused_whole(text: str, message: str) -> None:
    with pytest.raises(InvalidCallingRules, match=message):
        parse_calling_rules(text)


def test_at_most_2000_rules() -> None:
    many = {f"+1{n:04d}": {"max_calls": 1} for n in range(2000)}
    assert len(rules(many)) == 2000
    with pytest.raises(InvalidCallingRules, match="more than 2000"):
        rules({**many, "+2": {"max_calls": 1}})


def test_every_rule_whose_prefix_a_number_starts_with_applies() -> None:
    found = rules(
        {
            "+1": {"days": "Mon-Sat"},
            "+1305": FLORIDA,
            "+13055": {"max_calls": 1},
            "+130": {"max_calls": 5},
            "+44": {"max_calls": 2},
        }
    )
    assert [r.prefix for r in rules_for(found, "+13055551234")] == ["+1", "+130", "+1305", "+13055"]
    assert [r.prefix for r in rules_for(found, "+13065551234")] == ["+1", "+130"]
    assert [r.prefix for r in rules_for(found, "+442079460000")] == ["+44"]
    assert rules_for(found, "+61212345678") == ()


def test_rules_narrow_hours_and_lower_the_cap() -> None:
    base = parse_calling_hours("08:00-21:00")
    found = rules({"+1": {"days": "Mon-Sat", "max_calls": 5}, "+1305": FLORIDA})
    assert apply_rules(base, 10, found) == (CallingHours(480, 1200, frozenset(range(6))), 3)
    assert apply_rules(base, 2, found) == (CallingHours(480, 1200, frozenset(range(6))), 2)
    assert apply_rules(base, 10, ()) == (base, 10)
    night = rules({"+1": {"hours": "21:00-23:00"}})
    assert apply_rules(base, 10, night) == (None, 10)  # no time left: no call at all


@st.composite
def some_hours(draw: st.DrawFn) -> CallingHours:
    opens = draw(st.integers(0, 1439))
    closes = draw(st.integers(opens + 1, 1440))
    return CallingHours(opens, closes, draw(st.frozensets(st.integers(0, 6), min_size=1)))


some_rules = st.lists(
    st.builds(
        CallingRule,
        prefix=st.just("+1"),
        hours=st.none() | some_hours(),
        max_calls=st.none() | st.integers(1, 100),
    ),
    max_size=5,
).map(tuple)


@given(
    base=some_hours(),
    cap=st.integers(0, 100),  # 0: the deployment sets no cap
    found=some_rules,
    probes=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1439)), min_size=10, max_size=10),
)
@settings(max_examples=200, deadline=None, derandomize=True)
def test_applied_rules_allow_exactly_what_all_allow(
    base: CallingHours,
    cap: int,
    found: tuple[CallingRule, ...],
    probes: list[tuple[int, int]],
) -> None:
    hours, lowest = apply_rules(base, cap, found)
    caps = [c for c in [cap, *(r.max_calls for r in found if r.max_calls is not None)] if c > 0]
    assert lowest == (min(caps) if caps else 0)

    def allows(h: CallingHours | None, day: int, minute: int) -> bool:
        return h is not None and day in h.days and h.opens <= minute < h.closes

    every = [base, *(r.hours for r in found if r.hours is not None)]
    edges = [(d, m) for d in range(7) for h in every for m in (h.opens, h.closes - 1)]
    for day, minute in [*probes, *edges]:
        assert allows(hours, day, minute) == all(allows(h, day, minute) for h in every)
