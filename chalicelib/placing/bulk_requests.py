"""One bulk_queue request of waiting calls: paced, claimed, sent, settled; split when Fuse
refuses it as a request.

Paced: each bulk takes a slot of the account's bulk budget (FUSE_BULK_RATE a second, across
every dispatcher), waiting for it while the invocation has time. Claimed: each call by a
conditional write (waiting, in no bulk), so a message seen twice or two dispatchers send
nothing twice; what fails before the request is sent frees them again. Settled by what Fuse
said: queued (with Fuse's id when its answer lists one per row), unknown when the answer was
lost (never sent again), waiting again when Fuse certainly took nothing. A 400 is split in
halves until the call Fuse refuses stands alone (rejected, delivered), unless both halves are
refused: then the request itself is what Fuse refuses, and every call of it is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from chalicelib.admission.calls import give_back, opt_out_link
from chalicelib.campaigns import Campaign
from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.deliveries.queueing import deliver_outcome
from chalicelib.errors import (
    BridgeError,
    FuseError,
    FuseOutcomeUnknown,
    FuseRejectedRequest,
    FuseUnavailable,
)
from chalicelib.fuse.bulk_form import bulk_csv
from chalicelib.fuse.callback_urls import bulk_callback_url
from chalicelib.fuse.client import FuseCredentials
from chalicelib.fuse.form import fuse_phone_number, schedule_fields
from chalicelib.logs import logger
from chalicelib.metrics import count, seconds
from chalicelib.placing.bulks import shared_settings
from chalicelib.placing.ids import new_id
from chalicelib.placing.pacing import NET_MARGIN_SECONDS, give_up_at, shut
from chalicelib.records import PENDING, QUEUED, REJECTED, UNKNOWN, CallRecord, Kind, Reply
from chalicelib.validation.fields import OPT_OUT_URL

BULK_MARGIN_SECONDS = 5  # beyond the bulk request itself
PER_CALL_SECONDS = 0.03  # a call's claim and settlement (two conditional writes)
MAX_SLOT_WAITS = 30  # pauses for a bulk slot before its calls go back to the queue
MAX_SPLIT_REQUESTS = 12  # halves sent for one refused bulk in an invocation, at most
BACKOFF_SECONDS = 60  # halves left for a later invocation come back after this
CAMPAIGN_RETRY_SECONDS = 900  # a campaign removed since its calls were accepted: fixed by then?
NOT_SENT = "not_sent"  # a bulk's status when it failed before its request went


def seconds_for_a_bulk(calls: int, deps: Dependencies) -> float:
    """The invocation time one bulk_queue request of `calls` needs, with what surrounds it."""
    return deps.settings.fuse_request_seconds + BULK_MARGIN_SECONDS + calls * PER_CALL_SECONDS


def time_for_a_bulk(calls: int, deps: Dependencies, time_left: Callable[[], float]) -> bool:
    return time_left() >= seconds_for_a_bulk(calls, deps)


def bulk_slot(
    calls: int, parameters: Parameters, deps: Dependencies, time_left: Callable[[], float]
) -> bool:
    """The next slot of the account's bulk budget, waited for (1/rate at a time) while the
    invocation has time for the bulk after the wait; False when it has not."""
    rate = deps.settings.fuse_bulk_rate
    for _ in range(MAX_SLOT_WAITS):
        if deps.store.budget.take(parameters.fuse_email, deps.clock(), rate, bulk=True):
            return True
        if time_left() - 1 / rate < seconds_for_a_bulk(calls, deps):
            return False
        deps.sleep(1 / rate)
    return False


def net_at(call: CallRecord, deps: Dependencies) -> int:
    """When the reconciler looks at a waiting call again: when it can no longer go."""
    end_at = call.request.get("end_at")
    max_wait = deps.settings.dispatch_max_wait_seconds
    return give_up_at(end_at, call.created_at, max_wait) + NET_MARGIN_SECONDS


def release_all(claimed: list[CallRecord], bulk_id: str, deps: Dependencies) -> None:
    for call in claimed:
        deps.store.dispatch.release(call.id, bulk_id, net_at(call, deps))


def never_sent(claimed: list[CallRecord], bulk_id: str, status: str, deps: Dependencies) -> None:
    """Fuse certainly has none of them: the bulk says so first (a claim left behind is then
    freed by the next dispatcher, dispatch.py), then the calls are free again. Either may fail
    with the store: what is written stands, nothing is sent twice."""
    now = math.floor(deps.clock())
    try:
        deps.store.settle(bulk_id, status, None, now=now, kind=Kind.BULK)
        release_all(claimed, bulk_id, deps)
    except BridgeError as err:
        logger.warning("bulk's calls not freed", extra={"bulk_id": bulk_id, "outcome": err.code})


@dataclass(frozen=True)
class BulkRequest:
    """What one bulk_queue request sends, made before anything is claimed or kept, so that
    nothing failing after the claims can leave them with a bulk that never went."""

    bulk_id: str
    credentials: FuseCredentials
    campaign: Campaign
    csv_file: bytes
    fields: Mapping[str, str]
    rows: int


def place_bulk(
    calls: list[CallRecord],
    planned_at: int,
    parameters: Parameters,
    deps: Dependencies,
    time_left: Callable[[], float],
) -> dict[str, int]:
    """These calls in bulk_queue requests, planned at `planned_at` (their shared window is of
    then); returns those to retry, each with the least delay before its message comes back. A
    400 is split in halves until the call Fuse refuses stands alone (rejected), the others
    going; at most MAX_SPLIT_REQUESTS an invocation, the rest waiting for the next."""
    budget = [MAX_SPLIT_REQUESTS]
    return send_or_split(calls, planned_at, parameters, deps, time_left=time_left, budget=budget)


def send_or_split(
    calls: list[CallRecord],
    planned_at: int,
    parameters: Parameters,
    deps: Dependencies,
    *,
    time_left: Callable[[], float],
    budget: list[int],
) -> dict[str, int]:
    retry, refused = send_bulk(calls, planned_at, parameters, deps, time_left)
    if refused is None:
        return retry
    if len(calls) == 1:
        reject(calls[0], refused, parameters, deps)
        return retry
    half = len(calls) // 2
    for part in (calls[:half], calls[half:]):
        if budget[0] <= 0:  # halved enough for now: the next invocation goes on
            retry.update({c.id: BACKOFF_SECONDS for c in part})
            continue
        budget[0] -= 1
        retry.update(
            send_or_split(part, planned_at, parameters, deps, time_left=time_left, budget=budget)
        )
    return retry


def send_bulk(
    calls: list[CallRecord],
    planned_at: int,
    parameters: Parameters,
    deps: Dependencies,
    time_left: Callable[[], float],
) -> tuple[dict[str, int], FuseRejectedRequest | None]:
    """One bulk_queue request of these calls (those still free to claim): those to retry, and
    Fuse's refusal of the request as such (400), the calls then waiting again, unclaimed."""
    if not time_for_a_bulk(len(calls), deps, time_left) or not bulk_slot(
        len(calls), parameters, deps, time_left
    ):
        return {c.id: 0 for c in calls}, None  # untouched: the next invocation sends them
    now = math.floor(deps.clock())
    if (shut_until := deps.store.budget.shut_until(parameters.fuse_email)) > now:
        return {c.id: shut_until - now for c in calls}, None  # Fuse failed meanwhile
    request = bulk_request(calls, planned_at, parameters, deps)
    if request is None:
        return {c.id: CAMPAIGN_RETRY_SECONDS for c in calls}, None
    until = now + math.ceil(deps.settings.in_flight_seconds)
    claimed: list[CallRecord] = []
    try:
        for call in calls:
            if deps.store.dispatch.claim(call.id, request.bulk_id, until):
                claimed.append(call)
        if not claimed:
            return {}, None
        if len(claimed) < len(calls):  # some left the wait meanwhile: the rows are others
            request = bulk_request(claimed, planned_at, parameters, deps, request.bulk_id)
        record = bulk_record(claimed, request.bulk_id, now, until)
        deps.store.create(record, deps.settings.expires_at(now), now)
    except Exception:  # nothing went to Fuse: the calls are free again
        never_sent(claimed, request.bulk_id, NOT_SENT, deps)
        raise
    if deps.clock() + deps.settings.fuse_request_seconds > until:
        # Claimed so slowly (DynamoDB throttling) that they would lapse before Fuse answered,
        # and another dispatcher could take them: not sent now.
        never_sent(claimed, request.bulk_id, NOT_SENT, deps)
        return {c.id: 0 for c in claimed}, None
    return sent_to_fuse(claimed, request, now, parameters, deps)


