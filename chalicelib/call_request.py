"""The friendly JSON a caller sends, checked field by field into a CallRequest.

Every bad field is reported at once (a CRM engineer fixes them in one go), and nothing here does
I/O: the clock and the configured campaigns are passed in, so the rules are tested exhaustively.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from chalicelib.errors import FieldError, ValidationFailed
from chalicelib.phones import InvalidPhone, parse_phone
from chalicelib.secrets import Campaign

FIELDS = (
    "phone",
    "caller_id",
    "dtmf",
    "variables",
    "start_at",
    "end_at",
    "attempts",
    "retry_delay",
    "pci",
    "campaign",
    "reference",
    "idempotency_key",
)
DTMF = re.compile(r"^[0-9*#,w]{1,32}$")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CAMPAIGN_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
MAX_VARIABLES_BYTES = 4096
MAX_REFERENCE_LENGTH = 128
START_GRACE_SECONDS = 300  # clocks differ; a start a little in the past means "now"
MAX_SCHEDULE_AHEAD_SECONDS = 366 * 86400  # further out is almost always milliseconds by mistake
MIN_RETRY_DELAY, MAX_RETRY_DELAY = 60, 86400
MIN_ATTEMPTS, MAX_ATTEMPTS = 1, 10
DEFAULT_CAMPAIGN = "default"

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class CallRequest:
    """A validated request. `caller_id` is the effective one: given, or the campaign's."""

    phone: str
    caller_id: str
    campaign: str
    attempts: int = 1
    retry_delay: int | None = None
    dtmf: str | None = None
    variables: Mapping[str, Scalar] = field(default_factory=dict)
    start_at: int | None = None
    end_at: int | None = None
    pci: bool | None = None
    reference: str | None = None

    def accepted(self) -> dict[str, Any]:
        """The request as accepted, for storage and for showing back to its caller."""
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "variables": dict(self.variables),
        }


