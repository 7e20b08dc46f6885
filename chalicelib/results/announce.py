"""Telling others of a newly stored outcome: its delivery kept and queued to the call's
integration (when it has a results_url) and its event published (when RESULTS_EVENT_BUS is set).
When either fails, the reconciler does it again (a delivery stays in its index until its first
attempt; a call whose delivery could not be kept, or whose event was not taken, is marked); the
outcome itself is stored, and Fuse is answered that it was.
"""

from __future__ import annotations

from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.deliveries.messages import outcome_detail
from chalicelib.deliveries.queueing import deliver_outcome
from chalicelib.errors import BridgeError
from chalicelib.logs import logger
from chalicelib.records import CallRecord
from chalicelib.results.publisher import ResultNotPublished


def announce_outcome(
    call_id: str,
    outcome: dict[str, Any],
    now: int,
    parameters: Parameters,
    deps: Dependencies,
    *,
    record: CallRecord | None = None,
) -> bool:
    """Queues the outcome's delivery and publishes its event; True when an event went out.

    `record` gives the event its reference, campaign and Fuse id; without one, the call is read
    (only when there is an event or a delivery to make)."""
    delivering = deps.deliveries.enabled and bool(parameters.delivering)
    if not deps.publisher.enabled and not delivering:
        return False
    record = record or deps.store.get(call_id)
    if record is None:  # it was stored a moment ago; only its expiry could have removed it
        return False
    if delivering:
        try:
            deliver_outcome(record, outcome, now, parameters, deps)
        except BridgeError:  # the delivery could not be kept: the reconciler announces again
            logger.warning("outcome's delivery not kept", extra={"call_id": call_id})
            try:
                deps.store.mark_publish_pending(call_id, now)
            except BridgeError:  # the store is down: the outcome is kept, its delivery is not
                logger.error("outcome's delivery not kept nor marked", extra={"call_id": call_id})
            return False
    if not deps.publisher.enabled:
        return False
    try:
        deps.publisher.publish(call_id, outcome_detail(record, outcome))
    except ResultNotPublished:
        deps.store.mark_publish_pending(call_id, now)
        return False
    return True
