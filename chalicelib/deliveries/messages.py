"""What a delivery carries, pure: one per outcome of a call of an integration with a
`results_url`, a Fuse result (`call.result`) or the bridge's own refusal of an event's request
(`call.rejected`) or expiry while it waited (`call.expired`), and what a call shows of it.

Each outcome's body is built once, when the outcome is stored, with the moment it happened as
its `timestamp`: every attempt and every redrive sends those very bytes under the same
`webhook-id` (the call and the outcome's status), so a copy of one outcome (a duplicate callback,
a poll after a callback, a queue redelivery) is recognised, and the receiver can deduplicate.
What leaves the bridge about a result is an allowlist (outcome_detail), the same for deliveries
and EventBridge events: whatever else Fuse's result holds (a phone number under any name) stays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from chalicelib.config.integrations import DeliveryTarget
from chalicelib.records import EXPIRED, CallRecord
from chalicelib.store.deliveries import Delivery
from chalicelib.timestamps import iso

CALL_RESULT, CALL_REJECTED, CALL_EXPIRED = "call.result", "call.rejected", "call.expired"
UNSAFE_IN_ID = re.compile(r"[^A-Za-z0-9_-]")
# What of a result is told to others: its own words, and Fuse's documented times.
RESULT_FIELDS = ("status", "attempts", "max_attempts", "duration", "received_at", "source")
DETAIL_FIELDS = ("queued_timestamp", "start_timestamp", "end_timestamp", "reattempt_wait")


class DeliveryState(StrEnum):
    """A delivery's state (its item's, and what the call shows of its newest outcome's)."""

    PENDING = "pending"  # queued, or to be tried again
    DELIVERED = "delivered"
    FAILED = "failed"  # refused, or out of attempts: waits for a redrive


def shared_result(outcome: Mapping[str, Any]) -> dict[str, Any]:
    """The allowlisted part of a stored outcome: nothing a receiver was not promised."""
    result: dict[str, Any] = {name: outcome.get(name) for name in RESULT_FIELDS}
    events = outcome.get("events") if isinstance(outcome.get("events"), list) else []
    result["events"] = [
        {"event": e.get("event"), "at": e.get("at")} for e in events if isinstance(e, Mapping)
    ]
    details = outcome.get("details") if isinstance(outcome.get("details"), Mapping) else {}
    result["details"] = {name: details[name] for name in DETAIL_FIELDS if name in details}
    return result


def outcome_detail(record: CallRecord, outcome: Mapping[str, Any] | None) -> dict[str, Any]:
    """What others are told of a call's outcome (deliveries and events alike): its ids,
    reference, campaign, status and allowlisted result, never the phone number."""
    return {
        "id": record.id,
        "reference": record.reference,
        "campaign": record.campaign,
        "fuse_call_id": record.fuse_call_id,
        "status": (outcome or {}).get("status", record.status),
        "result": shared_result(outcome) if outcome is not None else None,
    }


def webhook_id(call_id: str, status: str) -> str:
    """Stable for one outcome of one call, across retries and copies."""
    return UNSAFE_IN_ID.sub("_", f"msg_{call_id}_{status}")[:200]


def new_delivery(
    record: CallRecord,
    outcome: Mapping[str, Any] | None,
    target: DeliveryTarget,
    occurred_at: int,
) -> Delivery:
    """The delivery of one outcome: a Fuse result (`outcome`), or, without one, the bridge's
    refusal kept on the record (its reply's error)."""
    data = outcome_detail(record, outcome)
    kind = CALL_RESULT
    if outcome is None:  # never placed: refused, or expired while it waited
        kind = CALL_EXPIRED if record.status == EXPIRED else CALL_REJECTED
        data["error"] = (record.reply.body.get("error") if record.reply else None) or None
    if target.include_phone:
        data["phone"] = record.request.get("phone")
    body = {"type": kind, "timestamp": iso(occurred_at), "data": data}
    return Delivery(
        call_id=record.id,
        webhook_id=webhook_id(record.id, str(data["status"])),
        kind=kind,
        integration=record.integration,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        occurred_at=occurred_at,
        expires_at=record.expires_at,
    )


def delivery_message(delivery: Delivery) -> dict[str, str]:
    """What the queue holds: which delivery (its body is kept beside the call)."""
    return {"call_id": delivery.call_id, "webhook_id": delivery.webhook_id}


def signed_headers(target: DeliveryTarget, message_id: str, body: bytes, now: float) -> dict:
    """Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret."""
    return {"Content-Type": "application/json", **target.signer.headers(message_id, body, now)}


def delivery_view(record: CallRecord, delivering: bool) -> dict[str, Any] | None:
    """What GET /calls/{id} shows of its newest outcome's delivery: no secret, no URL. An
    outcome newer than the last attempt shown is pending."""
    shown = dict(record.delivery or {})
    shown_id = shown.pop("webhook_id", None)
    has_outcome = record.result is not None or record.never_placed
    if delivering and has_outcome and shown_id != webhook_id(record.id, record.status):
        return {
            "status": DeliveryState.PENDING.value,
            "attempts": 0,
            "last_attempt_at": None,
            "last_error": None,
        }
    return shown or None
