"""The replies placing gives a caller: 202 queued, 202 waiting, 504 unknown, and the links in
them; and, for a call that waited, its state now (a replay of it answers that).

Kept whole with each record, so that a replay with the same idempotency key gets the very same
reply. Links and `Location` are absolute, from the public base URL (with the API's stage):
a bare `/calls/{id}` would resolve outside the stage's path.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import BridgeError
from chalicelib.records import QUEUED, UNKNOWN, WAITING, CallRecord, Reply


def call_url(base_url: str, call_id: str) -> str:
    return f"{base_url}/calls/{call_id}"


def call_links(base_url: str, call_id: str) -> dict[str, str]:
    return {"self": call_url(base_url, call_id)}


def list_links(base_url: str, list_id: str) -> dict[str, str]:
    return {"self": f"{base_url}/batches/{list_id}"}


def queued_reply(base_url: str, call_id: str, fuse_call_id: str, reference: str | None) -> Reply:
    body = {
        "id": call_id,
        "status": QUEUED,
        "fuse_call_id": fuse_call_id,
        "reference": reference,
        "links": call_links(base_url, call_id),
    }
    return Reply(202, body, {"Location": call_url(base_url, call_id)})


def waiting_reply(base_url: str, call_id: str, reference: str | None) -> Reply:
    """Accepted and held: it goes to Fuse in a bulk soon (GET /calls/{id} follows it)."""
    body = {
        "id": call_id,
        "status": WAITING,
        "reference": reference,
        "links": call_links(base_url, call_id),
    }
    return Reply(202, body, {"Location": call_url(base_url, call_id)})


def state_reply(record: CallRecord, base_url: str) -> Reply:
    """What a replay of a call that waited is told: where it is now (waiting, queued in its
    bulk, unknown, its outcome, or expired with its reason), always 202: it was accepted."""
    body: dict[str, Any] = {
        "id": record.id,
        "status": record.status,
        "reference": record.reference,
        "links": call_links(base_url, record.id),
    }
    if record.fuse_call_id is not None or record.bulk_id is not None:
        body |= {"fuse_call_id": record.fuse_call_id, "bulk_id": record.bulk_id}
    if record.never_placed and record.reply is not None:
        body["error"] = record.reply.body.get("error")
    return Reply(202, body, {"Location": call_url(base_url, record.id)})


def unknown_reply(base_url: str, call_id: str, err: BridgeError) -> Reply:
    """The 504 keeps the call's id, so the caller can follow it until the callback settles it."""
    links = call_links(base_url, call_id)
    body = {**err.body(), "id": call_id, "status": UNKNOWN, "links": links}
    return Reply(err.status, body, {"Location": links["self"], **err.headers})


def list_reply(
    base_url: str, list_id: str, body: dict[str, Any], unknown: BridgeError | None
) -> Reply:
    """202 with the list's calls, or, when Fuse's answer was lost, its 504 with the same body."""
    headers = {"Location": list_links(base_url, list_id)["self"]}
    if unknown is not None:
        return Reply(unknown.status, {**unknown.body(), **body}, headers)
    return Reply(202, body, headers)
