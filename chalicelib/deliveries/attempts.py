"""Each queued delivery attempted: one signed POST to the integration's receiver, and its
retries.

A 2xx is delivered; a timeout, connection error, 408, 429 or 5xx is retried with exponential
backoff and jitter for more than 24 hours (SQS holds the message between attempts); any other
answer (a 4xx, a redirect) fails at once and is kept for a redrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.deliveries.messages import DeliveryState, signed_headers, webhook_id
from chalicelib.deliveries.queueing import deliver_outcome
from chalicelib.deliveries.sender import ReceiverResponse
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.queues import JITTER, backoff
from chalicelib.records import DONE, RETRY
from chalicelib.store.deliveries import Delivery
from chalicelib.timestamps import iso

SKIPPED = "skipped"  # an attempt not made: the call is gone, or this outcome was delivered
RETRYABLE = {408, 429}
MAX_DELAY_SECONDS = 3600


@dataclass(frozen=True)
class DeliveryOutcome:
    message_id: str
    decision: str  # done | retry
    status: str  # a DeliveryState, or skipped

    @property
    def must_retry(self) -> bool:
        return self.decision == RETRY


def retry_delay(attempt: int, base: float, retry_after: int | None = None) -> int:
    """Seconds before attempt `attempt + 1`: base * 2^(attempt-1), at most an hour, jittered;
    at least what the receiver's Retry-After asks."""
    return backoff(attempt, base, MAX_DELAY_SECONDS, retry_after or 0)


def least_retry_span(base: float, attempts: int) -> float:
    """The shortest time the retries of `attempts` attempts can span (jitter at its lowest)."""
    return sum(min(base * 2 ** (n - 1), MAX_DELAY_SECONDS) * JITTER[0] for n in range(1, attempts))


def classify(result: ReceiverResponse) -> DeliveryState:
    """Delivered; pending (to be tried again); or failed (refused, by the receiver or by where
    it is)."""
    if result.refused:
        return DeliveryState.FAILED
    if result.status is not None and 200 <= result.status < 300:
        return DeliveryState.DELIVERED
    if result.status is None or result.status in RETRYABLE or result.status >= 500:
        return DeliveryState.PENDING
    return DeliveryState.FAILED


def deliver(
    message: dict[str, Any],
    message_id: str,
    receipt_handle: str,
    attempt: int,
    deps: Dependencies,
) -> DeliveryOutcome:
    """One queued delivery, attempt number `attempt` (SQS's receive count): its kept body,
    signed now, POSTed to its integration's receiver."""
    now = int(deps.clock())
    delivery = queued_delivery(message, now, deps)
    parameters = deps.parameters.get()
    integration = parameters.integrations.get(delivery.integration) if delivery else None
    target = integration.delivery_target if integration else None
    if delivery is None:  # gone (expired with its call)
        logger.info("delivery dropped", extra={"call_id": message.get("call_id") or None})
        return DeliveryOutcome(message_id, DONE, SKIPPED)
    if delivery.state == DeliveryState.DELIVERED:
        return DeliveryOutcome(message_id, DONE, SKIPPED)  # a copy of one delivered outcome
    if target is None:  # its integration delivers no more: failed, for a redrive once it does
        unsent = replace(
            delivery,
            state=DeliveryState.FAILED.value,
            last_attempt_at=now,
            last_error="its integration has no results_url now",
        )
        record_attempt(delivery, unsent, now, deps)
        logger.warning("delivery not sent", extra={"call_id": delivery.call_id})
        return DeliveryOutcome(message_id, DONE, DeliveryState.FAILED)
    headers = signed_headers(target, delivery.webhook_id, delivery.body, now)
    result = deps.sender.post(target.url, delivery.body, headers)
    status = classify(result)
    last_attempt = attempt >= deps.settings.delivery_max_attempts
    if status == DeliveryState.PENDING and last_attempt:
        status = DeliveryState.FAILED  # the message now goes to the dead-letter queue
    attempted = replace(
        delivery,
        state=status.value,
        attempts=attempt,
        last_attempt_at=now,
        last_error=result.error,
    )
    record_attempt(delivery, attempted, now, deps)
    count("Deliveries", result=status.value)
    logger.info(
        "result delivery",
        extra={
            "call_id": delivery.call_id,
            "outcome": status.value,
            "receiver_status": result.status,
        },
    )
    if status == DeliveryState.FAILED:
        if not last_attempt:
            return DeliveryOutcome(message_id, DONE, status)  # refused: deleted, not retried
        deps.deliveries.retry_in(receipt_handle, 0)  # back at once: SQS moves it to the DLQ
        return DeliveryOutcome(message_id, RETRY, status)
    if status == DeliveryState.PENDING:
        deps.deliveries.retry_in(
            receipt_handle,
            retry_delay(attempt, deps.settings.delivery_retry_base_seconds, result.retry_after),
        )
        return DeliveryOutcome(message_id, RETRY, status)
    return DeliveryOutcome(message_id, DONE, status)


