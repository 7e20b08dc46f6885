"""Receiving Fuse's result callbacks: check they are genuine, store them, tell others.

No authenticated delivery is dropped: the raw body is stored as received even when it cannot be
read (flagged, and still answered 200 so Fuse stops retrying). The common path is one DynamoDB
write; an outcome also becomes an event when RESULTS_EVENT_BUS is set.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from chalicelib.call_results import UnreadableResult, normalise, read_body, to_iso
from chalicelib.callback_tokens import require_genuine
from chalicelib.dependencies import Dependencies
from chalicelib.errors import NotFound
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.records import CALLBACK, CallRecord, Delivery, Reply
from chalicelib.result_events import ResultNotPublished
from chalicelib.secrets import Secrets
from chalicelib.store import STORED, UNKNOWN_CALL

# What is kept of a body. Fuse's call_details are about 1 KiB; a larger body is kept cut to this
# (flagged, its full size and digest recorded), since a DynamoDB item holds 400 KB at most.
MAX_STORED_BODY = 256 * 1024


def read_delivery(
    call_id: str, source: str, raw: bytes, content_type: str, now: int
) -> tuple[Delivery, dict[str, Any] | None]:
    """The delivery to store, and the call's new outcome if this body reports one."""
    digest = hashlib.sha256(content_type.encode() + b"\n" + raw).hexdigest()
    parsed, outcome, error = None, None, None
    try:
        result = normalise(read_body(raw, content_type))
    except UnreadableResult as err:
        error = str(err)
    else:
        parsed = result.to_json()
        if result.is_outcome:
            outcome = {**parsed, "received_at": to_iso(now), "source": source}
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


def receive_result(
    call_id: str,
    token: str | None,
    raw: bytes,
    content_type: str,
    *,
    secrets: Secrets,
    deps: Dependencies,
) -> Reply:
    require_genuine(call_id, token, secrets.callback_secret)
    now = math.floor(deps.clock())
    delivery, outcome = read_delivery(call_id, CALLBACK, raw, content_type, now)
    expires_at = deps.settings.expires_at(now)
    stored = deps.store.store_result(delivery, outcome, now, expires_at)
    log = {
        "call_id": call_id,
        "stored": stored,
        "call_status": outcome["status"] if outcome else None,
        "unreadable": delivery.parse_error,
        "body_bytes": delivery.body_size,
    }
    if stored == UNKNOWN_CALL:
        logger.warning("callback for a call the bridge does not have", extra=log)
        raise NotFound(f"no call {call_id}")
    logger.info("callback received", extra=log)
    if stored == STORED:
        count("CallbacksStored")
        if outcome is not None:
            publish_outcome(deps, call_id, outcome, now)
    return Reply(200, {"status": stored, "id": call_id})


def publish_outcome(
    deps: Dependencies,
    call_id: str,
    outcome: dict[str, Any],
    now: int,
    record: CallRecord | None = None,
) -> bool:
    """Sends the event for a newly stored outcome; on failure the call is left for the
    reconciler to send it (the result itself is stored). True when an event went out.

    `record` gives the event its reference, campaign and Fuse id; without one, the call is read.
    """
    if not deps.events.enabled:
        return False
    record = record or deps.store.get(call_id)
    if record is None:  # it was stored a moment ago; only its expiry could have removed it
        return False
    try:
        deps.events.publish(record, outcome)
    except ResultNotPublished:
        deps.store.mark_publish_pending(call_id, now)
        return False
    return True
