"""How the bridge's values are written as DynamoDB items, and read back. Only the store uses it.

One item per call (`pk` = call id, `sk` = "call") or per list (`sk` = "batch"; the word is the
first schema's and stays, as do the `batch_id`/`batch_index` attributes and the `by_batch`
index, so existing tables keep working). Each callback (a body Fuse sent about a call) is an item
beside it (`sk` = "result#<digest>"); a list's reply, too large for one item, is kept in parts
beside the list (`sk` = "reply#0000"...).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.records import DEFAULT_INTEGRATION, Callback, CallRecord, Kind, Reply

SORT_KEYS = {Kind.CALL: "call", Kind.LIST: "batch", Kind.BULK: "bulk"}
KINDS = {sort_key: kind for kind, sort_key in SORT_KEYS.items()}
CALLBACK_PREFIX = "result#"
REPLY_PREFIX = "reply#"
DELIVERY_PREFIX = "delivery#"
OPEN = "open"  # the one partition of the open_calls index: the reconciler reads it by check_after
IN_OPEN_CALLS = ("open_shard", "check_after")  # what puts an item in the open_calls index


def key(record_id: str, kind: Kind = Kind.CALL) -> dict[str, Any]:
    return {"pk": {"S": record_id}, "sk": {"S": SORT_KEYS[kind]}}


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def reply_to_json(reply: Reply) -> str:
    return json.dumps({"status": reply.status, "body": reply.body, "headers": dict(reply.headers)})


def reply_from_json(text: str) -> Reply:
    data = json.loads(text)
    return Reply(status=data["status"], body=data["body"], headers=data.get("headers", {}))


def record_to_item(record: CallRecord, expires_at: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        **key(record.id, record.kind),
        "status": {"S": record.status},
        "request_hash": {"S": record.request_hash},
        "request": {"S": compact_json(record.request)},
        "created_at": {"N": str(record.created_at)},
        "updated_at": {"N": str(record.created_at)},
        "lock_until": {"N": str(record.lock_until)},
        "expires_at": {"N": str(expires_at)},
    }
    optional_text = {
        "reference": record.reference,
        "campaign": record.campaign,
        "reply": reply_to_json(record.reply) if record.reply is not None else None,
        "fuse_call_id": record.fuse_call_id,
        "batch_id": record.list_id,
        "integration": record.integration,
        "bulk_id": record.bulk_id,
        "members": compact_json(record.members) if record.members is not None else None,
    }
    item.update({name: {"S": value} for name, value in optional_text.items() if value is not None})
    if record.list_id is not None:
        item["batch_index"] = {"N": str(record.list_index or 0)}
    if record.check_after is not None:
        item["open_shard"] = {"S": OPEN}
        item["check_after"] = {"N": str(record.check_after)}
    return item


def record_from_item(item: dict[str, Any]) -> CallRecord:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    def number(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    reply, result = text("reply"), text("result")
    return CallRecord(
        id=item["pk"]["S"],
        kind=KINDS.get(item["sk"]["S"], Kind.CALL),
        status=item["status"]["S"],
        request_hash=text("request_hash") or "",
        created_at=number("created_at"),
        updated_at=number("updated_at"),
        lock_until=number("lock_until"),
        request=json.loads(text("request") or "{}"),
        reference=text("reference"),
        campaign=text("campaign"),
        fuse_call_id=text("fuse_call_id"),
        reply=reply_from_json(reply) if reply else None,
        result=json.loads(result) if result else None,
        needs_publish=item.get("needs_publish", {}).get("BOOL", False),
        list_id=text("batch_id"),
        list_index=number("batch_index") if "batch_index" in item else None,
        check_after=number("check_after") if "check_after" in item else None,
        integration=text("integration") or DEFAULT_INTEGRATION,  # records from before them
        delivery=json.loads(text("delivery") or "null"),
        expires_at=number("expires_at"),
        bulk_id=text("bulk_id"),
        members=json.loads(text("members") or "null"),
    )


def callback_to_item(callback: Callback, expires_at: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": callback.call_id},
        "sk": {"S": CALLBACK_PREFIX + callback.digest},
        "source": {"S": callback.source},
        "received_at": {"N": str(callback.received_at)},
        "content_type": {"S": callback.content_type},
        "body": {"B": callback.body},
        "body_size": {"N": str(callback.body_size)},
        "truncated": {"BOOL": callback.truncated},
        "expires_at": {"N": str(expires_at)},
    }
    if callback.parsed is not None:
        item["parsed"] = {"S": compact_json(callback.parsed)}
    if callback.parse_error is not None:
        item["parse_error"] = {"S": callback.parse_error}
    return item


def is_delivery(item: dict[str, Any]) -> bool:
    return item["sk"]["S"].startswith(DELIVERY_PREFIX)


def reply_part_items(
    owner_id: str, reply: Reply, part_bytes: int, expires_at: int
) -> list[dict[str, Any]]:
    """A large answer cut into items under DynamoDB's 400 KB, in order."""
    text = reply_to_json(reply).encode()
    parts = [text[i : i + part_bytes] for i in range(0, len(text), part_bytes)]
    return [
        {
            "pk": {"S": owner_id},
            "sk": {"S": f"{REPLY_PREFIX}{number:04d}"},
            "part": {"B": part},
            "expires_at": {"N": str(expires_at)},
        }
        for number, part in enumerate(parts)
    ]


def reply_from_parts(items: list[dict[str, Any]]) -> Reply | None:
    if not items:
        return None
    return reply_from_json(b"".join(i["part"]["B"] for i in items).decode())


def attribute_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}
