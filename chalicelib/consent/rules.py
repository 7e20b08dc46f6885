"""Calling rules by number prefix: the operator's narrower hours, days and caps for the places
whose law asks for them (Florida's 501.616: 08:00-20:00, three calls a day).

One configuration value, a JSON object the operator stores in SSM as `calling_rules`:

    {"+1305": {"hours": "08:00-20:00", "days": "Mon-Sat", "max_calls": 3,
               "note": "Florida 501.616"}}

Every rule whose prefix a number starts with applies, together with the bridge's own hours and
cap: rules only ever narrow, so a broad rule ("+1") and a narrow one ("+1305") cannot undo each
other. A bad value is refused whole, naming the prefix and field, so a typo cannot quietly
leave a state unprotected. Pure: the text is passed in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chalicelib.consent.hours import (
    ANY_HOUR,
    CallingHours,
    parse_calling_days,
    parse_calling_hours,
)

RULE_PREFIX = re.compile(r"\+[0-9]{1,15}")  # E.164: a plus and up to 15 digits
RULE_FIELDS = frozenset({"hours", "days", "max_calls", "note"})
MAX_RULES = 2000
MAX_RULES_TEXT = 64 * 1024
MAX_NOTE = 200
MIN_CALLS_CAP, MAX_CALLS_CAP = 1, 100
ANY_DAY = "Mon-Sun"  # and a rule of hours alone applies every day


class InvalidCallingRules(ValueError):
    """The operator's calling_rules are refused whole; the message names the prefix and field."""


@dataclass(frozen=True)
class CallingRule:
    """A prefix's narrowing: hours (with their days) and a cap on calls, each None when the rule
    leaves it alone. The note says why the rule exists (the law it follows)."""

    prefix: str
    hours: CallingHours | None
    max_calls: int | None
    note: str = ""


def parse_calling_rules(text: str | None) -> tuple[CallingRule, ...]:
    """The rules of the configuration value, by prefix; () when it is absent or blank."""
    if text is None or not text.strip():
        return ()
    if len(text) > MAX_RULES_TEXT:
        raise InvalidCallingRules(f"calling_rules is longer than {MAX_RULES_TEXT} characters")
    try:
        data = json.loads(text, object_pairs_hook=_refuse_repeats)
    except json.JSONDecodeError as err:
        raise InvalidCallingRules(f"calling_rules is not valid JSON: {err}") from None
    except RecursionError:
        raise InvalidCallingRules("calling_rules is nested too deeply to be rules") from None
    if not isinstance(data, dict):
        raise InvalidCallingRules('calling_rules must be a JSON object like {"+1305": {...}}')
    if len(data) > MAX_RULES:
        raise InvalidCallingRules(f"calling_rules has more than {MAX_RULES} rules")
    return tuple(parse_rule(prefix, data[prefix]) for prefix in sorted(data))


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects keep the last of repeated keys: a repeated prefix is refused instead, so
    neither of two rules for one prefix is silently dropped."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise InvalidCallingRules(f"calling_rules names {key[:20]!r} twice")
        found[key] = value
    return found


def parse_rule(prefix: str, rule: Any) -> CallingRule:
    if not RULE_PREFIX.fullmatch(prefix):
        message = "is not a prefix: '+' and 1 to 15 digits, e.g. +1305"
        raise InvalidCallingRules(f"calling rule {prefix[:20]!r} {message}")
    where = f"calling rule {prefix!r}"
    if not isinstance(rule, dict):
        raise InvalidCallingRules(f'{where} must be an object like {{"hours": "08:00-20:00"}}')
    if unknown := sorted(set(rule) - RULE_FIELDS):
        known = ", ".join(sorted(RULE_FIELDS))
        message = f"has unknown field {unknown[0][:20]!r} (fields: {known})"
        raise InvalidCallingRules(f"{where} {message}")
    if not {"hours", "days", "max_calls"} & set(rule):
        raise InvalidCallingRules(f"{where} needs at least one of hours, days and max_calls")
    hours = None
    if "hours" in rule or "days" in rule:
        hours = _rule_hours(where, rule.get("hours", ANY_HOUR), rule.get("days", ANY_DAY))
    return CallingRule(
        prefix=prefix,
        hours=hours,
        max_calls=_rule_cap(where, rule["max_calls"]) if "max_calls" in rule else None,
        note=_rule_note(where, rule.get("note", "")),
    )


def _rule_hours(where: str, hours: Any, days: Any) -> CallingHours:
    """A field given as null is refused, not taken as absent: null is too easily a mistake."""
    if not isinstance(hours, str):
        raise InvalidCallingRules(f"{where} field 'hours' must be a string like \"08:00-20:00\"")
    if not isinstance(days, str):
        raise InvalidCallingRules(f"{where} field 'days' must be a string like \"Mon-Sat\"")
    try:
        parsed = parse_calling_hours(hours)
    except ValueError as err:
        raise InvalidCallingRules(f"{where} field 'hours' {err}") from None
    try:
        return CallingHours(parsed.opens, parsed.closes, parse_calling_days(days))
    except ValueError as err:
        raise InvalidCallingRules(f"{where} field 'days' {err}") from None


def _rule_cap(where: str, cap: Any) -> int:
    whole = isinstance(cap, int) and not isinstance(cap, bool)  # JSON's true is not a count
    if not whole or not MIN_CALLS_CAP <= cap <= MAX_CALLS_CAP:
        span = f"{MIN_CALLS_CAP} to {MAX_CALLS_CAP}"
        raise InvalidCallingRules(f"{where} field 'max_calls' must be an integer from {span}")
    return cap


def _rule_note(where: str, note: Any) -> str:
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        message = f"must be text of at most {MAX_NOTE} characters"
        raise InvalidCallingRules(f"{where} field 'note' {message}")
    return note


def rules_for(rules: tuple[CallingRule, ...], e164: str) -> tuple[CallingRule, ...]:
    """Every rule whose prefix the number starts with: all of them apply."""
    return tuple(rule for rule in rules if e164.startswith(rule.prefix))


def apply_rules(
    base: CallingHours, base_cap: int, rules: tuple[CallingRule, ...]
) -> tuple[CallingHours | None, int]:
    """The bridge's hours narrowed by every rule (None: no time is left at all) and the lowest
    of the caps (a base cap of 0 is none: a rule's own then holds)."""
    hours: CallingHours | None = base
    cap = base_cap  # 0: no cap, which a rule's cap lowers like any other
    for rule in rules:
        if rule.hours is not None and hours is not None:
            hours = hours.narrowed(rule.hours)
        if rule.max_calls is not None:
            cap = rule.max_calls if cap <= 0 else min(cap, rule.max_calls)
    return hours, cap
