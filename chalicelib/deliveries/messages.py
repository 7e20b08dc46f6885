"""What a delivery carries, pure: one message per newly stored outcome (`call.result`) or stored
rejection (`call.rejected`) of an integration with a `results_url`, and what a call shows of it.

Its `webhook-id` is the call and the outcome's status, so a second copy of one outcome (a
duplicate callback, a poll after a callback, a queue redelivery) is recognised and not sent
again, and the receiver can deduplicate across retries. The body's `data` is the same detail an
EventBridge event carries (outcome_detail): what may leave the bridge about a call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from chalicelib.config.integrations import DeliveryTarget
from chalicelib.records import REJECTED, CallRecord
from chalicelib.timestamps import iso

CALL_RESULT, CALL_REJECTED = "call.result", "call.rejected"
UNSAFE_IN_ID = re.compile(r"[^A-Za-z0-9_-]")


class DeliveryState(StrEnum):
    """A delivery's state, as the call keeps it (its `delivery.status`)."""

    PENDING = "pending"  # queued, or to be tried again
    DELIVERED = "delivered"
    FAILED = "failed"  # refused, or out of attempts: waits for a redrive


def outcome_detail(record: CallRecord, outcome: Mapping[str, Any]) -> dict[str, Any]:
    """What others are told of a call's outcome (deliveries and events alike): its ids,
    reference, campaign, status and result, never the phone number."""
    result = {**outcome, "details": dict(outcome.get("details") or {})}
    result["details"].pop("phone_number", None)
    return {
        "id": record.id,
        "reference": record.reference,
        "campaign": record.campaign,
        "fuse_call_id": record.fuse_call_id,
        "status": outcome.get("status"),
        "result": result,
    }


def webhook_id(call_id: str, status: str) -> str:
    """Stable for one outcome of one call, across retries and copies."""
    return UNSAFE_IN_ID.sub("_", f"msg_{call_id}_{status}")[:200]


def delivery_message(record: CallRecord) -> dict[str, str]:
    return {
        "call_id": record.id,
        "kind": CALL_REJECTED if record.status == REJECTED else CALL_RESULT,
        "webhook_id": webhook_id(record.id, record.status),
    }


def delivery_body(record: CallRecord, kind: str, target: DeliveryTarget, now: float) -> bytes:
    data: dict[str, Any] = outcome_detail(record, record.result or {"status": record.status})
    if kind == CALL_REJECTED:
        data["result"] = None
        data["error"] = (record.reply.body.get("error") if record.reply else None) or None
    if target.include_phone:
        data["phone"] = record.request.get("phone")
    body = {"type": kind, "timestamp": iso(int(now)), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(target: DeliveryTarget, message_id: str, body: bytes, now: float) -> dict:
    """Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret."""
    return {"Content-Type": "application/json", **target.signer.headers(message_id, body, now)}


def delivery_view(record: CallRecord, delivering: bool) -> dict[str, Any] | None:
    """What GET /calls/{id} shows: no secret, no URL."""
    if record.delivery:
        view = dict(record.delivery)
        view.pop("webhook_id", None)
        return view
    if delivering and (record.result is not None or record.status == REJECTED):
        return {
            "status": DeliveryState.PENDING.value,
            "attempts": 0,
            "last_attempt_at": None,
            "last_error": None,
        }
    return None
