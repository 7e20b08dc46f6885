"""Pacing the single `queue` request: Plum warns that looping it "can cause DDoS, which will
result in all calls failing". With DISPATCH_QUEUE set, a call goes to Fuse alone only within the
Fuse account's budget (FUSE_QUEUE_RATE a second, held in DynamoDB for every container and way
in) and while its breaker is closed; else it waits, accepted and held under its key, for the
dispatcher to send it in a bulk_queue request (dispatch.py). A Fuse that answers 5xx or times
out shuts the budget for FUSE_BREAKER_SECONDS, and the call it refused waits too: no caller is
answered 5xx for Fuse being busy while its call can wait.
"""

from __future__ import annotations

import math

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.errors import BridgeError
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.idempotency import release_call
from chalicelib.placing.replies import waiting_reply
from chalicelib.queues import NotQueued
from chalicelib.records import WAITING, Placement
from chalicelib.validation.call_request import CallRequest

LOST_MESSAGE_RECHECK_SECONDS = 60  # a wait SQS did not take: the reconciler queues it again
MIN_RING_SECONDS = 60  # a call whose end_at is closer than this can no longer ring
NET_MARGIN_SECONDS = 60


def may_send_now(parameters: Parameters, deps: Dependencies) -> bool:
    """Whether this call may go to Fuse alone now: one slot of the account's budget. A budget
    that cannot be read (DynamoDB throttling its one item in a burst) is no slot: the call
    waits, rather than risk the flood the budget is there to stop."""
    if not deps.settings.dispatching:
        return True
    try:
        return deps.store.budget.take(
            parameters.fuse_email, deps.clock(), deps.settings.fuse_queue_rate
        )
    except BridgeError as err:
        logger.warning("budget not read: the call waits", extra={"outcome": err.code})
        return False


def shut(parameters: Parameters, deps: Dependencies) -> None:
    """Fuse is in trouble: no single queue request (and no bulk) until the breaker's time. A
    breaker that cannot be written is left as it is: the budget still paces."""
    if not deps.settings.dispatching:
        return
    until = math.ceil(deps.clock()) + deps.settings.breaker_open_seconds
    try:
        deps.store.budget.shut(parameters.fuse_email, until)
    except BridgeError as err:
        logger.warning("breaker not shut", extra={"outcome": err.code})


def give_up_at(end_at: int | None, created_at: int, max_wait: int) -> int:
    """When a waiting call can no longer go: MIN_RING_SECONDS before its end_at, or when it
    has waited DISPATCH_MAX_WAIT_SECONDS."""
    latest = created_at + max_wait
    return latest if end_at is None else min(latest, end_at - MIN_RING_SECONDS)


def wait(
    call_id: str,
    request: CallRequest,
    base_url: str,
    deps: Dependencies,
    parameters: Parameters,
    *,
    reason: str,
) -> Placement:
    """The call waits for a bulk: 202 `waiting`, its key held, its message on the dispatch
    queue. It is in the reconciler's index from when it can no longer go on (its message lost
    or dead-lettered: the reconciler expires it), or a minute on if SQS did not take the
    message (the reconciler hands it over). If the wait cannot be recorded, the key is freed
    (nothing went to Fuse) and the caller may retry."""
    now = math.floor(deps.clock())
    reply = waiting_reply(base_url, call_id, request.reference)
    max_wait = deps.settings.dispatch_max_wait_seconds
    net = give_up_at(request.settings.end_at, now, max_wait) + NET_MARGIN_SECONDS
    try:
        deps.store.settle(call_id, WAITING, reply, now=now, check_after=net)
    except BridgeError:
        release_call(call_id, request.phone, parameters, deps)
        raise
    try:
        deps.dispatch.send({"call_id": call_id})
    except NotQueued:
        try:
            deps.store.open_for_check(call_id, now + LOST_MESSAGE_RECHECK_SECONDS)
        except BridgeError:  # neither SQS nor DynamoDB: it waits for the reconciler's net
            logger.error("waiting call not handed over", extra={"call_id": call_id})
    count("CallsWaiting", reason=reason)
    logger.info("call waiting", extra={"call_id": call_id, "outcome": WAITING, "reason": reason})
    return Placement(call_id, WAITING, reply)
