"""Each queued delivery attempted: one signed POST to the integration's receiver, and its
retries.

A 2xx is delivered; a timeout, connection error, 408, 429 or 5xx is retried with exponential
backoff and jitter for more than 24 hours (SQS holds the message between attempts); any other
answer (a 4xx, a redirect) fails at once and is kept for a redrive.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.deliveries.messages import CALL_RESULT, DeliveryState, delivery_body, signed_headers
from chalicelib.deliveries.sender import ReceiverResponse
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.records import RETRY
from chalicelib.timestamps import iso

DONE = "done"  # a delivery message's decision: deleted from the queue
SKIPPED = "skipped"  # an attempt not made: the call is gone, or this outcome was delivered
RETRYABLE = {408, 429}
MAX_DELAY_SECONDS = 3600
JITTER = (0.8, 1.2)


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
    delay = min(base * 2 ** (attempt - 1), MAX_DELAY_SECONDS) * random.uniform(*JITTER)  # noqa: S311 - jitter, not a secret
    return math.ceil(max(delay, retry_after or 0, 1))


def least_retry_span(base: float, attempts: int) -> float:
    """The shortest time the retries of `attempts` attempts can span (jitter at its lowest)."""
    return sum(min(base * 2 ** (n - 1), MAX_DELAY_SECONDS) * JITTER[0] for n in range(1, attempts))


def classify(result: ReceiverResponse) -> DeliveryState:
    """Delivered; pending (to be tried again); or failed (refused)."""
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
    """One queued delivery, attempt number `attempt` (SQS's receive count)."""
    now = deps.clock()
    call_id = str(message.get("call_id", ""))
    wanted = str(message.get("webhook_id", ""))
    record = deps.store.get(call_id) if call_id else None
    parameters = deps.parameters.get()
    integration = parameters.integrations.get(record.integration) if record else None
    target = integration.delivery_target if integration else None
    if record is None or target is None:  # gone (expired), or deliveries turned off since
        logger.info("delivery dropped", extra={"call_id": call_id or None})
        return DeliveryOutcome(message_id, DONE, SKIPPED)
    earlier = dict(record.delivery or {})
    if earlier.get("webhook_id") == wanted and earlier.get("status") == DeliveryState.DELIVERED:
        return DeliveryOutcome(message_id, DONE, SKIPPED)  # a copy of one delivered outcome
    kind = str(message.get("kind", CALL_RESULT))
    body = delivery_body(record, kind, target, now)
    result = deps.sender.post(target.url, body, signed_headers(target, wanted, body, now))
    status = classify(result)
    last_attempt = attempt >= deps.settings.delivery_max_attempts
    if status == DeliveryState.PENDING and last_attempt:
        status = DeliveryState.FAILED  # the message now goes to the dead-letter queue
    view = {
        "webhook_id": wanted,
        "status": status.value,
        "attempts": attempt,
        "last_attempt_at": iso(int(now)),
        "last_error": result.error,
    }
    deps.store.record_delivery(call_id, view)
    count("Deliveries", result=view["status"])
    logger.info(
        "result delivery",
        extra={"call_id": call_id, "outcome": view["status"], "receiver_status": result.status},
    )
    if status == DeliveryState.FAILED:
        deps.store.markers.mark_delivery_failed(record.integration, call_id, int(now))
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