def is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_timestamp(value: object) -> int:
    """Unix seconds (a JSON integer or a string of digits) or ISO-8601 with a zone."""
    if is_integer(value):
        return int(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
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


Errors = list[FieldError]


def parse_call_request(
    body: object,
    *,
    default_region: str,
    now: float,
    campaigns: Mapping[str, Campaign],
) -> CallRequest:
    """Checks every field of a POST /calls body; raises ValidationFailed listing each bad one."""
    body = require_object(body)
    errors: Errors = unknown_fields(body, FIELDS)
    phone = check_phone(body, "phone", default_region, errors)
    if body.get("phone") is None:
        errors.append(FieldError("phone", "is required"))
    campaign = check_campaign(body, campaigns, errors)
    caller_id = check_caller_id(body, campaign, default_region, errors)
    start_at, end_at = check_schedule(body, now, errors)
    attempts, retry_delay = check_attempts(body, errors)
    request = CallRequest(
        phone=phone or "",
        caller_id=caller_id or "",
        campaign=campaign.name if campaign else "",
        attempts=attempts,
        retry_delay=retry_delay,
        dtmf=check_dtmf(body, errors),
        variables=check_variables(body, errors),
        start_at=start_at,
        end_at=end_at,
        pci=check_pci(body, errors),
        reference=check_reference(body, errors),
    )
    check_idempotency_key(body, errors)
    if errors:
        fields = ", ".join(dict.fromkeys(e.field for e in errors))
        raise ValidationFailed(f"the request has invalid fields: {fields}", errors)
    return request


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


def check_campaign(
    body: dict, campaigns: Mapping[str, Campaign], errors: Errors
) -> Campaign | None:
    name = body.get("campaign", DEFAULT_CAMPAIGN)
    if not isinstance(name, str) or not CAMPAIGN_NAME.match(name):
        errors.append(FieldError("campaign", "must be 1 to 64 letters, digits, '-' or '_'"))
        return None
    if name not in campaigns:
        known = ", ".join(sorted(campaigns)) or "none"
        errors.append(
            FieldError("campaign", f"unknown campaign {name!r}; configured campaigns: {known}")
        )
        return None
    return campaigns[name]


def check_caller_id(
    body: dict, campaign: Campaign | None, region: str, errors: Errors
) -> str | None:
    """The given caller id, else the campaign's: Fuse has none of its own to fall back on."""
    if body.get("caller_id") is not None:
        return check_phone(body, "caller_id", region, errors)
    if campaign is None:
        return None
    if campaign.caller_id is None:
        errors.append(
            FieldError(
                "caller_id",
                "is required: Fuse has no default caller id, and campaign "
                f"{campaign.name!r} has none configured (pass caller_id, or set the SSM "
                f"parameter campaigns/{campaign.name}/caller_id under the bridge's prefix)",
            )
        )
        return None
    try:
        return parse_phone(campaign.caller_id, region)
    except InvalidPhone as err:
        message = f"the caller id configured for campaign {campaign.name!r} {err}"
        errors.append(FieldError("caller_id", message))
        return None


def check_dtmf(body: dict, errors: Errors) -> str | None:
    dtmf = body.get("dtmf")
    if dtmf is None:
        return None
    if not isinstance(dtmf, str) or not DTMF.match(dtmf):
        message = "must be 1 to 32 of the characters 0-9 * # and the pauses , and w"
        errors.append(FieldError("dtmf", message))
        return None
    return dtmf


def check_variables(body: dict, errors: Errors) -> dict[str, Scalar]:
    variables = body.get("variables")
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        message = "must be an object of names to strings, numbers, booleans or null"
        errors.append(FieldError("variables", message))
        return {}
    for key, value in variables.items():
        if not VARIABLE_NAME.match(key):
            message = "names must be letters, digits and _, not starting with a digit"
            errors.append(FieldError(f"variables.{key}", message))
        elif value is not None and not isinstance(value, str | int | float | bool):
            message = "must be a string, number, boolean or null"
            errors.append(FieldError(f"variables.{key}", message))
        elif isinstance(value, float) and not math.isfinite(value):  # 1e400 parses as infinity
            errors.append(FieldError(f"variables.{key}", "must be a finite number"))
    size = len(json.dumps(variables, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_VARIABLES_BYTES:
        message = f"is {size} bytes as JSON; at most {MAX_VARIABLES_BYTES} are allowed"
        errors.append(FieldError("variables", message))
    return variables


def check_timestamp(body: dict, name: str, now: float, errors: Errors) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        moment = parse_timestamp(value)
    except ValueError as err:
        errors.append(FieldError(name, str(err)))
        return None
    if moment > now + MAX_SCHEDULE_AHEAD_SECONDS:
        message = "is more than a year ahead (Unix timestamps are in seconds, not milliseconds)"
        errors.append(FieldError(name, message))
        return None
    return moment


def check_schedule(body: dict, now: float, errors: Errors) -> tuple[int | None, int | None]:
    start_at = check_timestamp(body, "start_at", now, errors)
    end_at = check_timestamp(body, "end_at", now, errors)
    if start_at is not None and start_at < now - START_GRACE_SECONDS:
        errors.append(FieldError("start_at", "is more than 5 minutes in the past"))
    if end_at is not None and end_at <= now:
        errors.append(FieldError("end_at", "must be in the future"))
    elif end_at is not None and start_at is not None and end_at <= start_at:
        errors.append(FieldError("end_at", "must be after start_at"))
    return start_at, end_at


def check_attempts(body: dict, errors: Errors) -> tuple[int, int | None]:
    attempts = body.get("attempts", 1)
    if not is_integer(attempts) or not MIN_ATTEMPTS <= attempts <= MAX_ATTEMPTS:
        message = f"must be an integer from {MIN_ATTEMPTS} to {MAX_ATTEMPTS}"
        errors.append(FieldError("attempts", message))
        attempts = 1
    retry_delay = body.get("retry_delay")
    if retry_delay is None:
        if attempts > 1:
            message = "is required when attempts is more than 1 (seconds between attempts)"
            errors.append(FieldError("retry_delay", message))
        return attempts, None
    if not is_integer(retry_delay) or not MIN_RETRY_DELAY <= retry_delay <= MAX_RETRY_DELAY:
        message = f"must be an integer of seconds from {MIN_RETRY_DELAY} to {MAX_RETRY_DELAY}"
        errors.append(FieldError("retry_delay", message))
        return attempts, None
    return attempts, retry_delay


def check_pci(body: dict, errors: Errors) -> bool | None:
    pci = body.get("pci")
    if pci is not None and not isinstance(pci, bool):
        errors.append(FieldError("pci", "must be true or false"))
        return None
    return pci


def check_reference(body: dict, errors: Errors) -> str | None:
    reference = body.get("reference")
    if reference is None:
        return None
    if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_REFERENCE_LENGTH:
        message = f"must be a string of 1 to {MAX_REFERENCE_LENGTH} characters"
        errors.append(FieldError("reference", message))
        return None
    return reference


def check_idempotency_key(body: dict, errors: Errors) -> None:
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not IDEMPOTENCY_KEY.match(key)):
        message = "must be 1 to 255 printable ASCII characters without spaces"
        errors.append(FieldError("idempotency_key", message))
