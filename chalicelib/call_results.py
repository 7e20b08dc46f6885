"""Reading a call's outcome as Fuse sends it: the callback body, or the status API's call_details.

Fuse documents the shape (`call_details`) but not the encoding of its callback, and its own
example types numbers as strings and wraps the phone in quotes (docs/fuse-contract.md).
So every encoding seen in the wild is read (JSON, form-urlencoded with PHP-style nested keys,
multipart), numbers are taken as numbers or digit strings, and nothing unknown is thrown away.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.timestamps import iso

# Words that mean Fuse is still working on the call; any other status word is an outcome.
IN_PROGRESS = frozenset({"queued", "pending", "scheduled", "dialing", "ringing", "connected"})
SPELLINGS = {"cancelled": "canceled", "complete": "completed"}
NUMBERS = ("attempts", "max_attempts", "duration")
KNOWN = frozenset({"status", "events", *NUMBERS})
# Bounds on what is kept from a body as read (the raw body is kept apart): a call's outcome is
# small, and an item of DynamoDB holds 400 KB at most.
MAX_TEXT = 1024
MAX_FIELDS = 64
MAX_EVENTS = 100
PHP_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class UnreadableResult(ValueError):
    """The body could not be read; the message says why (stored beside the raw body)."""


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


def read_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """The fields of a callback body, by its Content-Type (JSON when it names none)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not raw.strip():
        raise UnreadableResult("the body is empty")
    if media_type == "application/x-www-form-urlencoded":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableResult("the form body is not UTF-8") from None
        return nest_php_keys(parse_qsl(text, keep_blank_values=True))
    if media_type == "multipart/form-data":
        return nest_php_keys(multipart_fields(raw, content_type))
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise UnreadableResult(
            f"the body is not valid JSON (Content-Type {media_type or 'none'})"
        ) from None
    if not isinstance(data, dict):
        raise UnreadableResult("the JSON body is not an object")
    return data


def multipart_fields(raw: bytes, content_type: str) -> list[tuple[str, str]]:
    # Imported here: the email package costs ~12 ms of every cold start, and only a multipart
    # callback (not the usual JSON one, nor POST /calls) needs it.
    from email.parser import BytesParser  # noqa: PLC0415
    from email.policy import HTTP  # noqa: PLC0415

    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + raw
    )
    if not message.is_multipart():
        raise UnreadableResult("the multipart body has no parts (is the boundary right?)")
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        fields.append((str(name), payload.decode("utf-8", errors="replace")))
    return fields


def nest_php_keys(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`events[0][event]=dialing` -> {"events": [{"event": "dialing"}]}, as PHP reads forms."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = PHP_KEY.match(key)
        if not match:
            root[key] = value
            continue
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for index, segment in enumerate(path):
            # `a[]=x` appends: the next free number at this level
            name = segment or str(sum(1 for k in node if k.isdigit()))
            if index == len(path) - 1:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    return _lists_from_numbered_dicts(root)


def _lists_from_numbered_dicts(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _lists_from_numbered_dicts(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return value


def to_int(value: Any) -> int | None:
    """1, 1.0, "1", " '1' " -> 1; "", None and anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip().strip("'\"").strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if re.fullmatch(r"-?\d+\.0*", text):
            return int(float(text))
    return None


def to_iso(value: Any) -> str | None:
    """Unix seconds (number or digit string) -> ISO-8601 UTC; empty -> None."""
    return iso(to_int(value))


def clean(value: Any) -> Any:
    """Strips the stray quotes Fuse wraps some strings in (its phone_number: "'6173720293'")."""
    if isinstance(value, str):
        text = value.strip().strip("'").strip()
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
    if isinstance(value, dict):
        return {k: clean(v) for k, v in list(value.items())[:MAX_FIELDS]}
    if isinstance(value, list):
        return [clean(v) for v in value[:MAX_FIELDS]]
    return value


def normalise(fields: Mapping[str, Any]) -> CallResult:
    """call_details (or a body holding it) -> CallResult; unknown fields are kept in `details`."""
    details = fields.get("call_details")
    if isinstance(details, dict):
        fields = {**{k: v for k, v in fields.items() if k != "call_details"}, **details}
    status = fields.get("status")
    status = str(status).strip().strip("'").lower()[:64] if status not in (None, "") else None
    events = []
    raw_events = fields.get("events")
    if isinstance(raw_events, dict):  # a form may give {"0": {...}} when keys are sparse
        raw_events = list(raw_events.values())
    for event in raw_events[:MAX_EVENTS] if isinstance(raw_events, list) else []:
        if isinstance(event, dict):
            events.append(
                {"event": clean(event.get("event")), "at": to_iso(event.get("timestamp"))}
            )
    extra = {}
    for name, value in list(fields.items())[:MAX_FIELDS]:
        if name in KNOWN:
            continue
        extra[name] = to_iso(value) if name.endswith("_timestamp") else clean(value)
    return CallResult(
        status=SPELLINGS.get(status, status) if status else None,
        attempts=to_int(fields.get("attempts")),
        max_attempts=to_int(fields.get("max_attempts")),
        duration=to_int(fields.get("duration")),
        events=tuple(events),
        details=extra,
    )
