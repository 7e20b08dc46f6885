"""A single call: POST /calls, and the calls of SQS messages and EventBridge events (events.py),
after authentication. Its door reads the JSON body and its key, then takes the one idempotent
path (idempotency.place_once); `dial` is what that path asks of Fuse: one `queue` request.
"""

from __future__ import annotations

import math

from chalicelib.admission.calls import admit, opt_out_link, schedule_call
from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import Caller
from chalicelib.config.parameters import Parameters
from chalicelib.errors import BridgeError, FuseError, FuseOutcomeUnknown, FuseUnavailable
from chalicelib.fuse.callback_urls import callback_url
from chalicelib.fuse.form import fuse_form_fields
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.idempotency import (
    DEFAULT_CALLER,
    counted_as_rejected,
    key_of,
    place_once,
    release,
    release_call,
)
from chalicelib.placing.pacing import may_send_now, shut, wait
from chalicelib.placing.replies import queued_reply, unknown_reply
from chalicelib.records import QUEUED, UNKNOWN, CallRecord, Kind, Placement
from chalicelib.validation.call_request import CallRequest, parse_call_request
from chalicelib.validation.json_body import read_json
from chalicelib.validation.phones import mask_phone

MAX_BODY_BYTES = 64 * 1024


@counted_as_rejected
def place_call(
    raw_body: bytes | None,
    key_header: str | None,
    public_base_url: str,
    parameters: Parameters,
    deps: Dependencies,
    *,
    default_key: str | None = None,
    caller: Caller = DEFAULT_CALLER,
    alone: bool = True,
) -> Placement:
    """The whole of POST /calls after authentication (and of an event's call, whose key
    defaults to its message's id); raises BridgeError for every refusal. A call of a batch
    (`alone` false: an SQS batch of several) waits for a bulk with the others."""
    body = read_json(raw_body, MAX_BODY_BYTES)
    return place_once(
        Kind.CALL,
        body,
        key_of(key_header, body, default_key),
        parse=parse_call_request,
        schedule=schedule_call,
        send=dial if alone else dial_in_bulk,
        base_url=public_base_url,
        parameters=parameters,
        deps=deps,
        caller=caller,
    )


def dial(
    record: CallRecord,
    request: CallRequest,
    base_url: str,
    parameters: Parameters,
    deps: Dependencies,
) -> Placement:
    """Asks Fuse for the call whose key is held, when the budget allows (else it waits for a
    bulk: pacing.py); its callback URL is on `base_url`."""
    call_id = record.id
    admitted(record, request, parameters, deps)
    if not may_send_now(parameters, deps):
        return wait(call_id, request, base_url, deps, parameters, reason="budget")
    return dial_now(record, request, base_url, parameters, deps)


def dial_in_bulk(
    record: CallRecord,
    request: CallRequest,
    base_url: str,
    parameters: Parameters,
    deps: Dependencies,
) -> Placement:
    """A call of a batch: it waits for the dispatcher, which sends the batch's calls in bulks
    (one per group of shared settings), not one single queue each."""
    admitted(record, request, parameters, deps)
    if not deps.settings.dispatching:
        return dial_now(record, request, base_url, parameters, deps)
    return wait(record.id, request, base_url, deps, parameters, reason="batch")


def admitted(
    record: CallRecord, request: CallRequest, parameters: Parameters, deps: Dependencies
) -> None:
    """The number checked against the do-not-call list and counted against its cap, its key
    held; a call consent refuses (or that could not be counted) frees its key."""
    try:
        admit(
            record.id,
            request.phone,
            request.settings,
            parameters=parameters,
            settings=deps.settings,
            store=deps.store,
            now=deps.clock(),
        )
    except BridgeError:
        release(record.id, Kind.CALL, deps)
        raise


def dial_now(
    record: CallRecord,
    request: CallRequest,
    base_url: str,
    parameters: Parameters,
    deps: Dependencies,
) -> Placement:
    """The single queue request, its budget taken."""
    call_id = record.id
    url = callback_url(base_url, call_id, parameters.callback_secret)
    opt_out = opt_out_link(base_url, call_id, request.phone, parameters)
    log = {
        "call_id": call_id,
        "reference": request.reference,
        "campaign": request.campaign,
        "phone": mask_phone(request.phone),
    }
    now = math.floor(deps.clock())
    try:
        queued = deps.fuse.queue_call(
            parameters.fuse_credentials,
            parameters.campaigns[request.campaign],
            fuse_form_fields(request, url, opt_out),
            on_late=lambda late: learnt_late(call_id, late.fuse_call_id, request, deps),
        )
    except FuseOutcomeUnknown as err:
        count("FuseErrors", code=err.code)
        shut(parameters, deps)
        reply = unknown_reply(base_url, call_id, err)
        deps.store.settle(call_id, UNKNOWN, reply, now=now)
        logger.warning("call outcome unknown", extra={**log, "outcome": err.code})
        return Placement(call_id, UNKNOWN, reply)
    except FuseError as err:
        # Fuse certainly queued nothing. Busy: the call waits for a bulk, if calls can wait;
        # else (or refused for good) the key is freed, so a corrected or later retry may queue.
        logger.warning("call not queued", extra={**log, "outcome": err.code})
        count("FuseErrors", code=err.code)
        if isinstance(err, FuseUnavailable) and deps.settings.dispatching:
            shut(parameters, deps)
            return wait(call_id, request, base_url, deps, parameters, reason="fuse_busy")
        release_call(call_id, request.phone, parameters, deps)
        raise
    except Exception:
        # A bug between sending and reading: the call may exist, so the key stays held (pending,
        # then unknown on replay) rather than freed for a second dial.
        logger.exception("call outcome unknown after an unexpected error", extra=log)
        raise
    reply = queued_reply(base_url, call_id, queued.fuse_call_id, request.reference)
    count("CallsQueued")
    try:
        deps.store.settle(
            call_id,
            QUEUED,
            reply,
            now=now,
            fuse_call_id=queued.fuse_call_id,
            check_after=request.settings.check_after(now, deps.settings.reconcile_after_seconds),
        )
    except BridgeError:
        # The call is queued: say so. A replay will find it pending, then unknown; never redialled.
        logger.exception("call queued but its record could not be updated", extra=log)
    logger.info(
        "call queued", extra={**log, "outcome": "queued", "fuse_call_id": queued.fuse_call_id}
    )
    return Placement(call_id, QUEUED, reply)


def learnt_late(call_id: str, fuse_call_id: str, request: CallRequest, deps: Dependencies) -> None:
    """Fuse answered after the deadline: the call stays `unknown` (that was the answer given),
    but now has Fuse's id and is opened to the reconciler, which asks Fuse how it ended."""
    now = math.floor(deps.clock())
    check_after = request.settings.check_after(now, deps.settings.reconcile_after_seconds)
    deps.store.settle(
        call_id, UNKNOWN, None, now=now, fuse_call_id=fuse_call_id, check_after=check_after
    )
    logger.warning(
        "fuse answered after the deadline", extra={"call_id": call_id, "fuse_call_id": fuse_call_id}
    )
