"""The answers placing gives a caller: 202 queued, 504 unknown, and the links in them.

Kept whole with each record, so that a replay with the same idempotency key gets the very same
answer.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import BridgeError
from chalicelib.records import QUEUED, UNKNOWN, Reply


def call_links(call_id: str) -> dict[str, str]:
    return {"self": f"/calls/{call_id}"}


def list_links(list_id: str) -> dict[str, str]:
    return {"self": f"/batches/{list_id}"}


def queued_reply(call_id: str, fuse_call_id: str, reference: str | None) -> Reply:
    body = {
        "id": call_id,
        "status": QUEUED,
        "fuse_call_id": fuse_call_id,
        "reference": reference,
        "links": call_links(call_id),
    }
    return Reply(202, body, {"Location": f"/calls/{call_id}"})


def unknown_reply(call_id: str, err: BridgeError) -> Reply:
    """The 504 keeps the call's id, so the caller can follow it until the callback settles it."""
    body = {**err.body(), "id": call_id, "status": UNKNOWN, "links": call_links(call_id)}
    return Reply(err.status, body, {"Location": f"/calls/{call_id}", **err.headers})


def list_reply(list_id: str, body: dict[str, Any], unknown: BridgeError | None) -> Reply:
    """202 with the list's calls, or, when Fuse's answer was lost, its 504 with the same body."""
    headers = {"Location": f"/batches/{list_id}"}
    if unknown is not None:
        return Reply(unknown.status, {**unknown.body(), **body}, headers)
    return Reply(202, body, headers)
