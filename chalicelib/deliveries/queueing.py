"""When a delivery is put on its queue (SQS): a newly stored outcome, one the reconciler finds
not yet queued, an admin's redrive of the failed ones. Storing an outcome only enqueues its
delivery, so Fuse's callback is answered as fast as without; attempts.py sends it.
"""

from __future__ import annotations

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.deliveries.messages import DeliveryState, delivery_message
from chalicelib.deliveries.queue import DeliveryNotQueued
from chalicelib.errors import DeliveriesUnavailable
from chalicelib.records import CallRecord


def enqueue(record: CallRecord, parameters: Parameters, deps: Dependencies) -> bool | None:
    """Sends the delivery of the record's outcome to the queue: None when its integration has
    no results_url (or deliveries are off), else whether SQS took it."""
    integration = parameters.integrations.get(record.integration)
    if integration is None or integration.delivery_target is None or not deps.deliveries.enabled:
        return None
    try:
        deps.deliveries.send(delivery_message(record))
    except DeliveryNotQueued:
        return False
    return True


def queue_delivery(
    record: CallRecord, parameters: Parameters, deps: Dependencies, now: int
) -> bool:
    """Enqueues the delivery of a newly stored outcome; when SQS does not take it, the call is
    left for the reconciler, which queues it again."""
    queued = enqueue(record, parameters, deps)
    if queued is False:
        deps.store.mark_publish_pending(record.id, now)
    return bool(queued)


def redrive(integration: str, deps: Dependencies) -> int:
    """Every failed delivery of the integration back on the queue; how many."""
    requeued = 0
    for call_id in deps.store.markers.failed_deliveries(integration):
        record = deps.store.get(call_id)
        if record is not None:
            try:
                deps.deliveries.send(delivery_message(record))
            except DeliveryNotQueued:
                raise DeliveriesUnavailable(
                    f"the delivery queue took {requeued} of them; redrive again later"
                ) from None
            view = {**(record.delivery or {}), "status": DeliveryState.PENDING.value}
            deps.store.record_delivery(call_id, view)
            requeued += 1
        deps.store.markers.forget_failed_delivery(integration, call_id)
    return requeued
