"""The dispatcher: the calls that wait (pacing.py), sent to Fuse in bulk_queue requests.

Its event source hands it a batch of the dispatch queue (DISPATCH_BATCH_SIZE messages, gathered
for up to DISPATCH_WINDOW_SECONDS), and at most FUSE_BULK_CONCURRENCY run at once: so at most
that many bulk_queue requests are in flight, however many calls wait. A batch's calls are grouped
by what bulk_queue applies to its whole list (campaign, schedule, attempts, retry wait, pci: each
row keeps its own caller id, DTMF and variables), never the same phone twice in one request.

Every promise of a single call holds: each call is claimed for one bulk by a conditional write
(so a message seen twice sends nothing twice), a bulk whose answer is lost makes its calls
`unknown` and is never sent again, one Fuse certainly refused goes back to wait with a backoff,
and each call keeps its own result (the bulk's callback URL finds it by its phone), outcome,
event and delivery. A call that cannot ring before its own `end_at`, or that has waited
DISPATCH_MAX_WAIT_SECONDS, is settled `expired`, with its reason, and delivered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.deliveries.queueing import deliver_outcome
from chalicelib.errors import (
    BridgeError,
    ConfigurationIncomplete,
    FuseError,
    FuseOutcomeUnknown,
    FuseRejectedRequest,
    FuseUnavailable,
)
from chalicelib.fuse.bulk_form import bulk_csv
from chalicelib.fuse.callback_urls import bulk_callback_url
from chalicelib.fuse.form import fuse_phone_number, schedule_fields
from chalicelib.logs import logger
from chalicelib.metrics import count, seconds
from chalicelib.placing.bulks import MAX_BULK_CALLS, plan_bulks, shared_settings
from chalicelib.placing.ids import new_id
from chalicelib.placing.pacing import shut
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
BULK_MARGIN_SECONDS = 5  # beyond the bulk request itself: its claims and settlements
MIN_RING_SECONDS = 60  # a call whose end_at is closer than this can no longer ring


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
            else:  # its dispatcher died after claiming it: its bulk may have gone
                deps.store.dispatch.settle(record.id, record.bulk_id, UNKNOWN, now)
            continue
        if reason := expiry(record, now, deps.settings.dispatch_max_wait_seconds):
            expire(record, reason, now, parameters, deps)
            continue
        ready.append(record)
    for n, bulk in enumerate(plan_bulks(ready, MAX_BULK_CALLS, now)):
        if not time_for_a_bulk(deps, time_left):
            retry.update({c.id: 0 for c in bulk})  # untouched: the next invocation sends it
            continue
        if n and (shut_until := deps.store.budget.shut_until(parameters.fuse_email)) > now:
            retry.update({c.id: shut_until - now for c in bulk})  # Fuse failed meanwhile
            continue
        retry.update(send_bulk(bulk, parameters, deps, time_left))
    return retry


def time_for_a_bulk(deps: Dependencies, time_left: Callable[[], float]) -> bool:
    """Whether one more bulk_queue request, and what surrounds it, fits in the invocation."""
    return time_left() >= deps.settings.fuse_request_seconds + BULK_MARGIN_SECONDS


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
) -> None:
    """Settled `expired`, never sent: readable with its reason, and delivered (call.expired)."""
    error = {"code": "call_expired", "message": f"the call was never sent: {reason}"}
    reply = Reply(202, {"error": {**error, "details": []}, "id": record.id, "status": EXPIRED})
    if not deps.store.dispatch.expire(record.id, reply, now):
        return
    count("CallsExpired")
    logger.warning("call expired", extra={"call_id": record.id, "outcome": "call_expired"})
    deliver_outcome(replace(record, status=EXPIRED, reply=reply), None, now, parameters, deps)


def send_bulk(
    calls: list[CallRecord],
    parameters: Parameters,
    deps: Dependencies,
    time_left: Callable[[], float],
) -> dict[str, int]:
    """One bulk_queue request of these calls (those still free to claim); returns those to
    retry. A bulk Fuse refuses as a request (400) is halved, so one bad row fails alone."""
    now = math.floor(deps.clock())
    bulk_id = new_id()
    until = now + math.ceil(deps.settings.in_flight_seconds)
    claimed = [c for c in calls if deps.store.dispatch.claim(c.id, bulk_id, until)]
    if not claimed:
        return {}
    first = claimed[0]
    campaign = parameters.campaigns.get(str(first.campaign))
    if campaign is None or campaign.problem:  # removed or half-written since it was accepted
        release_all(claimed, bulk_id, now, deps)
        logger.error("bulk's campaign is not configured", extra={"campaign": first.campaign})
        return {c.id: BACKOFF_MAX_SECONDS for c in claimed}
    deps.store.create(bulk_record(claimed, bulk_id, now, until), deps.settings.expires_at(now), now)
    rows = [
        (
            fuse_phone_number(c.request["phone"], c.request["caller_id"], c.request.get("dtmf")),
            c.request.get("variables") or {},
        )
        for c in claimed
    ]
    url = bulk_callback_url(deps.settings.public_base_url, bulk_id, parameters.callback_secret)
    log = {"bulk_id": bulk_id, "campaign": first.campaign, "calls": len(claimed)}
    try:
        sent = deps.fuse.bulk_queue(
            parameters.fuse_credentials,
            campaign,
            csv_file=bulk_csv(rows),
            fields=schedule_fields(shared_settings(first, now), url),
            rows=len(rows),
        )
    except FuseOutcomeUnknown as err:  # Fuse may have them all: never sent again
        shut(parameters, deps)
        for call in claimed:
            deps.store.dispatch.settle(call.id, bulk_id, UNKNOWN, now)
        deps.store.settle(bulk_id, UNKNOWN, None, now=now, kind=Kind.BULK)
        count("BulksSent", outcome=UNKNOWN)
        logger.warning("bulk outcome unknown", extra={**log, "outcome": err.code})
        return {}
    except FuseError as err:  # Fuse certainly took nothing: the calls wait again
        release_all(claimed, bulk_id, now, deps)
        deps.store.settle(bulk_id, err.code, None, now=now, kind=Kind.BULK)
        count("BulksSent", outcome=err.code)
        logger.warning("bulk not queued", extra={**log, "outcome": err.code})
        if isinstance(err, FuseRejectedRequest):
            return halve(claimed, err, now, parameters, deps, time_left=time_left)
        if isinstance(err, FuseUnavailable):
            shut(parameters, deps)
        return {c.id: 0 for c in claimed}
    for row, call in enumerate(claimed):
        fuse_call_id = sent.call_ids[row] if sent.call_ids else None
        poll_at = shared_settings(call, now).check_after(now, deps.settings.reconcile_after_seconds)
        deps.store.dispatch.settle(
            call.id,
            bulk_id,
            QUEUED,
            now,
            fuse_call_id=fuse_call_id,
            check_after=poll_at if fuse_call_id else None,
        )
    deps.store.settle(bulk_id, QUEUED, None, now=now, kind=Kind.BULK, fuse_response=sent.body)
    count("BulksSent", outcome=QUEUED)
    count("CallsDispatched", len(claimed))
    seconds("DispatchLag", now - min(c.created_at for c in claimed))
    logger.info(
        "bulk queued", extra={**log, "outcome": QUEUED, "fuse_call_ids": bool(sent.call_ids)}
    )
    return {}


def bulk_record(claimed: list[CallRecord], bulk_id: str, now: int, until: int) -> CallRecord:
    """The bulk, kept so that its results find their calls: each phone and its call."""
    return CallRecord(
        id=bulk_id,
        kind=Kind.BULK,
        status=PENDING,
        request_hash="",
        created_at=now,
        lock_until=until,
        request={"calls": len(claimed)},
        campaign=claimed[0].campaign,
        members={str(c.request["phone"]): c.id for c in claimed},
    )


def release_all(claimed: list[CallRecord], bulk_id: str, now: int, deps: Dependencies) -> None:
    for call in claimed:
        deps.store.dispatch.release(call.id, bulk_id, now + BACKOFF_MAX_SECONDS)


def halve(
    claimed: list[CallRecord],
    err: FuseError,
    now: int,
    parameters: Parameters,
    deps: Dependencies,
    *,
    time_left: Callable[[], float],
) -> dict[str, int]:
    """A bulk Fuse refused as a request: each half is sent alone, until the call Fuse refuses
    stands alone and is rejected (the others go). Halves left for lack of time wait again."""
    if len(claimed) == 1:
        reject(claimed[0], err, now, parameters, deps)
        return {}
    retry = {}
    half = len(claimed) // 2
    for part in (claimed[:half], claimed[half:]):
        if time_for_a_bulk(deps, time_left):
            retry.update(send_bulk(part, parameters, deps, time_left))
        else:
            retry.update({c.id: 0 for c in part})
    return retry


def reject(
    call: CallRecord, err: FuseError, now: int, parameters: Parameters, deps: Dependencies
) -> None:
    """A call Fuse refused as a request (400), alone in its bulk: settled `rejected` with Fuse's
    words, never sent again, and delivered (call.rejected)."""
    bulk_id = new_id()
    if not deps.store.dispatch.claim(call.id, bulk_id, now):
        return
    reply = Reply(err.status, {**err.body(), "id": call.id, "status": REJECTED})
    deps.store.dispatch.settle(call.id, bulk_id, REJECTED, now, reply=reply)
    count("CallsRejected", reason=err.code)
    deliver_outcome(replace(call, status=REJECTED, reply=reply), None, now, parameters, deps)
