"""What a single call and a whole list share: who calls, when, how often, on which campaign.

One frozen value, checked by one function, so POST /calls and POST /calls/bulk cannot drift
apart in what they accept. Pure: the clock and the configured campaigns are passed in.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.campaigns import DEFAULT_CAMPAIGN, Campaign
from chalicelib.errors import ConfigurationIncomplete, FieldError
from chalicelib.validation.fields import Errors, check_phone, is_integer, parse_timestamp
from chalicelib.validation.phones import InvalidPhone, parse_phone, same_numbers

DTMF = re.compile(r"[0-9*#,w]{1,32}")
CAMPAIGN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
START_GRACE_SECONDS = 300  # clocks differ; a start a little in the past means "now"
MAX_SCHEDULE_AHEAD_SECONDS = 366 * 86400  # further out is almost always milliseconds by mistake
MIN_RETRY_DELAY, MAX_RETRY_DELAY = 60, 86400
MIN_ATTEMPTS, MAX_ATTEMPTS = 1, 10
RESULT_GRACE_SECONDS = 300  # a result may come a little after a call's window has closed


@dataclass(frozen=True)
class CallSettings:
    """Checked settings. `caller_id` is the effective one: given, or the campaign's."""

    caller_id: str
    campaign: str
    attempts: int = 1
    retry_delay: int | None = None
    dtmf: str | None = None
    start_at: int | None = None
    end_at: int | None = None
    pci: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def check_after(self, now: int, after_seconds: int) -> int:
        """When the reconciler asks Fuse about a call whose result has not come: just after its
        window (`end_at`), or `after_seconds` after its last attempt could have started."""
        if self.end_at is not None:
            return self.end_at + RESULT_GRACE_SECONDS
        start = max(now, self.start_at or now)
        return start + (self.attempts - 1) * (self.retry_delay or 0) + after_seconds


def check_call_settings(
    body: dict[str, Any],
    *,
    region: str,
    now: float,
    campaigns: Mapping[str, Campaign],
    errors: Errors,
) -> CallSettings:
    """Every shared field of a call or list body; each bad one is added to `errors`."""
    campaign = check_campaign(body, campaigns, errors)
    caller_id = check_caller_id(body, campaign, region, errors)
    start_at, end_at = check_schedule(body, now, errors)
    attempts, retry_delay = check_attempts(body, errors)
    return CallSettings(
        caller_id=caller_id or "",
        campaign=campaign.name if campaign else "",
        attempts=attempts,
        retry_delay=retry_delay,
        dtmf=check_dtmf(body, errors),
        start_at=start_at,
        end_at=end_at,
        pci=check_pci(body, errors),
    )


def check_campaign(
    body: dict, campaigns: Mapping[str, Campaign], errors: Errors
) -> Campaign | None:
    name = body.get("campaign", DEFAULT_CAMPAIGN)
    if not isinstance(name, str) or not CAMPAIGN_NAME.fullmatch(name):
        errors.append(FieldError("campaign", "must be 1 to 64 letters, digits, '-' or '_'"))
        return None
    if name not in campaigns:
        known = ", ".join(sorted(campaigns)) or "none"
        errors.append(
            FieldError("campaign", f"unknown campaign {name!r}; configured campaigns: {known}")
        )
        return None
    if campaigns[name].problem:  # half-written in SSM: an operator must finish it
        raise ConfigurationIncomplete(str(campaigns[name].problem))
    return campaigns[name]


def check_caller_id(
    body: dict, campaign: Campaign | None, region: str, errors: Errors
) -> str | None:
    """The given caller id, else the campaign's: Fuse has none of its own to fall back on."""
    if body.get("caller_id") is not None:
        caller_id = check_phone(body, "caller_id", region, errors)
        allowed = campaign.caller_ids if campaign else ()
        if caller_id and allowed and caller_id not in configured_numbers(allowed, region):
            name = campaign.name if campaign else ""
            message = (
                f"is not one of campaign {name!r}'s caller ids (the SSM parameter "
                f"campaigns/{name}/caller_ids lists them)"
            )
            errors.append(FieldError("caller_id", message))
            return None
        return caller_id
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
        return configured_number(campaign.caller_id, region)
    except InvalidPhone as err:
        message = f"the caller id configured for campaign {campaign.name!r} {err}"
        errors.append(FieldError("caller_id", message))
        return None


# A campaign's caller ids come from SSM and are the same on every call: each is read once per warm
# container and region (libphonenumber takes ~70 us a number, a fiftieth of a warm POST /calls).
# Bounded; a bad one raises each time, as exceptions are not cached.
@functools.lru_cache(maxsize=256)
def configured_number(text: str, region: str) -> str:
    return parse_phone(text, region)


@functools.lru_cache(maxsize=256)
def configured_numbers(texts: tuple[str, ...], region: str) -> frozenset[str]:
    return same_numbers(texts, region)


def check_dtmf(body: dict, errors: Errors) -> str | None:
    dtmf = body.get("dtmf")
    if dtmf is None:
        return None
    if not isinstance(dtmf, str) or not DTMF.fullmatch(dtmf):
        message = "must be 1 to 32 of the characters 0-9 * # and the pauses , and w"
        errors.append(FieldError("dtmf", message))
        return None
    return dtmf


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
