"""Results delivered back to each integration: what is sent, how it is signed, when it is tried
again, and what the call shows of it.

One message per newly stored outcome (`call.result`) or stored rejection (`call.rejected`) of an
integration with a `results_url`. Its `webhook-id` is the call and the outcome's status, so a
second copy of one outcome (a duplicate callback, a poll after a callback, a queue redelivery)
is recognised and not sent again, and the receiver can deduplicate across retries. A 2xx is
delivered; a timeout, connection error, 408, 429 or 5xx is retried with exponential backoff and
jitter for more than 24 hours; any other answer (a 4xx, a redirect) fails at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import ResultTarget
from chalicelib.config.parameters import Secrets
from chalicelib.deliveries.queue import DeliveryNotQueued
from chalicelib.deliveries.sender import SendResult
from chalicelib.errors import DeliveriesUnavailable
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.records import REJECTED, CallRecord
from chalicelib.results.events import event_detail
from chalicelib.timestamps import iso

RESULT, REJECTION = "call.result", "call.rejected"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
RETRY, DONE = "retry", "done"
RETRYABLE = {408, 429}
MAX_DELAY_SECONDS = 3600
JITTER = (0.8, 1.2)
UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
START_MARGIN_SECONDS = 3  # beyond one POST: the AWS writes around it


@dataclass(frozen=True)
class DeliveryOutcome:
    message_id: str
    decision: str  # done | retry
    status: str  # delivered | failed | pending | skipped


def retry_delay(attempt: int, base: float, retry_after: int | None = None) -> int:
    """Seconds before attempt `attempt + 1`: base * 2^(attempt-1), at most an hour, jittered;
    at least what the receiver's Retry-After asks."""
    delay = min(base * 2 ** (attempt - 1), MAX_DELAY_SECONDS) * random.uniform(*JITTER)  # noqa: S311 - jitter, not a secret
    return math.ceil(max(delay, retry_after or 0, 1))


def least_retry_span(base: float, attempts: int) -> float:
    """The shortest time the retries of `attempts` attempts can span (jitter at its lowest)."""
    return sum(min(base * 2 ** (n - 1), MAX_DELAY_SECONDS) * JITTER[0] for n in range(1, attempts))


def webhook_id(call_id: str, status: str) -> str:
    """Stable for one outcome of one call, across retries and copies."""
    return UNSAFE.sub("_", f"msg_{call_id}_{status}")[:200]


def delivery_message(record: CallRecord) -> dict[str, str]:
    return {
        "call_id": record.id,
        "kind": REJECTION if record.status == REJECTED else RESULT,
        "webhook_id": webhook_id(record.id, record.status),
    }


def enqueue(record: CallRecord, secrets: Secrets, deps: Dependencies) -> bool | None:
    """Sends the delivery of the record's outcome to the queue: None when its integration has
    no results_url (or deliveries are off), else whether SQS took it."""
    integration = secrets.integrations.get(record.integration)
    if integration is None or integration.results is None or not deps.deliveries.enabled:
        return None
    try:
        deps.deliveries.send(delivery_message(record))
    except DeliveryNotQueued:
        return False
    return True


def queue_delivery(record: CallRecord, secrets: Secrets, deps: Dependencies, now: int) -> bool:
    """Enqueues the delivery of a newly stored outcome; when SQS does not take it, the call is
    left for the reconciler, which queues it again."""
    queued = enqueue(record, secrets, deps)
    if queued is False:
        deps.store.mark_publish_pending(record.id, now)
    return bool(queued)


def delivery_body(record: CallRecord, kind: str, target: ResultTarget, now: float) -> bytes:
    data: dict[str, Any] = event_detail(record, record.result or {"status": record.status})
    if kind == REJECTION:
        data["result"] = None
        data["error"] = (record.reply.body.get("error") if record.reply else None) or None
    if target.include_phone:
        data["phone"] = record.request.get("phone")
    body = {"type": kind, "timestamp": iso(int(now)), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(message_id: str, body: bytes, secrets: tuple[str, ...], now: float) -> dict:
    """Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret."""
    timestamp = str(int(now))
    signed = f"{message_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": " ".join(signatures),
    }


