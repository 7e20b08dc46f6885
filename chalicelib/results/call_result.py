"""What a result says: Fuse's `call_details` (from a callback, or the status API) as a CallResult.

Fuse documents the shape but types its own example loosely: numbers as strings, the phone in
quotes (docs/fuse-contract.md). So numbers are read as numbers or digit strings, stray quotes
are stripped, and nothing unknown is thrown away. The view kept is bounded by construction:
MAX_PARSED_BYTES as JSON at the most for `details` (a DynamoDB item holds 400 KB; the raw body,
at most 256 KiB, sits beside it), and the rest small by construction (MAX_EVENTS events, each
name MAX_WORD characters), with no NaN or Infinity anywhere (they are not JSON). Pure.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.results.bodies import UnreadableResult, read_fields
from chalicelib.timestamps import iso
from chalicelib.validation.json_body import has_lone_surrogate

# Words that mean Fuse is still working on the call; any other status word is an outcome.
IN_PROGRESS = frozenset({"queued", "pending", "scheduled", "dialing", "ringing", "connected"})
SPELLINGS = {"cancelled": "canceled", "complete": "completed"}
NUMBERS = ("attempts", "max_attempts", "duration")
KNOWN = frozenset({"status", "events", *NUMBERS})
MAX_TEXT = 1024
MAX_FIELDS = 64
MAX_EVENTS = 100
MAX_WORD = 64  # a status or an event's name: Fuse's are single words
MAX_NESTING = 4  # levels of `details` kept; deeper values are kept as their JSON text, cut
MAX_PARSED_BYTES = 64 * 1024
INTEGER = re.compile(r"-?[0-9]{1,18}")  # at most 18 digits: a 5,000-digit string is no number
WHOLE_FLOAT = re.compile(r"-?[0-9]{1,18}\.0*")

__all__ = ["CallResult", "UnreadableResult", "read_result"]


@dataclass(frozen=True)
class CallResult:
    status: str | None
    attempts: int | None = None
    max_attempts: int | None = None
    duration: int | None = None
    events: tuple[Mapping[str, Any], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_outcome(self) -> bool:
        """A status word that is not "still in progress": the call has ended, one way or another."""
        return bool(self.status) and self.status not in IN_PROGRESS

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "duration": self.duration,
            "events": [dict(e) for e in self.events],
            "details": dict(self.details),
        }


def read_result(raw: bytes, content_type: str) -> CallResult:
    """The result a body reports; UnreadableResult (its message says why) when it has none."""
    result = normalise(read_fields(raw, content_type))
    view = result.to_json()
    if has_lone_surrogate(view):  # a multipart name can bring one in
        raise UnreadableResult("the body holds text that is not Unicode")
    if len(json.dumps(view, allow_nan=False)) > MAX_PARSED_BYTES:
        # Still an outcome if it says one: only the unknown fields are left out.
        result = replace(result, details={"omitted": "details too large to keep"})
    return result


def to_int(value: Any) -> int | None:
    """1, 1.0, "1", " '1' " -> 1; "", None, huge, non-finite and anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 10**18 else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return to_int(int(value))
    if isinstance(value, str):
        text = value.strip().strip("'\"").strip()
        if INTEGER.fullmatch(text):
            return int(text)
        if WHOLE_FLOAT.fullmatch(text):
            return int(text.split(".", 1)[0])
    return None


def to_iso(value: Any) -> str | None:
    """Unix seconds (number or digit string) -> ISO-8601 UTC; empty -> None."""
    return iso(to_int(value))


def clean(value: Any, depth: int = 0) -> Any:
    """A value as kept: strings without Fuse's stray quotes (its phone_number: "'6173720293'")
    and cut to MAX_TEXT; at most MAX_FIELDS items a level and MAX_NESTING levels; no NaN or
    Infinity (kept as their text)."""
    if isinstance(value, str):
        text = value.strip().strip("'").strip()
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict | list) and depth >= MAX_NESTING:
        return clean(json.dumps(value, default=str)[:MAX_TEXT])
    if isinstance(value, dict):
        return {str(k)[:MAX_TEXT]: clean(v, depth + 1) for k, v in list(value.items())[:MAX_FIELDS]}
    if isinstance(value, list):
        return [clean(v, depth + 1) for v in value[:MAX_FIELDS]]
    return value


def normalise(fields: Mapping[str, Any]) -> CallResult:
    """call_details (or a body holding it) -> CallResult; unknown fields are kept in `details`."""
    details = fields.get("call_details")
    if isinstance(details, dict):
        fields = {**{k: v for k, v in fields.items() if k != "call_details"}, **details}
    status = fields.get("status")
    status = clean(str(status)).lower()[:MAX_WORD] if isinstance(status, str | int) else None
    events = []
    raw_events = fields.get("events")
    if isinstance(raw_events, dict):  # a form may give {"0": {...}} when keys are sparse
        raw_events = list(raw_events.values())
    for event in raw_events[:MAX_EVENTS] if isinstance(raw_events, list) else []:
        if isinstance(event, dict):
            name = event.get("event")
            events.append(
                {
                    "event": clean(name)[:MAX_WORD] if isinstance(name, str) else None,
                    "at": to_iso(event.get("timestamp")),
                }
            )
    extra = {}
    for name, value in list(fields.items())[:MAX_FIELDS]:
        if name in KNOWN:
            continue
        key = str(name)[:MAX_TEXT]
        extra[key] = to_iso(value) if key.endswith("_timestamp") else clean(value)
    return CallResult(
        status=SPELLINGS.get(status, status) if status else None,
        attempts=to_int(fields.get("attempts")),
        max_attempts=to_int(fields.get("max_attempts")),
        duration=to_int(fields.get("duration")),
        events=tuple(events),
        details=extra,
    )