def bulk_request(
    calls: list[CallRecord],
    planned_at: int,
    parameters: Parameters,
    deps: Dependencies,
    bulk_id: str | None = None,
) -> BulkRequest | None:
    """The request, whole (None when the calls' campaign is gone or half-written since they
    were accepted); ConfigurationIncomplete when Fuse's credentials are missing."""
    first = calls[0]
    campaign = parameters.campaigns.get(str(first.campaign))
    if campaign is None or campaign.problem:
        logger.error("bulk's campaign is not configured", extra={"campaign": first.campaign})
        return None
    bulk_id = bulk_id or new_id()
    base_url = deps.settings.public_base_url
    rows = [
        (
            fuse_phone_number(c.request["phone"], c.request["caller_id"], c.request.get("dtmf")),
            {
                **(c.request.get("variables") or {}),
                OPT_OUT_URL: opt_out_link(base_url, c.id, str(c.request["phone"]), parameters),
            },
        )
        for c in calls
    ]
    url = bulk_callback_url(base_url, bulk_id, parameters.callback_secret)
    return BulkRequest(
        bulk_id=bulk_id,
        credentials=parameters.fuse_credentials,
        campaign=campaign,
        csv_file=bulk_csv(rows),
        fields=schedule_fields(shared_settings(first, planned_at), url),
        rows=len(rows),
    )


