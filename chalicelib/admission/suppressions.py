"""The do-not-call list as a CRM and an operator see it: PUT, GET and DELETE
/suppressions/{phone}, POST /suppressions (a CRM's list sync of up to 10,000 numbers), and the
opt-out a Fuse application posts from a call (POST /fuse/opt-out/{call_id}).

One list for the whole deployment, kept under a keyed hash of each number (admission.py), so a
person who opted out of one CRM's calls is not called by another's. Who put a number on the list
and why is shown only to that integration and to admins: to another CRM, it is on the list,
since a moment, and no more.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any
from urllib.parse import unquote

from chalicelib.admission.calls import number_key
from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import Caller
from chalicelib.config.parameters import Parameters
from chalicelib.errors import MAX_DETAILS, FieldError, InvalidToken, NotFound, ValidationFailed
from chalicelib.fuse.callback_urls import opt_out_subject, require_genuine
from chalicelib.logs import logger, mask_digit_runs
from chalicelib.metrics import count
from chalicelib.store.suppressions import MAX_REASON, Suppression
from chalicelib.timestamps import iso
from chalicelib.validation.fields import require_object, unknown_fields
from chalicelib.validation.json_body import read_json
from chalicelib.validation.phones import InvalidPhone, mask_phone, parse_phone

MAX_SYNC = 10_000
MAX_SYNC_BODY_BYTES = 1024 * 1024  # 10,000 numbers of 20 characters and a reason, with room
OPT_OUT = "opt-out"  # who, for a number its callee suppressed from the call
ADMIN_BY = "admin"
DIGIT = re.compile(r"\d")
MAX_DIGITS_KEPT = 7
NUMBER_KEY = re.compile(r"[0-9a-f]{40}")  # admission/calls.number_key's shape


def read_number(text: str, field: str, deps: Dependencies) -> str:
    """Any valid number, in or outside where calls may go: a person may opt out of anything.
    A path's `%2B` is read as `+` (API Gateway passes a path parameter as it was sent)."""
    try:
        return parse_phone(unquote(text).strip(), deps.settings.default_phone_region)
    except InvalidPhone as err:
        raise ValidationFailed(
            "the phone number is invalid", [FieldError(field, str(err))]
        ) from None


def read_reason(body: Any) -> str | None:
    """An optional reason, bounded, and never a phone number: read as NFKC (so no look-alike
    digit or dash hides one), phone-like runs masked, and every digit masked when seven or
    more are left (however they are separated)."""
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason is None:
        return None
    if not isinstance(reason, str) or not 1 <= len(reason) <= MAX_REASON:
        message = f"must be a string of 1 to {MAX_REASON} characters"
        raise ValidationFailed("the request has an invalid field", [FieldError("reason", message)])
    masked = mask_digit_runs(unicodedata.normalize("NFKC", reason))
    return DIGIT.sub("*", masked) if len(DIGIT.findall(masked)) >= MAX_DIGITS_KEPT else masked


def shown(phone: str, suppression: Suppression, caller: Caller) -> dict[str, Any]:
    view: dict[str, Any] = {
        "phone": phone,
        "suppressed": True,
        "suppressed_at": iso(suppression.at),
    }
    if caller.admin or by_whom(caller) == suppression.by:
        view |= {"by": suppression.by, "reason": suppression.reason}
    return view


def by_whom(caller: Caller) -> str:
    """`admin`, or `integration:{name}`: no integration's name can pass for the bridge's own
    markers (`admin`, `opt-out`)."""
    return ADMIN_BY if caller.admin else f"integration:{caller.integration}"


def suppress_number(
    phone_text: str,
    raw_body: bytes | None,
    caller: Caller,
    parameters: Parameters,
    deps: Dependencies,
) -> dict[str, Any]:
    """PUT /suppressions/{phone}: on the list from now (or since it first was)."""
    body = read_json(raw_body, MAX_SYNC_BODY_BYTES) if raw_body else {}
    body = require_object(body)
    if problems := unknown_fields(body, ("reason",)):
        raise ValidationFailed("the request has an unknown field", problems)
    phone = read_number(phone_text, "phone", deps)
    asked = Suppression(math.floor(deps.clock()), by_whom(caller), read_reason(body))
    kept = deps.store.suppressions.suppress(number_key(parameters.id_secret, phone), asked)
    count("NumbersSuppressed")
    logger.info("number suppressed", extra={"phone": mask_phone(phone), "by": asked.by})
    return shown(phone, kept, caller)


