"""Checks of one field each, shared by calls, lists and their contacts.

Each appends a FieldError naming its field and returns the value it could read (or None), so a
request's every bad field is reported at once: a CRM engineer fixes them in one go.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from chalicelib.errors import FieldError, ValidationFailed
from chalicelib.validation.phones import DialPolicy, InvalidPhone, Phone, parse_phone, read_phone

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DESTINATION = "destination"  # Fuse's CSV name for the number; no variable may take it
OPT_OUT_URL = "opt_out_url"  # the bridge's own variable: where the callee's opt-out is posted
# An IANA name (America/New_York, Etc/GMT+5): its shape here; whether it is known, in consent/.
TIME_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z0-9_+-]{1,30}){0,2}")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only: "²".isdigit() is True
# A Salesforce id (an org's, a notification's): 15 case-sensitive letters and digits, or 18
# with the case-safe suffix.
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
MAX_VARIABLES_BYTES = 4096
MAX_REFERENCE_LENGTH = 128
# What a call and a list both take: how and when Fuse dials, and the request's own key.
SETTINGS_FIELDS = (
    "caller_id",
    "dtmf",
    "start_at",
    "end_at",
    "attempts",
    "retry_delay",
    "pci",
    "campaign",
    "idempotency_key",
)
# The fields of POST /calls (and what an integration's mapping may produce).
CALL_FIELDS = ("phone", "variables", "reference", "timezone", *SETTINGS_FIELDS)

Scalar = str | int | float | bool | None
Errors = list[FieldError]


def is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_timestamp(value: object) -> int:
    """Unix seconds (a JSON integer or a string of digits) or ISO-8601 with a zone."""
    if is_integer(value):
        return int(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        text = value.strip()
        if UNIX_SECONDS.fullmatch(text):
            return int(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                "must be ISO-8601 with a zone (2026-11-23T10:00:00-05:00) or Unix seconds"
            ) from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("must name its time zone (add Z or an offset such as -05:00)")
        return math.floor(moment.timestamp())
    raise ValueError("must be an ISO-8601 string with a zone or an integer of Unix seconds")


def require_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed(
            "the request body must be a JSON object",
            [FieldError("(body)", "must be a JSON object")],
        )
    return body


def unknown_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> Errors:
    """Any field not in `allowed`, named, so that a typo is caught rather than ignored."""
    message = f"unknown field; allowed fields are: {', '.join(allowed)}"
    return [FieldError(name, message) for name in body if name not in allowed]


def raise_if_invalid(errors: Errors, shown_at_most: int = 10) -> None:
    """One ValidationFailed with every bad field in its details; its message names the first
    `shown_at_most` (a body of 10,000 unknown keys must not make a message of megabytes)."""
    if not errors:
        return
    names = list(dict.fromkeys(e.field[:64] for e in errors))
    shown = ", ".join(names[:shown_at_most])
    if len(names) > shown_at_most:
        shown += f" and {len(names) - shown_at_most} more"
    raise ValidationFailed(f"the request has invalid fields: {shown}", errors)


def check_phone(body: dict, name: str, region: str, errors: Errors) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be a string"))
        return None
    try:
        return parse_phone(value, region)
    except InvalidPhone as err:
        errors.append(FieldError(name, str(err)))
        return None


def check_destination(body: dict, region: str, policy: DialPolicy, errors: Errors) -> Phone | None:
    """The number to ring: required, valid, and one this bridge may call (toll-fraud rules);
    with its type, which calling hours need again (worked out once)."""
    value = body.get("phone")
    if value is None:
        errors.append(FieldError("phone", "is required"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError("phone", "must be a string"))
        return None
    try:
        phone = read_phone(value, region)
    except InvalidPhone as err:
        errors.append(FieldError("phone", str(err)))
        return None
    if refusal := policy.refusal(phone):
        errors.append(FieldError("phone", refusal))
        return None
    return phone


def check_variables(body: dict, errors: Errors) -> dict[str, Scalar]:
    variables = body.get("variables")
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        message = "must be an object of names to strings, numbers, booleans or null"
        errors.append(FieldError("variables", message))
        return {}
    for key, value in variables.items():
        if not VARIABLE_NAME.fullmatch(key):
            message = "names must be letters, digits and _, not starting with a digit"
            errors.append(FieldError(f"variables.{key}", message))
        elif value is not None and not isinstance(value, str | int | float | bool):
            message = "must be a string, number, boolean or null"
            errors.append(FieldError(f"variables.{key}", message))
        elif isinstance(value, float) and not math.isfinite(value):  # 1e400 parses as infinity
            errors.append(FieldError(f"variables.{key}", "must be a finite number"))
        elif key.lower() == DESTINATION:  # a call that waits goes in a bulk's CSV
            errors.append(FieldError(f"variables.{key}", "is Fuse's name for the phone column"))
        elif key.lower() == OPT_OUT_URL:
            errors.append(FieldError(f"variables.{key}", "is the bridge's own, set on every call"))
    size = len(json.dumps(variables, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_VARIABLES_BYTES:
        message = f"is {size} bytes as JSON; at most {MAX_VARIABLES_BYTES} are allowed"
        errors.append(FieldError("variables", message))
    return variables


def check_reference(body: dict, errors: Errors) -> str | None:
    reference = body.get("reference")
    if reference is None:
        return None
    if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_REFERENCE_LENGTH:
        message = f"must be a string of 1 to {MAX_REFERENCE_LENGTH} characters"
        errors.append(FieldError("reference", message))
        return None
    return reference


def check_timezone(body: dict, errors: Errors) -> str | None:
    """The callee's own zone, when the CRM knows it better than the number's prefix does."""
    zone = body.get("timezone")
    if zone is None:
        return None
    if not isinstance(zone, str) or not TIME_ZONE.fullmatch(zone):
        errors.append(
            FieldError("timezone", "must be an IANA time zone name, e.g. America/Chicago")
        )
        return None
    return zone


def check_idempotency_key(body: dict, errors: Errors) -> None:
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key)):
        message = "must be 1 to 255 printable ASCII characters without spaces"
        errors.append(FieldError("idempotency_key", message))