def queued_delivery(message: dict[str, Any], now: int, deps: Dependencies) -> Delivery | None:
    """The delivery a queue message names. A message from before deliveries were kept per
    outcome (it names a `kind`) is its call's newest outcome, kept now."""
    call_id = str(message.get("call_id", ""))
    wanted = str(message.get("webhook_id", ""))
    if not call_id or not wanted:
        return None
    delivery = deps.store.deliveries.get(call_id, wanted)
    if delivery is not None or "kind" not in message:
        return delivery
    record = deps.store.get(call_id)
    if record is None or webhook_id(record.id, record.status) != wanted:
        return None
    outcome = None if record.never_placed else record.result
    deliver_outcome(record, outcome, now, deps.parameters.get(), deps, queue=False)  # this one
    return deps.store.deliveries.get(call_id, wanted)


def record_attempt(before: Delivery, after: Delivery, now: int, deps: Dependencies) -> None:
    """The attempt on the delivery's item and, as its newest outcome's, on the call; a failure
    marked for a redrive, and a redriven one's mark cleared by its success. Nothing, when a
    copy of its message delivered it meanwhile: delivered stays delivered."""
    if not deps.store.deliveries.record_attempt(after):
        return
    view = {
        "webhook_id": after.webhook_id,
        "status": after.state,
        "attempts": after.attempts,
        "last_attempt_at": iso(now),
        "last_error": after.last_error,
    }
    deps.store.deliveries.show_on_call(after.call_id, view, after.occurred_at)
    if after.state == DeliveryState.FAILED:
        deps.store.deliveries.mark_failed(
            after, now, after.expires_at or deps.settings.expires_at(now)
        )
    elif after.state == DeliveryState.DELIVERED and before.state == DeliveryState.FAILED:
        deps.store.deliveries.forget_failed(after.integration, after.webhook_id)


def deliver_queued(
    sqs_record: dict[str, Any], deps: Dependencies, time_left_ms: Callable[[], int]
) -> DeliveryOutcome:
    """One SQS record of the delivery queue, decided alone, whatever it holds or raises."""
    message_id = str(sqs_record.get("messageId", ""))
    if time_left_ms() / 1000 < deps.settings.delivery_request_seconds:
        return DeliveryOutcome(message_id, RETRY, DeliveryState.PENDING)  # untouched: no time
    try:
        message = json.loads(sqs_record.get("body") or "")
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict):  # only the bridge writes these: a bug, or a stranger's
        logger.error("delivery message unreadable: dropped", extra={"message_id": message_id})
        return DeliveryOutcome(message_id, DONE, SKIPPED)
    attempt = int(str((sqs_record.get("attributes") or {}).get("ApproximateReceiveCount", "1")))
    try:
        return deliver(message, message_id, str(sqs_record.get("receiptHandle", "")), attempt, deps)
    except Exception:
        # AWS in trouble, or a bug met by this message alone: it comes back on its own.
        logger.exception("delivery failed unexpectedly", extra={"message_id": message_id})
        return DeliveryOutcome(message_id, RETRY, DeliveryState.PENDING)
