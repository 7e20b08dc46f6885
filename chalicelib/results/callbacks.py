"""Receiving results: Fuse's callbacks for a call or for a list, and status answers polled by
the reconciler. Each is checked genuine, stored, and told to others.

No authenticated delivery is dropped: the raw body is stored as received even when it cannot be
read (flagged, and still answered 200 so Fuse stops retrying). The common path is one DynamoDB
write; an outcome also becomes an event when RESULTS_EVENT_BUS is set. A list's result names a
phone, not a row: it goes to the contact's call with that phone, or, when none matches (yet),
is kept beside the list.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Secrets
from chalicelib.deliveries.attempts import queue_delivery
from chalicelib.errors import NotFound
from chalicelib.fuse.callback_urls import list_token_subject, require_genuine
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.idempotency import contact_call_id
from chalicelib.records import CALLBACK, PENDING, CallRecord, Delivery, Kind, Reply
from chalicelib.results.call_result import UnreadableResult, read_result
from chalicelib.results.events import ResultNotPublished
from chalicelib.store.calls import StoreOutcome
from chalicelib.timestamps import iso
from chalicelib.validation.phones import InvalidPhone, parse_phone

# What is kept of a body. Fuse's call_details are about 1 KiB; a larger body is kept cut to this
# (flagged, its full size and digest recorded), since a DynamoDB item holds 400 KB at most.
MAX_STORED_BODY = 256 * 1024
UNMATCHED = "unmatched"  # a list's result kept beside the list: it names none of its contacts


def read_delivery(
    call_id: str, source: str, raw: bytes, content_type: str, now: int
) -> tuple[Delivery, dict[str, Any] | None]:
    """The delivery to store, and the call's new outcome if this body reports one."""
    digest = hashlib.sha256(content_type.encode() + b"\n" + raw).hexdigest()
    parsed, outcome, error = None, None, None
    try:
        result = read_result(raw, content_type)
    except UnreadableResult as err:
        error = str(err)
    except Exception as err:  # a reader's bug must not cost a genuine result: kept unreadable
        logger.exception("result body reader failed", extra={"call_id": call_id})
        error = f"the body could not be read ({type(err).__name__})"
    else:
        parsed = result.to_json()
        if result.is_outcome:
            outcome = {**parsed, "received_at": iso(now), "source": source}
        elif not result.status:
            error = "the body has no status"
    if len(raw) > MAX_STORED_BODY:
        cut = f"body of {len(raw)} bytes stored cut to {MAX_STORED_BODY}"
        error = f"{error}; {cut}" if error else cut
    delivery = Delivery(
        call_id=call_id,
        source=source,
        received_at=now,
        content_type=content_type,
        body=raw[:MAX_STORED_BODY],
        body_size=len(raw),
        digest=digest,
        parsed=parsed,
        parse_error=error,
    )
    return delivery, outcome


def store_delivery(
    delivery: Delivery, outcome: dict[str, Any] | None, now: int, deps: Dependencies
) -> StoreOutcome:
    """Stores one callback about a call; a new one is counted, and a new outcome published."""
    stored = deps.store.store_result(delivery, outcome, now, deps.settings.expires_at(now))
    if stored == StoreOutcome.STORED:
        count("CallbacksStored", outcome=outcome_label(outcome))
        if outcome is not None:
            publish_outcome(deps, delivery.call_id, outcome, now)
    return stored


def receive_result(
    call_id: str,
    token: str | None,
    raw: bytes,
    content_type: str,
    *,
    secrets: Secrets,
    deps: Dependencies,
) -> Reply:
    """A result Fuse posted to one call's result URL."""
    require_genuine(call_id, token, secrets.callback_secret)
    now = math.floor(deps.clock())
    delivery, outcome = read_delivery(call_id, CALLBACK, raw, content_type, now)
    stored = store_delivery(delivery, outcome, now, deps)
    log = {
        "call_id": call_id,
        "stored": stored.value,
        "call_status": outcome["status"] if outcome else None,
        "unreadable": delivery.parse_error,
        "body_bytes": delivery.body_size,
    }
    if stored == StoreOutcome.UNKNOWN_CALL:
        logger.warning("callback for a call the bridge does not have", extra=log)
        raise NotFound(f"no call {call_id}")
    logger.info("callback received", extra=log)
    return Reply(200, {"status": stored.value, "id": call_id})


