"""The only module that speaks HTTP to Plum Fuse.

One connection pool per warm container (chalicelib/http_client.py) keeps the TLS connection to
Fuse alive between calls. Each failure is classified by one question: could Fuse have queued the
call? If the request never left (refused connection, DNS, connect timeout) or Fuse said no, a
retry is safe. If it left and no readable answer came back, the outcome is unknown and the bridge
must not retry.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chalicelib.config.parameters import Campaign, FuseCredentials
from chalicelib.errors import (
    NOT_RETRIED,
    FuseCallNotFound,
    FuseCredentialsRejected,
    FuseDeploymentNotFound,
    FuseError,
    FuseOutcomeUnknown,
    FuseRejectedRequest,
    FuseUnavailable,
    FuseUnexpectedResponse,
)
from chalicelib.http.client import Answer, HttpClient, NoAnswer, NotSent, basic_auth
from chalicelib.http.deadlines import DeadlinePassed
from chalicelib.logs import logger

MAX_ERROR_MESSAGE = 300
# Runs of 7+ digits (with the separators numbers are written with) are masked out of Fuse's
# messages before a caller or a log sees them: Fuse may echo the phone number it refused.
DIGIT_RUN = re.compile(r"\+?\d[\d\s().-]{5,}\d")


@dataclass(frozen=True)
class FuseAnswer:
    """A status read as it came: the reconciler reads it with the readers a result callback
    uses (JSON or XML), so the client keeps its body and type rather than parse it twice."""

    body: bytes
    content_type: str


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


def redact_digits(text: str) -> str:
    return DIGIT_RUN.sub(lambda m: m.group()[:2] + "…" + m.group()[-2:], text)


def fuse_error_message(response: Answer, hide: tuple[str, ...] = ()) -> str:
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
    return redact_digits(message[:MAX_ERROR_MESSAGE])


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


class FuseClient:
    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = HttpClient(timeout_seconds)  # the whole request ends by it
        self._deadline = timeout_seconds

    def _deployment_url(self, campaign: Campaign, action: str) -> str:
        return f"{self._base_url}/apps/{campaign.application_id}/{campaign.deployment_id}/{action}"

    def queue_call(
        self,
        credentials: FuseCredentials,
        campaign: Campaign,
        fields: Mapping[str, str],
        on_late: Callable[[QueuedCall], None] | None = None,
    ) -> QueuedCall:
        """POSTs one call as multipart/form-data; raises a FuseError for every other outcome.

        Past its deadline it raises FuseOutcomeUnknown; if Fuse's answer then comes after all,
        `on_late` gets the call it queued."""
        hide = (credentials.developer_key,)

        def late(response: Answer) -> None:
            if on_late is not None:
                on_late(read_queue_response(response, hide))

        url = self._deployment_url(campaign, "queue")
        response = self._send("POST", url, credentials, files=fields, late=late)
        return read_queue_response(response, hide)

    def bulk_queue(
        self,
        credentials: FuseCredentials,
        campaign: Campaign,
        *,
        csv_file: bytes,
        fields: Mapping[str, str],
        rows: int,
    ) -> QueuedList:
        """One bulk_queue request for the whole list (Plum warns that looping /queue can make
        every call fail): the CSV as a file part, the shared settings as fields."""
        parts = {**fields, "csv": ("contacts.csv", csv_file, "text/csv")}
        url = self._deployment_url(campaign, "bulk_queue")
        response = self._send("POST", url, credentials, files=parts)
        if not 200 <= response.status < 300:
            raise fuse_error(response, hide=(credentials.developer_key,))
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return QueuedList(body=response.text[:100_000], call_ids=find_call_ids(body, rows))

    def cancel_pending(self, credentials: FuseCredentials, campaign: Campaign) -> None:
        """DELETE .../cancel: Fuse cancels every pending call of the deployment (202, no body)."""
        url = self._deployment_url(campaign, "cancel")
        response = self._send("DELETE", url, credentials, repeatable=True)
        if not 200 <= response.status < 300:
            raise fuse_error(response, hide=(credentials.developer_key,))

    def call_status(self, credentials: FuseCredentials, fuse_call_id: str) -> FuseAnswer:
        """GET /outbound/{call_id}: Fuse's view of a call, raw as it came (the caller reads it)."""
        url = f"{self._base_url}/outbound/{quote(fuse_call_id, safe='')}"
        response = self._send("GET", url, credentials, repeatable=True)
        if response.status == 200:
            content_type = response.header("content-type", "application/json")
            return FuseAnswer(body=response.body, content_type=content_type)
        if response.status == 404:
            raise FuseCallNotFound(f"Fuse knows no call {fuse_call_id}")
        raise fuse_error(response, hide=(credentials.developer_key,))

    def _send(
        self,
        method: str,
        url: str,
        credentials: FuseCredentials,
        *,
        files: Mapping[str, Any] | None = None,
        repeatable: bool = False,
        late: Callable[[Answer], None] | None = None,
    ) -> Answer:
        """Every request to Fuse. A transport failure of a `repeatable` request (a status read,
        a cancel: no harm sent twice) is simply "unavailable"; of one that may queue a call, it
        is classified by whether the request can have reached Fuse."""
        started = time.perf_counter()
        headers = {
            "Accept": "application/json",
            **basic_auth(credentials.email, credentials.developer_key),
        }
        try:
            response = self._http.request(method, url, headers, fields=files, late=late)
        except DeadlinePassed:
            logger.warning("fuse request passed its deadline", extra={"method": method})
            if repeatable:
                raise FuseUnavailable("Fuse did not answer in time; retry later") from None
            raise FuseOutcomeUnknown(
                f"Fuse did not answer within {self._deadline:g} s; {NOT_RETRIED}"
            ) from None
        except (NotSent, NoAnswer) as err:
            logger.warning("fuse request failed", extra={"method": method, "error_type": str(err)})
            if repeatable:
                raise FuseUnavailable("Fuse could not be reached; retry later") from None
            if isinstance(err, NotSent):
                raise FuseUnavailable(
                    "Fuse could not be reached; nothing was queued, retry later"
                ) from None
            raise FuseOutcomeUnknown(
                f"no whole answer came from Fuse ({err}); {NOT_RETRIED}"
            ) from None
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        logger.info(
            "fuse answered",
            extra={"method": method, "fuse_status": response.status, "fuse_ms": elapsed_ms},
        )
        return response


def read_queue_response(response: Answer, hide: tuple[str, ...] = ()) -> QueuedCall:
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


def fuse_error(response: Answer, hide: tuple[str, ...] = ()) -> FuseError:
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
