"""The dispatcher: the calls that wait (pacing.py), sent to Fuse in bulk_queue requests.

Its event source hands it a batch of the dispatch queue (DISPATCH_BATCH_SIZE messages, gathered
for up to DISPATCH_WINDOW_SECONDS), and at most FUSE_BULK_CONCURRENCY run at once: so at most
that many bulk_queue requests are in flight, however many calls wait, and each takes a slot of
the account's bulk budget (bulk_requests.py). A batch's calls are grouped (bulks.py) by what
bulk_queue applies to its whole list, never the same phone twice in one request.

Every promise of a single call holds: each call is claimed for one bulk by a conditional write
(so a message seen twice sends nothing twice), a bulk whose answer is lost makes its calls
`unknown` and is never sent again, one Fuse certainly refused goes back to wait with a backoff,
a claim its dispatcher never settled is settled by its bulk's status, and each call keeps its
own result (the bulk's callback URL finds it by its phone), outcome, event and delivery. A call
that cannot ring before its own `end_at`, or that has waited DISPATCH_MAX_WAIT_SECONDS, is
settled `expired`, with its reason, and delivered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.admission.calls import give_back, number_key
from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.deliveries.queueing import deliver_outcome
from chalicelib.errors import BridgeError, ConfigurationIncomplete, PhoneSuppressed
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.bulk_requests import (
    PER_CALL_SECONDS,
    net_at,
    place_bulk,
    seconds_for_a_bulk,
    settle_queued,
)
from chalicelib.placing.bulks import MAX_BULK_CALLS, plan_bulks
from chalicelib.placing.pacing import MIN_RING_SECONDS
from chalicelib.queues import backoff
from chalicelib.records import (
    DONE,
    EXPIRED,
    PENDING,
    QUEUED,
    REJECTED,
    RETRY,
    UNKNOWN,
    WAITING,
    CallRecord,
    Kind,
    Reply,
)

BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS = 15, 900


@dataclass(frozen=True)
class DispatchOutcome:
    """One dispatch message's decision: done (deleted), or back after `retry_in` seconds."""

    message_id: str
    decision: str
    retry_in: int = 0

    @property
    def must_retry(self) -> bool:
        return self.decision == RETRY


@dataclass(frozen=True)
class Waiting:
    """A dispatch message: which call it names, and how often SQS has handed it over."""

    message_id: str
    receipt_handle: str
    call_id: str | None
    receives: int


