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
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.replies import waiting_reply
from chalicelib.queues import NotQueued
from chalicelib.records import WAITING, Placement

LOST_MESSAGE_RECHECK_SECONDS = 60  # a wait SQS did not take: the reconciler queues it again
# A waiting call is in the reconciler's index too, from this long on: if its message is lost (or
# ends in the dead-letter queue), the reconciler hands it to the queue again or expires it.
WAITING_RECHECK_SECONDS = 1800


def may_send_now(parameters: Parameters, deps: Dependencies) -> bool:
    """Whether this call may go to Fuse alone now: one request of this second's budget."""
    if not deps.settings.dispatching:
        return True
    budget = deps.store.budget
    return budget.take(parameters.fuse_email, deps.clock(), deps.settings.fuse_queue_rate)


def shut(parameters: Parameters, deps: Dependencies) -> None:
    """Fuse is in trouble: no single queue request (and no bulk) until the breaker's time."""
    if deps.settings.dispatching:
        until = math.ceil(deps.clock()) + deps.settings.breaker_open_seconds
        deps.store.budget.shut(parameters.fuse_email, until)


def wait(
    call_id: str, reference: str | None, base_url: str, reason: str, deps: Dependencies
) -> Placement:
    """The call waits for a bulk: 202 `waiting`, its key held, its message on the dispatch
    queue (if SQS does not take it, or its message is lost, the reconciler hands it over)."""
    now = math.floor(deps.clock())
    reply = waiting_reply(base_url, call_id, reference)
    deps.store.settle(call_id, WAITING, reply, now=now, check_after=now + WAITING_RECHECK_SECONDS)
    try:
        deps.dispatch.send({"call_id": call_id})
    except NotQueued:
        deps.store.open_for_check(call_id, now + LOST_MESSAGE_RECHECK_SECONDS)
    count("CallsWaiting", reason=reason)
    logger.info("call waiting", extra={"call_id": call_id, "outcome": WAITING, "reason": reason})
    return Placement(call_id, WAITING, reply)
