"""Calls asked for by AWS events (SQS messages, EventBridge events) instead of HTTP.

The body is the same JSON as POST /calls and takes exactly the same path. What differs is who
hears the answer: nobody waits on an event, so each outcome becomes a decision. A request that
can never succeed is stored as `rejected` (readable with GET /calls/{id}) and not retried; a
passing fault is retried by the event source (the message or event comes back); an `unknown`
outcome is not retried, since the call may exist. A "batch" here is only ever an SQS batch.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, replace

from chalicelib import idempotency
from chalicelib.dependencies import Dependencies
from chalicelib.errors import (
    BridgeError,
    ConfigurationIncomplete,
    FuseRejectedRequest,
    IdempotencyKeyReused,
    InvalidJson,
    PayloadTooLarge,
    ValidationFailed,
)
from chalicelib.logs import logger
from chalicelib.placing import place_call
from chalicelib.records import QUEUED, REJECTED, UNKNOWN, CallRecord, Reply
from chalicelib.store import RecordExists

RETRY = "retry"
# Refusals that the same request will always meet: stored, never retried.
PERMANENT = (
    InvalidJson,
    PayloadTooLarge,
    ValidationFailed,
    IdempotencyKeyReused,
    FuseRejectedRequest,
)


class RetryLater(Exception):
    """Raised once the whole batch is done: its event source delivers it again, and what was
    already placed is then skipped by idempotency."""


@dataclass(frozen=True)
class EventOutcome:
    source_id: str
    decision: str  # queued | unknown | rejected | retry
    call_id: str | None = None
    code: str | None = None

    @property
    def must_retry(self) -> bool:
        return self.decision == RETRY


def place_from_event(raw_body: bytes, source_id: str, deps: Dependencies) -> EventOutcome:
    """One message or event: the idempotency key is the body's, else `source_id`."""
    try:
        if not deps.settings.public_base_url:
            raise ConfigurationIncomplete(
                "PUBLIC_BASE_URL must be set for calls from events: no request names the API"
            )
        secrets = deps.secrets.get()
        placed = place_call(
            raw_body, None, deps.settings.public_base_url, secrets, deps, default_key=source_id
        )
    except PERMANENT as err:
        call_id = store_rejection(raw_body, source_id, err, deps)
        outcome = EventOutcome(source_id, REJECTED, call_id, err.code)
    except BridgeError as err:  # SSM, DynamoDB or Fuse in trouble, or configuration to fix
        outcome = EventOutcome(source_id, RETRY, None, err.code)
    else:
        outcome = EventOutcome(source_id, placed.status, placed.id, code_of(placed.status))
        if placed.status == REJECTED:  # the replay of a rejection stored when it first came
            outcome = replace(outcome, code=placed.reply.body.get("error", {}).get("code"))
    logger.info(
        "call request from an event",
        extra={
            "source_id": source_id,
            "decision": outcome.decision,
            "call_id": outcome.call_id,
            "outcome": outcome.code,
        },
    )
    return outcome


def code_of(status: str) -> str | None:
    return {QUEUED: None, UNKNOWN: "fuse_outcome_unknown"}.get(status)


def store_rejection(raw_body: bytes, source_id: str, err: BridgeError, deps: Dependencies) -> str:
    """Keeps a refused request where its sender can read why; returns its call id.

    The id is the one its idempotency key names; when that key already names another call
    (reused with another body), the rejection is kept under the message's own id instead.
    """
    try:
        body = json.loads(raw_body)
    except ValueError:
        body = None
    fields = body if isinstance(body, dict) else {}
    reference, campaign = fields.get("reference"), fields.get("campaign")
    now = math.floor(deps.clock())
    call_id = idempotency.id_for_key(idempotency.key_of(None, body, source_id) or source_id)
    record = CallRecord(
        id=call_id,
        status=REJECTED,
        request_hash=idempotency.fingerprint(body),
        created_at=now,
        lock_until=0,
        request=fields or {"body": raw_body[:4096].decode("utf-8", "replace")},
        reference=reference if isinstance(reference, str) and len(reference) <= 128 else None,
        campaign=campaign if isinstance(campaign, str) and len(campaign) <= 64 else None,
        reply=Reply(err.status, {**err.body(), "id": call_id, "status": REJECTED}),
    )
    expires_at = deps.settings.expires_at(now)
    try:
        deps.store.create(record, expires_at, now)
    except RecordExists as held:
        if held.record.status != REJECTED:
            own_id = idempotency.id_for_key(f"event:{source_id}")
            reply = Reply(err.status, {**err.body(), "id": own_id, "status": REJECTED})
            # Rejected before under its own id (a redelivery): that record stands.
            with contextlib.suppress(RecordExists):
                deps.store.create(replace(record, id=own_id, reply=reply), expires_at, now)
            return own_id
    return call_id


def place_batch(messages: list[tuple[str, bytes]], deps: Dependencies) -> list[EventOutcome]:
    """Every (message id, body) of an SQS batch, each decided on its own; raises RetryLater at
    the end if any met a passing fault (Chalice has no partial batch response: the batch comes
    back)."""
    outcomes = [place_from_event(body, message_id, deps) for message_id, body in messages]
    retry = [o for o in outcomes if o.must_retry]
    if retry:
        codes = ", ".join(sorted({o.code or "" for o in retry}))
        raise RetryLater(
            f"{len(retry)} of {len(outcomes)} call requests met a passing fault ({codes})"
        )
    return outcomes
