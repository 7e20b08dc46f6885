"""Calls asked for by AWS events (SQS messages, EventBridge events) instead of HTTP.

The body is the same JSON as POST /calls and takes exactly the same path. What differs is who
hears the answer: nobody waits on an event, so each outcome becomes a decision. A request that
can never succeed is stored as `rejected` (readable with GET /calls/{id}) and not retried; a
passing fault is retried by the event source (the message or event comes back); an `unknown`
outcome is not retried, since the call may exist. A "batch" here is only ever an SQS batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.errors import BridgeError, ConfigurationIncomplete
from chalicelib.logs import logger
from chalicelib.placing.calls import place_call
from chalicelib.placing.idempotency import key_of
from chalicelib.placing.rejections import KEPT_TEXT, MAX_KEPT_REQUEST, PERMANENT, keep_rejection
from chalicelib.records import QUEUED, REJECTED, RETRY, UNKNOWN
from chalicelib.validation.json_body import read_json

MAX_ENVELOPE_BYTES = 256 * 1024  # SQS's own message limit


class RetryLater(Exception):
    """An EventBridge request met a passing fault: Lambda delivers the event again, and a call
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


def unwrap(body: bytes) -> tuple[bytes, str | None]:
    """An SNS notification (a topic's SQS subscription without raw message delivery) or a whole
    EventBridge event (a rule with an SQS target): the request inside, and the envelope's own
    id, which SNS and EventBridge keep when they deliver it again. Anything else as it came (a
    caller's request never has these fields: they would be refused as unknown)."""
    if not body.lstrip().startswith(b"{"):
        return body, None
    try:
        envelope = read_json(body, MAX_ENVELOPE_BYTES)
    except BridgeError:
        return body, None  # refused by the usual path, with the usual answer
    if not isinstance(envelope, dict):
        return body, None
    if envelope.get("Type") == "Notification" and isinstance(envelope.get("Message"), str):
        return envelope["Message"].encode("utf-8", "surrogatepass"), text(envelope.get("MessageId"))
    if {"detail-type", "source", "detail"} <= envelope.keys():
        return json.dumps(envelope["detail"]).encode(), text(envelope.get("id"))
    return body, None


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def place_event_call(
    raw_body: bytes, source_id: str, deps: Dependencies, *, alone: bool = True
) -> EventOutcome:
    """One message or event: the idempotency key is the body's, else the envelope's id (SNS,
    EventBridge), else `source_id` (the SQS message id, which stays the message's answer). One
    of a batch (`alone` false) waits for a bulk with the batch's others."""
    raw_body, envelope_id = unwrap(raw_body)
    key = envelope_id or source_id
    try:
        if not deps.settings.public_base_url:
            raise ConfigurationIncomplete(
                "PUBLIC_BASE_URL must be set for calls from events: no request names the API"
            )
        parameters = deps.parameters.get()
        placed = place_call(
            raw_body,
            None,
            deps.settings.public_base_url,
            parameters,
            deps,
            default_key=key,
            alone=alone,
        )
    except PERMANENT as err:
        call_id = store_rejection(raw_body, key, err, deps)
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
    """Keeps a refused request where its sender can read why (rejections.py); returns its call
    id: the one its idempotency key names, else (that key reused with another body) the
    message's own."""
    try:
        body = read_json(raw_body, MAX_KEPT_REQUEST)
    except BridgeError:
        body = None
    key = key_of(None, body, source_id) or source_id
    text = raw_body[:KEPT_TEXT].decode("utf-8", "replace")
    return keep_rejection(body, text, key, err, deps, source_id=source_id)


def decide_batch(
    messages: list[tuple[str, bytes]], deps: Dependencies, time_left: Callable[[], float]
) -> list[EventOutcome]:
    """Every (message id, body) of an SQS batch, each decided on its own, whatever it raises.

    A message is only started while one more Fuse request fits in the invocation's remaining
    time (`time_left`, seconds): an invocation that times out returns its whole batch, placed
    messages included. Those left unstarted are decided `retry`, untouched. A batch of several
    is placed as one: its calls wait for the dispatcher, which sends them in bulks, one per group
    of settings (never a single queue each: Plum warns a loop of those fails every call).
    """
    margin = deps.settings.fuse_request_seconds
    alone = len(messages) == 1
    outcomes = []
    for message_id, body in messages:
        if time_left() < margin:
            outcomes.append(EventOutcome(message_id, RETRY, None, "no_time_left"))
            continue
        try:
            outcomes.append(place_event_call(body, message_id, deps, alone=alone))
        except Exception:
            # A bug met by this message alone: retried alone (its key, if placed, stays held).
            logger.exception("call request failed unexpectedly", extra={"source_id": message_id})
            outcomes.append(EventOutcome(message_id, RETRY, None, "internal_error"))
    retried = [o for o in outcomes if o.must_retry]
    if retried:
        codes = ", ".join(sorted({o.code or "" for o in retried}))
        logger.warning(
            "call requests to retry",
            extra={"retry": len(retried), "of": len(outcomes), "codes": codes},
        )
    return outcomes


def decide_event(event_id: str, detail: Any, deps: Dependencies) -> EventOutcome:
    """One EventBridge event (its `detail` is the request); raises RetryLater for a passing
    fault, so that Lambda's asynchronous retries (then the dead-letter queue) take it."""
    try:
        body = json.dumps(detail).encode()
    except (RecursionError, ValueError, TypeError):
        body = b"(an event detail that cannot be written as JSON)"  # refused as invalid JSON
    [outcome] = decide_batch([(event_id, body)], deps, time_left=lambda: float("inf"))
    if outcome.must_retry:
        raise RetryLater(f"call request {event_id} met a passing fault ({outcome.code})")
    return outcome
