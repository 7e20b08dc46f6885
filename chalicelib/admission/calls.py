"""Consent applied to a call: its window moved into calling hours before its key is held, then,
once held, its number checked against the do-not-call list and counted against its cap, in one
DynamoDB transaction (store/numbers.py). A call refused or certainly never queued gives its
count back.

Numbers are kept under a keyed hash (HMAC-SHA256 under the id secret, which is never rotated),
so the table holds no phone number and the same number is the same entry for every integration:
a person who opted out of one CRM's calls is not called by another's.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import replace

from chalicelib.config.parameters import Parameters
from chalicelib.config.settings import Settings
from chalicelib.consent.calling import Allowance, allowance, window_for
from chalicelib.consent.schedule import Window
from chalicelib.errors import (
    CallLimitReached,
    FieldError,
    PhoneSuppressed,
    StoreUnavailable,
)
from chalicelib.fuse.callback_urls import opt_out_url
from chalicelib.logs import logger
from chalicelib.store.calls import CallStore
from chalicelib.store.numbers import OverCap, Suppressed
from chalicelib.timestamps import iso
from chalicelib.validation.call_request import CallRequest
from chalicelib.validation.call_settings import CallSettings


def number_key(secret: str, phone: str) -> str:
    """The name a number is kept under: the same for every integration, never the number."""
    return hmac.new(secret.encode(), f"number:{phone}".encode(), hashlib.sha256).hexdigest()[:40]


def opt_out_link(base_url: str, call_id: str, phone: str, parameters: Parameters) -> str:
    """Where a call's Fuse application posts the callee's opt-out: the call and its number's
    key (never the number), signed; every way a call goes to Fuse gives it this one."""
    number = number_key(parameters.id_secret, phone)
    return opt_out_url(base_url, call_id, number, parameters.callback_secret)


def allowance_of(
    phone: str, campaign: str, parameters: Parameters, settings: Settings
) -> Allowance:
    parameters.require("calling_rules")
    return allowance(
        phone,
        parameters.campaigns[campaign],
        settings.calling_hours,
        settings.max_calls_per_number,
        parameters.calling_rules,
    )


def window_of(
    phone: str,
    timezone: str | None,
    shared: CallSettings,
    *,
    parameters: Parameters,
    settings: Settings,
    now: float,
    kind: str | None = None,
) -> Window:
    """The window within calling hours of one number, from a call's (or list's) settings;
    `kind`, the number's type as validation found it."""
    return window_for(
        phone,
        timezone,
        parameters.campaigns[shared.campaign],
        allowance_of(phone, shared.campaign, parameters, settings),
        start_at=shared.start_at,
        end_at=shared.end_at,
        now=math.floor(now),
        kind=kind,
    )


def schedule_call(
    request: CallRequest, parameters: Parameters, settings: Settings, now: float
) -> CallRequest:
    """The request with its window inside calling hours; OutsideCallingHours if it has none."""
    shared = request.settings
    window = window_of(
        request.phone,
        request.timezone,
        shared,
        parameters=parameters,
        settings=settings,
        now=now,
        kind=request.kind,
    )
    moved = replace(shared, start_at=window.start_at, end_at=window.end_at)
    return request if moved == shared else replace(request, settings=moved)


def admit(
    call_id: str,
    phone: str,
    settings_of_call: CallSettings,
    *,
    parameters: Parameters,
    settings: Settings,
    store: CallStore,
    now: float,
    checked: bool = False,
) -> None:
    """Counts the call against its number, once per attempt, at the moment it may first ring
    (its window's start), or refuses it: PhoneSuppressed, CallLimitReached. `checked`: the
    do-not-call list was read already (a list's contacts, in batches)."""
    cap = allowance_of(phone, settings_of_call.campaign, parameters, settings).max_calls
    attempts = settings_of_call.attempts
    if 0 < cap < attempts:
        raise CallLimitReached(
            f"this call asks {attempts} attempts; its number may ring at most {cap} times "
            "in 24 hours",
            [FieldError("attempts", f"is more than this number's {cap} calls in 24 hours")],
        )
    key = number_key(parameters.id_secret, phone)
    ring_at = max(now, settings_of_call.start_at or now)
    try:
        store.numbers.take(
            key, call_id, now=now, ring_at=ring_at, weight=attempts, cap=cap, checked=checked
        )
    except Suppressed:
        raise suppressed() from None
    except OverCap as over:
        frees = iso(over.frees_at)
        raise CallLimitReached(
            f"this number has its {cap} calls in the 24 hours around this one's; "
            f"the next may be placed to ring from {frees}",
            [FieldError("phone", f"has reached its {cap} calls in 24 hours (frees at {frees})")],
        ) from None


def suppressed() -> PhoneSuppressed:
    return PhoneSuppressed(
        "this number is on the do-not-call list: it is not called",
        [FieldError("phone", "is on the do-not-call list (PUT /suppressions/{phone})")],
    )


def give_back(call_id: str, phone: str | None, parameters: Parameters, store: CallStore) -> None:
    """Uncounts a call refused or certainly never queued. A failure is logged, not raised: the
    count then lapses 24 hours after its moment, a cautious error (a call fewer, never one more)."""
    if not phone:
        return
    try:
        store.numbers.give_back(number_key(parameters.id_secret, phone), call_id)
    except StoreUnavailable:
        logger.exception("could not give back a call's count", extra={"call_id": call_id})
