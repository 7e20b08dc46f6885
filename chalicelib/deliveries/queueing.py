"""When a delivery is put on its queue (SQS): a newly stored outcome, one the reconciler finds not
yet attempted, an admin's redrive of the failed ones. Storing an outcome only keeps its delivery
and enqueues it, so Fuse's callback is answered as fast as without; attempts.py sends it.

A delivery is kept in the reconciler's index until its first attempt (QUEUE_GRACE_SECONDS): one
that SQS did not take, or that the queue lost, is handed to the queue again, whatever its kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.deliveries.messages import DeliveryState, delivery_message, new_delivery
from chalicelib.errors import DeliveriesUnavailable
from chalicelib.logs import logger
from chalicelib.queues import NotQueued
from chalicelib.records import CallRecord
from chalicelib.store.deliveries import Delivery

QUEUE_GRACE_SECONDS = 600  # a delivery not attempted by then is handed to the queue again


def deliver_outcome(
    record: CallRecord,
    outcome: Mapping[str, Any] | None,
    now: int,
    parameters: Parameters,
    deps: Dependencies,
    *,
    queue: bool = True,
) -> bool | None:
    """Keeps the delivery of a newly stored outcome (`outcome`; None: the record's refusal) and
    enqueues it (unless `queue` is false: the message at hand will send it): None when the
    call's integration has no results_url (or deliveries are off), else whether SQS took it
    now. A second copy of one outcome keeps the first."""
    integration = parameters.integrations.get(record.integration)
    target = integration.delivery_target if integration else None
    if target is None or not deps.deliveries.enabled:
        return None
    delivery = new_delivery(record, outcome, target, now)
    expires_at = record.expires_at or deps.settings.expires_at(now)
    if not deps.store.deliveries.add(delivery, expires_at, now + QUEUE_GRACE_SECONDS):
        return None  # this outcome's delivery is kept (and queued) already
    return enqueue(delivery, deps) if queue else None


def enqueue(delivery: Delivery, deps: Dependencies) -> bool:
    """Whether SQS took it; if not, the reconciler hands it to the queue again."""
    try:
        deps.deliveries.send(delivery_message(delivery))
    except NotQueued:
        return False
    return True


def requeue(delivery: Delivery, now: int, deps: Dependencies) -> bool:
    """A delivery not attempted in its time, handed to the queue again (a copy queued twice is
    recognised by its state when its turn comes). False when the queue did not take it; the
    next run tries again."""
    pending = DeliveryState.PENDING.value
    if not deps.store.deliveries.reopen(delivery, pending, now + QUEUE_GRACE_SECONDS):
        return False  # attempted meanwhile
    return enqueue(delivery, deps)


def redrive(integration: str, deps: Dependencies) -> int:
    """Every failed delivery of the integration back on the queue, each once; how many. One
    delivered since (a copy's later success) is not sent again. Its mark is cleared before it
    is queued, so that failing again at once marks it again (and one cleared but not queued is
    pending in the reconciler's index, which queues it)."""
    now = int(deps.clock())
    requeued = 0
    for call_id, marker in deps.store.deliveries.failed(integration, now):
        delivery = failed_delivery(call_id, marker, now, deps)
        failed = DeliveryState.FAILED.value
        reopened = delivery is not None and delivery.state == failed
        if reopened and deps.store.deliveries.reopen(delivery, failed, now + QUEUE_GRACE_SECONDS):
            deps.store.deliveries.forget_failed(integration, marker or call_id)
            if not enqueue(delivery, deps):
                deps.store.deliveries.fail_again(delivery)
                expires_at = delivery.expires_at or deps.settings.expires_at(now)
                deps.store.deliveries.mark_failed(delivery, now, expires_at)
                raise DeliveriesUnavailable(
                    f"the delivery queue took {requeued} of them; redrive again later"
                )
            requeued += 1
        else:  # delivered since, or gone: nothing to send
            deps.store.deliveries.forget_failed(integration, marker or call_id)
    logger.info("deliveries redriven", extra={"integration": integration, "requeued": requeued})
    return requeued


def failed_delivery(
    call_id: str, marker: str | None, now: int, deps: Dependencies
) -> Delivery | None:
    """The failed delivery a marker names. A marker from before deliveries were kept per outcome
    names its call only: its newest outcome's delivery is rebuilt from the call."""
    if marker is not None:
        return deps.store.deliveries.get(call_id, marker)
    record = deps.store.get(call_id)
    parameters = deps.parameters.get()
    integration = parameters.integrations.get(record.integration) if record else None
    if record is None or integration is None or integration.delivery_target is None:
        return None
    if (record.delivery or {}).get("status") == DeliveryState.DELIVERED.value:
        return None  # its newest outcome was delivered since it failed
    outcome = None if record.never_placed else record.result
    built = new_delivery(record, outcome, integration.delivery_target, record.updated_at or now)
    delivery = replace(built, state=DeliveryState.FAILED.value)
    deps.store.deliveries.add(delivery, record.expires_at, now + QUEUE_GRACE_SECONDS)
    return deps.store.deliveries.get(call_id, delivery.webhook_id)