def read_messages(records: list[dict[str, Any]]) -> list[Waiting]:
    """The SQS records of a batch; one that names no call is done (only the bridge writes them)."""
    found = []
    for record in records:
        try:
            body = json.loads(record.get("body") or "")
        except (ValueError, RecursionError):
            body = None
        call_id = body.get("call_id") if isinstance(body, dict) else None
        receives = str((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
        found.append(
            Waiting(
                message_id=str(record.get("messageId", "")),
                receipt_handle=str(record.get("receiptHandle", "")),
                call_id=call_id if isinstance(call_id, str) and len(call_id) <= 64 else None,
                receives=int(receives) if receives.isdigit() else 1,
            )
        )
    return found


def dispatch_batch(
    records: list[dict[str, Any]], deps: Dependencies, time_left: Callable[[], float]
) -> list[DispatchOutcome]:
    """Every message of a batch decided: its call dispatched, settled or skipped (done), or
    back later (retry). Any error is met by the whole batch coming back: nothing is lost."""
    messages = read_messages(records)
    try:
        retry = dispatch(messages, deps, time_left)
    except BridgeError as err:  # SSM or DynamoDB in trouble, or configuration to fix
        logger.warning("dispatch deferred", extra={"outcome": err.code, "calls": len(messages)})
        retry = {m.call_id: 0 for m in messages if m.call_id}
    outcomes = []
    for message in messages:
        if message.call_id in retry:
            delay = backoff(
                message.receives, BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS, retry[message.call_id]
            )
            deps.dispatch.retry_in(message.receipt_handle, delay)
            outcomes.append(DispatchOutcome(message.message_id, RETRY, delay))
        else:
            outcomes.append(DispatchOutcome(message.message_id, DONE))
    return outcomes


def dispatch(
    messages: list[Waiting], deps: Dependencies, time_left: Callable[[], float]
) -> dict[str, int]:
    """The calls of these messages sent in bulks or settled; returns those to retry, each with
    the least delay before its message comes back."""
    call_ids = [m.call_id for m in messages if m.call_id]
    if not call_ids:
        return {}
    parameters = deps.parameters.get()
    if not deps.settings.public_base_url:
        raise ConfigurationIncomplete("PUBLIC_BASE_URL must be set: bulks' callback URLs")
    now = math.floor(deps.clock())
    shut_until = deps.store.budget.shut_until(parameters.fuse_email)
    if shut_until > now:  # Fuse was failing: the calls wait out the breaker
        return {call_id: shut_until - now for call_id in call_ids}
    retry: dict[str, int] = {}
    ready = []
    for record in deps.store.dispatch.calls(call_ids):
        if record.status != WAITING:
            continue  # dispatched or settled by an earlier copy of its message
        if record.bulk_id is not None:
            if record.lock_until > now:
                retry[record.id] = record.lock_until - now  # its bulk is being sent now
            elif settle_stale_claim(record, now, deps):
                retry[record.id] = 0  # free again: the next invocation sends it
            continue
        if reason := expiry(record, now, deps.settings.dispatch_max_wait_seconds):
            expire(record, reason, now, parameters, deps)
            continue
        ready.append(record)
    ready = not_suppressed(ready, now, parameters, deps)
    for bulk in plan_bulks(ready, largest_bulk(deps, time_left), now):
        retry.update(place_bulk(bulk, now, parameters, deps, time_left))
    return retry


def largest_bulk(deps: Dependencies, time_left: Callable[[], float]) -> int:
    """The most calls one bulk may hold: what fits in the invocation's time left (their claims
    and settlements, around one Fuse request), and at most MAX_BULK_CALLS."""
    fits = (time_left() - seconds_for_a_bulk(0, deps)) / PER_CALL_SECONDS
    return max(1, min(MAX_BULK_CALLS, math.floor(fits + 1e-9)))


def settle_stale_claim(record: CallRecord, now: int, deps: Dependencies) -> bool:
    """A call claimed by a dispatcher that never settled it (it died, or the store failed it).
    Its bulk says what happened: queued, the call was too; pending (its request may have been
    in flight), unknown, never sent again; never sent, or refused: the call is free again
    (True)."""
    bulk_id = str(record.bulk_id)
    bulk = deps.store.get(bulk_id, Kind.BULK)
    if bulk is not None and bulk.status == QUEUED:
        fuse_call_id = deps.store.dispatch.fuse_id_in_bulk(bulk_id, record.id)
        settle_queued(record, bulk_id, fuse_call_id, now, deps)
        logger.warning("stale claim settled", extra={"call_id": record.id, "outcome": QUEUED})
        return False
    if bulk is not None and bulk.status in (PENDING, UNKNOWN):
        deps.store.dispatch.settle(record.id, bulk_id, UNKNOWN, now)
        logger.warning("stale claim settled", extra={"call_id": record.id, "outcome": UNKNOWN})
        return False
    deps.store.dispatch.release(record.id, str(record.bulk_id), net_at(record, deps))
    logger.warning("stale claim freed", extra={"call_id": record.id, "bulk_id": record.bulk_id})
    return True


def expiry(record: CallRecord, now: int, max_wait: int) -> str | None:
    """Why a waiting call can no longer go, if it cannot."""
    end_at = record.request.get("end_at")
    if isinstance(end_at, int) and now > end_at - MIN_RING_SECONDS:
        return "its end_at passed while it waited for Fuse"
    if now - record.created_at > max_wait:
        return f"it waited longer than {max_wait} s (DISPATCH_MAX_WAIT_SECONDS) for Fuse"
    return None


def expire(
    record: CallRecord, reason: str, now: int, parameters: Parameters, deps: Dependencies
) -> bool:
    """Settled `expired`, never sent; False when it left the wait meanwhile."""
    error = {"code": "call_expired", "message": f"the call was never sent: {reason}"}
    return settle_unsent(record, EXPIRED, error, now=now, parameters=parameters, deps=deps)


def not_suppressed(
    ready: list[CallRecord], now: int, parameters: Parameters, deps: Dependencies
) -> list[CallRecord]:
    """The do-not-call list checked again as the calls go: a number suppressed while its call
    waited is not called (the call is rejected, phone_suppressed, and delivered)."""
    if not ready:
        return ready
    keys = {r.id: number_key(parameters.id_secret, str(r.request.get("phone"))) for r in ready}
    held = deps.store.suppressions.suppressed_among(set(keys.values()))
    error = {"code": PhoneSuppressed.code, "message": "the number was put on the do-not-call list"}
    for record in ready:
        if keys[record.id] in held:
            settle_unsent(record, REJECTED, error, now=now, parameters=parameters, deps=deps)
    return [r for r in ready if keys[r.id] not in held]


def settle_unsent(
    record: CallRecord,
    status: str,
    error: dict[str, str],
    *,
    now: int,
    parameters: Parameters,
    deps: Dependencies,
) -> bool:
    """Settled without going to Fuse (`expired`, or `rejected` by consent): readable with its
    reason, its count given back, and delivered (call.expired, call.rejected). False when it
    left the wait meanwhile (claimed for a bulk)."""
    reply = Reply(202, {"error": {**error, "details": []}, "id": record.id, "status": status})
    if not deps.store.dispatch.expire(record.id, reply, now, status):
        return False
    if status == EXPIRED:
        count("CallsExpired")
    else:
        count("CallsRejected", reason=error["code"])
    logger.warning("call not sent", extra={"call_id": record.id, "outcome": error["code"]})
    give_back(record.id, record.request.get("phone"), parameters, deps.store)
    deliver_outcome(replace(record, status=status, reply=reply), None, now, parameters, deps)
    return True