def classify(result: SendResult) -> str:
    if result.status is not None and 200 <= result.status < 300:
        return DELIVERED
    if result.status is None or result.status in RETRYABLE or result.status >= 500:
        return RETRY
    return FAILED


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
    secrets = deps.secrets.get()
    integration = secrets.integrations.get(record.integration) if record else None
    target = integration.results if integration else None
    if record is None or target is None:  # gone (expired), or deliveries turned off since
        logger.info("delivery dropped", extra={"call_id": call_id or None})
        return DeliveryOutcome(message_id, DONE, "skipped")
    earlier = dict(record.delivery or {})
    if earlier.get("webhook_id") == wanted and earlier.get("status") == DELIVERED:
        return DeliveryOutcome(message_id, DONE, "skipped")  # a copy of one delivered outcome
    kind = str(message.get("kind", RESULT))
    body = delivery_body(record, kind, target, now)
    result = deps.sender.post(target.url, body, signed_headers(wanted, body, target.secrets, now))
    status = classify(result)
    last_attempt = attempt >= deps.settings.delivery_max_attempts
    if status == RETRY and last_attempt:
        status = FAILED  # the message now goes to the dead-letter queue
    view = {
        "webhook_id": wanted,
        "status": PENDING if status == RETRY else status,
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
    if status == FAILED:
        deps.store.markers.mark_delivery_failed(record.integration, call_id, int(now))
        if not last_attempt:
            return DeliveryOutcome(message_id, DONE, FAILED)  # refused: deleted, not retried
        deps.deliveries.retry_in(receipt_handle, 0)  # back at once: SQS moves it to the DLQ
        return DeliveryOutcome(message_id, RETRY, FAILED)
    if status == RETRY:
        deps.deliveries.retry_in(
            receipt_handle,
            retry_delay(attempt, deps.settings.delivery_retry_base_seconds, result.retry_after),
        )
        return DeliveryOutcome(message_id, RETRY, PENDING)
    return DeliveryOutcome(message_id, DONE, DELIVERED)


def delivery_view(record: CallRecord, delivering: bool) -> dict[str, Any] | None:
    """What GET /calls/{id} shows: no secret, no URL."""
    if record.delivery:
        view = dict(record.delivery)
        view.pop("webhook_id", None)
        return view
    if delivering and (record.result is not None or record.status == REJECTED):
        return {"status": PENDING, "attempts": 0, "last_attempt_at": None, "last_error": None}
    return None


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
            deps.store.record_delivery(call_id, {**(record.delivery or {}), "status": PENDING})
            requeued += 1
        deps.store.markers.forget_failed_delivery(integration, call_id)
    return requeued


def deliver_queued(
    sqs_record: dict[str, Any], deps: Dependencies, time_left_ms: Callable[[], int]
) -> DeliveryOutcome:
    """One SQS record of the delivery queue, decided alone, whatever it holds or raises."""
    message_id = str(sqs_record.get("messageId", ""))
    if time_left_ms() / 1000 < deps.settings.delivery_timeout_seconds + START_MARGIN_SECONDS:
        return DeliveryOutcome(message_id, RETRY, PENDING)  # untouched: no time to try it
    try:
        message = json.loads(sqs_record.get("body") or "")
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict):  # only the bridge writes these: a bug, or a stranger's
        logger.error("delivery message unreadable: dropped", extra={"message_id": message_id})
        return DeliveryOutcome(message_id, DONE, "skipped")
    attempt = int(str((sqs_record.get("attributes") or {}).get("ApproximateReceiveCount", "1")))
    try:
        return deliver(message, message_id, str(sqs_record.get("receiptHandle", "")), attempt, deps)
    except Exception:
        # AWS in trouble, or a bug met by this message alone: it comes back on its own.
        logger.exception("delivery failed unexpectedly", extra={"message_id": message_id})
        return DeliveryOutcome(message_id, RETRY, PENDING)
