"""Refusals kept: a call request nobody waits on (an SQS message, an EventBridge event, one
notification of a Salesforce message) that can never succeed is stored as `rejected`, where its
sender can read why (GET /calls/{id}), delivered as `call.rejected`, and not asked again: its
key names the rejection, so a redelivery replays it instead of retrying.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import replace
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.deliveries.queueing import deliver_outcome
from chalicelib.errors import (
    BridgeError,
    CallLimitReached,
    CampaignNotAllowed,
    FuseRejectedRequest,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidJson,
    OutsideCallingHours,
    PayloadTooLarge,
    PhoneSuppressed,
    ValidationFailed,
)
from chalicelib.placing.idempotency import fingerprint
from chalicelib.placing.ids import id_for_key, own_id
from chalicelib.records import DEFAULT_INTEGRATION, PENDING, REJECTED, CallRecord, Kind, Reply
from chalicelib.store.calls import RecordExists

MAX_KEPT_REQUEST = 16 * 1024
KEPT_TEXT = 4096
# Refusals that the same request will always meet: stored, never retried. Consent's are too:
# a suppressed or capped number is not called later instead, and a window once closed stays so.
PERMANENT = (
    InvalidJson,
    PayloadTooLarge,
    ValidationFailed,
    IdempotencyKeyReused,
    FuseRejectedRequest,
    OutsideCallingHours,
    PhoneSuppressed,
    CallLimitReached,
    CampaignNotAllowed,  # the request names a campaign its integration may not use
)


def keep_rejection(
    body: Any,
    text: str,
    key: str,
    err: BridgeError,
    deps: Dependencies,
    *,
    integration: str = DEFAULT_INTEGRATION,
    source_id: str | None = None,
    request_hash: str | None = None,
) -> str:
    """Keeps a refused request (`body` as read, or None; `text` what came, when it could not
    be read) under the id its key names; returns its call id.

    When that key already names another call (reused with another body, or placed by another
    delivery meanwhile), the rejection is kept under `source_id`'s own id (an event's message
    id) if there is one, else that other call stands, or, while it is still being placed (or
    its key could not be freed), IdempotencyInProgress: the sender must come again. What is
    kept is bounded: the request up to MAX_KEPT_REQUEST bytes of JSON, else the start of its
    text, so it always fits an item.
    """
    fields = body if isinstance(body, dict) else {}
    reference, campaign = fields.get("reference"), fields.get("campaign")
    kept = json.dumps(fields, ensure_ascii=False, default=str)
    if len(kept) > MAX_KEPT_REQUEST:  # its text's start, still found by its reference
        fields, text = {}, kept
    now = math.floor(deps.clock())
    parameters = deps.parameters.get()
    call_id = id_for_key(parameters.id_secret, key, Kind.CALL, integration)
    record = CallRecord(
        id=call_id,
        status=REJECTED,
        request_hash=request_hash or fingerprint(body),  # as place_once would have kept it
        created_at=now,
        lock_until=0,
        request=fields or {"body": text[:KEPT_TEXT]},
        reference=reference if isinstance(reference, str) and len(reference) <= 128 else None,
        campaign=campaign if isinstance(campaign, str) and len(campaign) <= 64 else None,
        reply=Reply(err.status, {**err.body(), "id": call_id, "status": REJECTED}),
        integration=integration,
    )
    expires_at = deps.settings.expires_at(now)
    try:
        deps.store.create(record, expires_at, now)
    except RecordExists as held:
        if held.record.status == REJECTED:
            return call_id  # a redelivery of a rejection already kept
        if source_id is None:
            if held.record.status == PENDING:  # held by a request still being placed
                raise IdempotencyInProgress(
                    "the request's key is held by another being placed; retry shortly"
                ) from None
            return call_id  # a call placed by another delivery meanwhile stands
        kept_id = own_id(parameters.id_secret, source_id)
        reply = Reply(err.status, {**err.body(), "id": kept_id, "status": REJECTED})
        # Rejected before under its own id (a redelivery): that record stands.
        with contextlib.suppress(RecordExists):
            own = replace(record, id=kept_id, reply=reply)
            deps.store.create(own, expires_at, now)
            deliver_outcome(own, None, now, parameters, deps)
        return kept_id
    deliver_outcome(record, None, now, parameters, deps)  # call.rejected, if it has a receiver
    return call_id
