"""The replies placing gives a caller: 202 queued, 504 unknown, and the links in them.

Kept whole with each record, so that a replay with the same idempotency key gets the very same
reply. Links and `Location` are absolute, from the public base URL (with the API's stage):
a bare `/calls/{id}` would resolve outside the stage's path.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import BridgeError
from chalicelib.records import QUEUED, UNKNOWN, Reply


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
