"""Fuse's callbacks: what it posts to a call's or a list's callback URL, checked genuine, read,
stored, and announced; the reconciler's status reads are read and stored the same way.

No authenticated callback is dropped: the raw body is stored as received even when it cannot be
read (flagged, and still answered 200 so Fuse stops retrying). The common path is one DynamoDB
write; a new outcome is then announced (announce.py). A list's result names a phone, not a row:
it goes to the contact's call with that phone, or, when none matches (yet), is kept beside the
list; one kept while the list was being placed is matched by the reconciler once the list's
lock has ended (match_unmatched).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.errors import NotFound
from chalicelib.fuse.callback_urls import bulk_token_subject, list_token_subject, require_genuine
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.ids import contact_call_id
from chalicelib.records import MAX_ID_LENGTH, PENDING, SOURCE_CALLBACK, Callback, Kind, Reply
from chalicelib.results.announce import announce_outcome
from chalicelib.results.call_result import UnreadableResult, read_result
from chalicelib.store.callbacks import StoreOutcome
from chalicelib.timestamps import iso
from chalicelib.validation.phones import NON_GEOGRAPHIC, InvalidPhone, parse_phone

# What is kept of a body. Fuse's call_details are about 1 KiB; a larger body is kept cut to this
# (flagged, its full size and digest recorded), since a DynamoDB item holds 400 KB at most.
MAX_STORED_BODY = 256 * 1024
UNMATCHED = "unmatched"  # a list's result kept beside the list: it names none of its contacts
COUNTED_OUTCOMES = frozenset({"completed", "failed", "canceled", "busy", "no_answer", "rejected"})


def read_callback(
    call_id: str, source: str, raw: bytes, content_type: str, now: int
) -> tuple[Callback, dict[str, Any] | None]:
    """The callback to store, and the call's new outcome if this body reports one."""
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
    callback = Callback(
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
    return callback, outcome


def store_callback(
    callback: Callback,
    outcome: dict[str, Any] | None,
    now: int,
    parameters: Parameters,
    deps: Dependencies,
) -> StoreOutcome:
    """Stores one callback about a call; a new one is counted, and a new outcome announced."""
    stored = deps.store.callbacks.add(callback, outcome, now, deps.settings.expires_at(now))
    if stored == StoreOutcome.STORED:
        count("CallbacksStored", outcome=outcome_label(outcome))
        if outcome is not None:
            announce_outcome(callback.call_id, outcome, now, parameters, deps)
    return stored


def receive_callback(
    call_id: str,
    token: str | None,
    raw: bytes,
    content_type: str,
    *,
    parameters: Parameters,
    deps: Dependencies,
) -> Reply:
    """A result Fuse posted to one call's callback URL."""
    require_genuine(call_id, token, parameters.callback_secret)
    now = math.floor(deps.clock())
    callback, outcome = read_callback(call_id, SOURCE_CALLBACK, raw, content_type, now)
    stored = store_callback(callback, outcome, now, parameters, deps)
    log = {
        "call_id": call_id,
        "stored": stored.value,
        "call_status": outcome["status"] if outcome else None,
        "unreadable": callback.parse_error,
        "body_bytes": callback.body_size,
    }
    if stored == StoreOutcome.UNKNOWN_CALL:
        logger.warning("callback for a call the bridge does not have", extra=log)
        raise NotFound(f"no call {call_id}")
    logger.info("callback received", extra=log)
    return Reply(200, {"status": stored.value, "id": call_id})


def receive_list_callback(
    list_id: str,
    token: str | None,
    raw: bytes,
    content_type: str,
    *,
    parameters: Parameters,
    deps: Dependencies,
) -> Reply:
    """A result Fuse posted to a list's callback URL: matched to its contact by the phone."""
    require_genuine(list_token_subject(list_id), token, parameters.callback_secret)
    now = math.floor(deps.clock())
    # Read once, as if for the list; it is the contact's call's if its phone names one.
    kept, outcome = read_callback(list_id, SOURCE_CALLBACK, raw, content_type, now)

    def to_contact() -> Reply | None:
        call_id = contact_of(kept, parameters, deps)
        if call_id is None:
            return None
        stored = store_callback(replace(kept, call_id=call_id), outcome, now, parameters, deps)
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
    kept_now = deps.store.callbacks.keep_unmatched(kept, deps.settings.expires_at(now))
    new = kept_now == StoreOutcome.STORED
    # The list's contacts may have been written between our first try and keeping this one:
    # once the list has settled they all exist, so try the contact once more (a second store of
    # the same body is a harmless duplicate). While it is still being placed, it is looked at
    # again when its placing is over, by the reconciler (match_unmatched).
    listed = deps.store.get(list_id, Kind.LIST)
    if listed is not None and listed.status != PENDING and (matched := to_contact()):
        return matched
    if listed is not None and listed.status == PENDING:
        deps.store.open_for_check(list_id, listed.lock_until, Kind.LIST)
    status = UNMATCHED if new else StoreOutcome.DUPLICATE.value
    logger.warning(
        "list callback matches no contact", extra={"batch_id": list_id, "stored": status}
    )
    return Reply(200, {"status": status, "batch_id": list_id})


def receive_bulk_callback(
    bulk_id: str,
    token: str | None,
    raw: bytes,
    content_type: str,
    *,
    parameters: Parameters,
    deps: Dependencies,
) -> Reply:
    """A result Fuse posted to a bulk's callback URL: the bulk's calls are waiting calls sent
    together (placing/dispatch.py), each found by its phone among the bulk's members, under every
    reading; one that names none of them, or more than one, is kept beside the bulk."""
    require_genuine(bulk_token_subject(bulk_id), token, parameters.callback_secret)
    now = math.floor(deps.clock())
    kept, outcome = read_callback(bulk_id, SOURCE_CALLBACK, raw, content_type, now)
    bulk = deps.store.get(bulk_id, Kind.BULK) if len(bulk_id) <= MAX_ID_LENGTH else None
    if bulk is None:
        raise NotFound(f"no bulk {bulk_id[:MAX_ID_LENGTH]}")
    members = bulk.members or {}
    regions = {deps.settings.default_phone_region, *deps.settings.dial_policy.countries}
    readings = contact_readings(kept.parsed, sorted(regions - {NON_GEOGRAPHIC}))
    found = list(dict.fromkeys(members[p] for p in readings if p in members))
    if len(found) == 1:
        stored = store_callback(replace(kept, call_id=found[0]), outcome, now, parameters, deps)
        logger.info(
            "bulk callback received",
            extra={"bulk_id": bulk_id, "call_id": found[0], "stored": stored.value},
        )
        if stored != StoreOutcome.UNKNOWN_CALL:  # its call gone (expired): kept beside the bulk
            return Reply(200, {"status": stored.value, "id": found[0]})
    new = deps.store.callbacks.keep_unmatched(kept, deps.settings.expires_at(now))
    status = UNMATCHED if new == StoreOutcome.STORED else StoreOutcome.DUPLICATE.value
    logger.warning("bulk callback matches no call", extra={"bulk_id": bulk_id, "stored": status})
    return Reply(200, {"status": status, "bulk_id": bulk_id})


def contact_of(kept: Callback, parameters: Parameters, deps: Dependencies) -> str | None:
    """The contact's call of the list (`kept.call_id` is the list's id) that the callback's
    phone names, under every reading of it: the one contact of the list that is a reading,
    else None (none is, or more than one: it is kept beside the list rather than guessed)."""
    regions = {deps.settings.default_phone_region, *deps.settings.dial_policy.countries}
    readings = contact_readings(kept.parsed, sorted(regions - {NON_GEOGRAPHIC}))
    ids = [contact_call_id(parameters.id_secret, kept.call_id, phone) for phone in readings]
    if len(ids) <= 1:
        return ids[0] if ids else None  # storing it finds out whether it is the list's
    found = deps.store.existing(ids)
    if len(found) > 1:
        logger.warning(
            "list callback names more than one contact",
            extra={"batch_id": kept.call_id, "readings": len(found)},
        )
    return found[0] if len(found) == 1 else None


def match_unmatched(list_id: str, parameters: Parameters, deps: Dependencies) -> int:
    """Results Fuse posted while the list's calls were still being written found no call and
    were kept beside the list; now that the calls exist, each goes to its own (counted and
    announced like any callback). Returns how many."""
    now = math.floor(deps.clock())
    matched = 0
    for body, content_type, received_at in deps.store.callbacks.unmatched(list_id):
        kept, outcome = read_callback(list_id, SOURCE_CALLBACK, body, content_type, received_at)
        call_id = contact_of(kept, parameters, deps)
        if call_id is None:
            continue
        contact = replace(kept, call_id=call_id)
        if store_callback(contact, outcome, now, parameters, deps) == StoreOutcome.STORED:
            matched += 1
    if matched:
        logger.info("early list results matched", extra={"batch_id": list_id, "matched": matched})
    return matched


def contact_readings(parsed: dict[str, Any] | None, regions: list[str]) -> tuple[str, ...]:
    """Every number in E.164 the phone a result names can be. Fuse writes it without its `+`
    (its example: `'6173720293'`), so its digits may be national in any region the bridge
    calls, or international: `3546111234` is Iceland's +354 611 1234 and Canada's
    +1 354 611 1234 alike."""
    phone = ((parsed or {}).get("details") or {}).get("phone_number")
    if not isinstance(phone, str) or not phone:
        return ()
    readings = []
    for candidate, region in [*((phone, r) for r in regions), ("+" + phone.lstrip("+"), "US")]:
        try:
            readings.append(parse_phone(candidate, region))
        except InvalidPhone:
            continue
    return tuple(dict.fromkeys(readings))


def outcome_label(outcome: dict[str, Any] | None) -> str:
    """A metric dimension of few values: Fuse's own words beyond these are `other`."""
    if outcome is None:
        return "none"  # unreadable, or not an outcome yet
    status = str(outcome.get("status", ""))
    return status if status in COUNTED_OUTCOMES else "other"