def sent_to_fuse(
    claimed: list[CallRecord],
    request: BulkRequest,
    now: int,
    parameters: Parameters,
    deps: Dependencies,
) -> tuple[dict[str, int], FuseRejectedRequest | None]:
    """The request itself, and what Fuse's answer makes of each claimed call."""
    bulk_id = request.bulk_id
    log = {"bulk_id": bulk_id, "campaign": claimed[0].campaign, "calls": len(claimed)}
    try:
        sent = deps.fuse.bulk_queue(
            request.credentials,
            request.campaign,
            csv_file=request.csv_file,
            fields=dict(request.fields),
            rows=request.rows,
        )
    except FuseOutcomeUnknown as err:  # Fuse may have them all: never sent again
        shut(parameters, deps)
        deps.store.settle(bulk_id, UNKNOWN, None, now=now, kind=Kind.BULK)
        for call in claimed:
            deps.store.dispatch.settle(call.id, bulk_id, UNKNOWN, now)
        count("BulksSent", outcome=UNKNOWN)
        logger.warning("bulk outcome unknown", extra={**log, "outcome": err.code})
        return {}, None
    except FuseError as err:  # Fuse certainly took nothing: the calls wait again
        never_sent(claimed, bulk_id, err.code, deps)
        count("BulksSent", outcome=err.code)
        logger.warning("bulk not queued", extra={**log, "outcome": err.code})
        if isinstance(err, FuseRejectedRequest):
            return {}, err
        if isinstance(err, FuseUnavailable):
            shut(parameters, deps)
        return {c.id: 0 for c in claimed}, None
    # The bulk first: a dispatcher dying among the calls' settlements leaves claims a later
    # one settles by the bulk's status (dispatch.py), as queued, with their Fuse ids.
    fuse_ids = (
        dict(zip((c.id for c in claimed), sent.call_ids, strict=True)) if sent.call_ids else {}
    )
    deps.store.dispatch.bulk_queued(bulk_id, fuse_ids, sent.body, now)
    for call in claimed:
        settle_queued(call, bulk_id, fuse_ids.get(call.id), now, deps)
    count("BulksSent", outcome=QUEUED)
    count("CallsDispatched", len(claimed))
    seconds("DispatchLag", now - min(c.created_at for c in claimed))
    logger.info(
        "bulk queued", extra={**log, "outcome": QUEUED, "fuse_call_ids": bool(sent.call_ids)}
    )
    return {}, None


def settle_queued(
    call: CallRecord, bulk_id: str, fuse_call_id: str | None, now: int, deps: Dependencies
) -> None:
    """Queued in its bulk; with its Fuse id, in the reconciler's index for a result that never
    comes (without one, only its callback settles it, as a list's contact's)."""
    poll_at = shared_settings(call, now).check_after(now, deps.settings.reconcile_after_seconds)
    deps.store.dispatch.settle(
        call.id,
        bulk_id,
        QUEUED,
        now,
        fuse_call_id=fuse_call_id,
        check_after=poll_at if fuse_call_id else None,
    )


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
        integration=claimed[0].integration,
        members={str(c.request["phone"]): c.id for c in claimed},
    )


def reject(call: CallRecord, err: FuseError, parameters: Parameters, deps: Dependencies) -> None:
    """A call Fuse refused as a request (400): settled `rejected` with Fuse's words, never sent
    again, and delivered (call.rejected). Its claim is no bulk's: one left by a crash between
    claim and settlement is freed again by the next dispatcher."""
    now = math.floor(deps.clock())
    bulk_id = new_id()
    if not deps.store.dispatch.claim(call.id, bulk_id, now + 60):
        return
    reply = Reply(err.status, {**err.body(), "id": call.id, "status": REJECTED})
    deps.store.dispatch.settle(call.id, bulk_id, REJECTED, now, reply=reply)
    count("CallsRejected", reason=err.code)
    give_back(call.id, call.request.get("phone"), parameters, deps.store)
    deliver_outcome(replace(call, status=REJECTED, reply=reply), None, now, parameters, deps)