def receive_list_result(
    list_id: str,
    token: str | None,
    raw: bytes,
    content_type: str,
    *,
    secrets: Secrets,
    deps: Dependencies,
) -> Reply:
    """A result Fuse posted to a list's result URL: matched to its contact by the phone."""
    require_genuine(list_token_subject(list_id), token, secrets.callback_secret)
    now = math.floor(deps.clock())
    # Read once, as if for the list; it is the contact's call's if its phone names one.
    kept, outcome = read_delivery(list_id, CALLBACK, raw, content_type, now)
    phone = contact_phone(kept.parsed, deps.settings.default_phone_region)
    call_id = contact_call_id(secrets.id_secret, list_id, phone) if phone else None

    def to_contact() -> Reply | None:
        if call_id is None:
            return None
        stored = store_delivery(replace(kept, call_id=call_id), outcome, now, deps)
        if stored == StoreOutcome.UNKNOWN_CALL:
            return None
        logger.info(
            "list callback received",
            extra={"batch_id": list_id, "call_id": call_id, "stored": stored.value},
        )
        return Reply(200, {"status": stored.value, "id": call_id})

    if (matched := to_contact()) is not None:
        return matched
    # Never dropped: a result that names no contact of the list is kept beside the list.
    if deps.store.get(list_id, Kind.LIST) is None:
        raise NotFound(f"no batch {list_id[:64]}")
    new = deps.store.keep_delivery(kept, deps.settings.expires_at(now)) == StoreOutcome.STORED
    # The list's calls may have been written, and its early results re-matched, between our
    # first try and keeping this one: the list's record settles before that sweep reads, so a
    # settled list means the sweep may have missed us; try the contact once more (a second
    # store of the same body is a harmless duplicate).
    listed = deps.store.get(list_id, Kind.LIST)
    if listed is not None and listed.status != PENDING and (matched := to_contact()):
        return matched
    status = UNMATCHED if new else StoreOutcome.DUPLICATE.value
    logger.warning(
        "list callback matches no contact", extra={"batch_id": list_id, "stored": status}
    )
    return Reply(200, {"status": status, "batch_id": list_id})


def rematch_early_results(list_id: str, secrets: Secrets, deps: Dependencies) -> int:
    """Results Fuse posted while the list's calls were still being written found no call and
    were kept beside the list; now that the calls exist, each goes to its own. Returns how many.
    """
    now = math.floor(deps.clock())
    matched = 0
    for body, content_type, received_at in deps.store.kept_deliveries(list_id):
        kept, outcome = read_delivery(list_id, CALLBACK, body, content_type, received_at)
        phone = contact_phone(kept.parsed, deps.settings.default_phone_region)
        if phone is None:
            continue
        delivery = replace(kept, call_id=contact_call_id(secrets.id_secret, list_id, phone))
        stored = deps.store.store_result(delivery, outcome, now, deps.settings.expires_at(now))
        if stored == StoreOutcome.STORED:
            matched += 1
            if outcome is not None:
                publish_outcome(deps, delivery.call_id, outcome, now)
    if matched:
        logger.info("early list results matched", extra={"batch_id": list_id, "matched": matched})
    return matched


def contact_phone(parsed: dict[str, Any] | None, region: str) -> str | None:
    """The phone a result names, in E.164. Fuse writes it without its `+` (its example:
    `'6173720293'`), so national digits are read in the default region, else as international."""
    phone = ((parsed or {}).get("details") or {}).get("phone_number")
    if not isinstance(phone, str) or not phone:
        return None
    for candidate in (phone, "+" + phone.lstrip("+")):
        try:
            return parse_phone(candidate, region)
        except InvalidPhone:
            continue
    return None


COUNTED_OUTCOMES = frozenset({"completed", "failed", "canceled", "busy", "no_answer", "rejected"})


def outcome_label(outcome: dict[str, Any] | None) -> str:
    """A metric dimension of few values: Fuse's own words beyond these are `other`."""
    if outcome is None:
        return "none"  # unreadable, or not an outcome yet
    status = str(outcome.get("status", ""))
    return status if status in COUNTED_OUTCOMES else "other"


def publish_outcome(
    deps: Dependencies,
    call_id: str,
    outcome: dict[str, Any],
    now: int,
    record: CallRecord | None = None,
) -> bool:
    """Sends the event for a newly stored outcome, and queues its delivery to the call's
    integration when it has a results_url; on a failure of either the call is left for the
    reconciler to do it again (the result itself is stored). True when an event went out.

    `record` gives the event its reference, campaign and Fuse id; without one, the call is read
    (only when there is an event or a delivery to make).
    """
    delivering = deps.deliveries.enabled and any_results_url(deps)
    if not deps.events.enabled and not delivering:
        return False
    record = record or deps.store.get(call_id)
    if record is None:  # it was stored a moment ago; only its expiry could have removed it
        return False
    if delivering:
        shown = replace(record, result=outcome, status=str(outcome.get("status", record.status)))
        queue_delivery(shown, deps.secrets.get(), deps, now)
    if not deps.events.enabled:
        return False
    try:
        deps.events.publish(record, outcome)
    except ResultNotPublished:
        deps.store.mark_publish_pending(call_id, now)
        return False
    return True


def any_results_url(deps: Dependencies) -> bool:
    """Whether any integration has its results delivered (from the cached parameters)."""
    return any(i.results for i in deps.secrets.get().integrations.values())
