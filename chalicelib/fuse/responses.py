"""Reading what Fuse answers, pure: the call ids in a queue or bulk_queue answer (undocumented
past "returns a unique call_id", so looked for where they may be), and the bridge's error for
every answer that is not a success, in Fuse's own words with any number masked.

Each error says whether Fuse may have queued the call (errors.py): a gateway's 502 or 504 may
hide a queued call; a 5xx of Fuse's own, or 429, queued nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import (
    NOT_RETRIED,
    FuseCredentialsRejected,
    FuseDeploymentNotFound,
    FuseError,
    FuseOutcomeUnknown,
    FuseRejectedRequest,
    FuseUnavailable,
    FuseUnexpectedResponse,
)
from chalicelib.http.client import HttpResponse
from chalicelib.logs import mask_digit_runs

MAX_ERROR_MESSAGE = 300


@dataclass(frozen=True)
class QueuedList:
    """Fuse's answer to bulk_queue, kept as it came (its layout is undocumented), and the call
    ids in CSV order when it listed one per row."""

    body: str
    call_ids: tuple[str, ...] | None


@dataclass(frozen=True)
class QueuedCall:
    """Fuse took the call: its id is what a result callback and a status read name it by."""

    fuse_call_id: str


def fuse_error_message(response: HttpResponse, hide: tuple[str, ...] = ()) -> str:
    """Fuse's own words: `error` from its JSON (or XML) body, cut short, numbers masked, and any
    of `hide` (our credentials, should Fuse ever echo them) removed."""
    text = response.text or ""
    message = ""
    try:
        body = json.loads(text)
        if isinstance(body, dict) and body.get("error"):
            message = str(body["error"])
    except ValueError:
        if match := re.search(r"<error>(.*?)</error>", text, re.DOTALL):
            message = match.group(1)
    message = " ".join((message or text or f"HTTP {response.status}").split())
    for secret in hide:
        message = message.replace(secret, "<redacted>")
    # Fuse may echo the phone number it refused: masked before a caller or a log sees it.
    return mask_digit_runs(message[:MAX_ERROR_MESSAGE])


def find_call_id(body: object) -> str | None:
    """Fuse's queue answer is undocumented past "returns a unique call_id": look where it may be."""
    if isinstance(body, dict):
        for container in (body, body.get("result"), body.get("data"), body.get("call")):
            if isinstance(container, dict):
                value = container.get("call_id")
                if (
                    isinstance(value, int | str)
                    and not isinstance(value, bool)
                    and str(value).strip()
                ):
                    return str(value).strip().strip("'\"")
    return None


def find_call_ids(body: object, rows: int) -> tuple[str, ...] | None:
    """One call id per CSV row, if the bulk answer lists them (as strings, numbers or objects
    with a call_id) under a likely name; None otherwise, and the list works without them."""
    if not isinstance(body, dict):
        return None
    for container in (body, body.get("result"), body.get("data")):
        if not isinstance(container, dict):
            continue
        for name in ("call_ids", "calls", "call_id"):
            items = container.get(name)
            if isinstance(items, list) and len(items) == rows:
                ids = [find_call_id(i) if isinstance(i, dict) else i for i in items]
                if all(isinstance(i, int | str) and not isinstance(i, bool) for i in ids):
                    return tuple(str(i) for i in ids)
    return None


def call_id_from_link(link: str | None) -> str | None:
    """The Link header points at `/api/outbound/{call_id}`, the call's status URL."""
    if link and (match := re.search(r"/outbound/([^/>;?\s]+)", link)):
        return match.group(1)
    return None


def read_queue_response(response: HttpResponse, hide: tuple[str, ...] = ()) -> QueuedCall:
    status = response.status
    if 200 <= status < 300:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        call_id = find_call_id(body) or call_id_from_link(response.header("link") or None)
        if call_id is None:
            raise FuseOutcomeUnknown(
                f"Fuse accepted the request but its answer could not be read; {NOT_RETRIED}"
            )
        return QueuedCall(fuse_call_id=call_id)
    raise fuse_error(response, hide)


def fuse_error(response: HttpResponse, hide: tuple[str, ...] = ()) -> FuseError:
    """The bridge's error for a Fuse answer that is not a success."""
    status = response.status
    message = fuse_error_message(response, hide)
    if status == 400:
        return FuseRejectedRequest(f"Fuse rejected the call: {message}")
    if status in (401, 403):
        return FuseCredentialsRejected(
            "Fuse rejected the bridge's credentials (check the fuse/email and fuse/developer_key "
            f"parameters): {message}"
        )
    if status in (404, 409):
        return FuseDeploymentNotFound(
            "Fuse has no such application/deployment (check the campaign's application_id and "
            f"deployment_id parameters): {message}"
        )
    if status in (502, 504):
        # A gateway in front of Fuse gave up waiting: Fuse itself may have queued the call.
        return FuseOutcomeUnknown(
            f"a gateway in front of Fuse answered HTTP {status}; {NOT_RETRIED}"
        )
    if status >= 500 or status == 429:
        return FuseUnavailable(
            f"Fuse is unavailable (HTTP {status}); nothing was queued, retry later"
        )
    return FuseUnexpectedResponse(f"Fuse answered HTTP {status}: {message}")