def read_suppression(
    phone_text: str, caller: Caller, parameters: Parameters, deps: Dependencies
) -> dict[str, Any]:
    """GET /suppressions/{phone}: 200 while on the list, else 404."""
    phone = read_number(phone_text, "phone", deps)
    found = deps.store.suppressions.suppression(number_key(parameters.id_secret, phone))
    if found is None:
        raise NotFound("this number is not on the do-not-call list")
    return shown(phone, found, caller)


def unsuppress_number(phone_text: str, parameters: Parameters, deps: Dependencies) -> None:
    """DELETE /suppressions/{phone} (admin): off the list; 404 if it was not on it."""
    phone = read_number(phone_text, "phone", deps)
    if not deps.store.suppressions.unsuppress(number_key(parameters.id_secret, phone)):
        raise NotFound("this number is not on the do-not-call list")
    logger.info("number unsuppressed", extra={"phone": mask_phone(phone)})


def suppress_numbers(
    raw_body: bytes | None, caller: Caller, parameters: Parameters, deps: Dependencies
) -> dict[str, Any]:
    """POST /suppressions: `{"phones": [...], "reason": ...}`, up to 10,000 numbers; the valid
    ones go on the list, each invalid one is named by its index."""
    body = require_object(read_json(raw_body, MAX_SYNC_BODY_BYTES))
    if problems := unknown_fields(body, ("phones", "reason")):
        raise ValidationFailed("the request has an unknown field", problems)
    phones = body.get("phones")
    if not isinstance(phones, list) or not 1 <= len(phones) <= MAX_SYNC:
        message = f"must be a list of 1 to {MAX_SYNC} phone numbers"
        raise ValidationFailed("the request has an invalid field", [FieldError("phones", message)])
    reason = read_reason(body)
    keys: list[str] = []
    invalid: list[dict[str, Any]] = []
    for index, text in enumerate(phones):
        problem = "must be a string"
        if isinstance(text, str):
            try:
                phone = parse_phone(text.strip(), deps.settings.default_phone_region)
            except InvalidPhone as err:
                problem = str(err)
            else:
                keys.append(number_key(parameters.id_secret, phone))
                continue
        if len(invalid) < MAX_DETAILS:
            invalid.append({"index": index, "field": f"phones[{index}]", "message": problem})
    if not keys:
        details = [FieldError(i["field"], i["message"]) for i in invalid]
        raise ValidationFailed("no phone number in the list is valid", details)
    at = math.floor(deps.clock())
    added = deps.store.suppressions.suppress_all(keys, Suppression(at, by_whom(caller), reason))
    count("NumbersSuppressed", added)
    return {
        "suppressed": len(keys),
        "added": added,  # the others were on the list already, since their own moment
        "invalid": len(phones) - len(keys),
        "invalid_details": invalid,
        "suppressed_at": iso(at),
    }


def receive_opt_out(
    call_id: str, number: str | None, token: str | None, parameters: Parameters, deps: Dependencies
) -> dict[str, Any]:
    """POST /fuse/opt-out/{call_id}?n=&token=: the callee asked not to be called again (the Fuse
    application posts the call's `opt_out_url`). The URL carries the number's key (its HMAC,
    never the number) and a token signing the call and that key, so it needs no lookup (a
    list's contact whose call record was not written still opts out) and no other URL can."""
    if not number or not NUMBER_KEY.fullmatch(number):
        raise InvalidToken("the token in this opt-out URL is not valid for it")
    require_genuine(opt_out_subject(call_id, number), token, parameters.callback_secret)
    reason = f"the callee opted out during call {call_id}"
    suppression = Suppression(math.floor(deps.clock()), OPT_OUT, reason)
    deps.store.suppressions.suppress(number, suppression)
    count("NumbersSuppressed", reason="opt_out")
    logger.info("callee opted out", extra={"call_id": call_id})
    return {"status": "ok", "suppressed": True}
