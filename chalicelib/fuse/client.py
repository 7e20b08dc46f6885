"""The only module that speaks HTTP to Plum Fuse.

One connection pool per warm container (chalicelib/http/client.py) keeps the TLS connection to
Fuse alive between calls. Each failure is classified by one question: could Fuse have queued the
call? If the request never left (refused connection, DNS, connect timeout) or Fuse said no, a
retry is safe. If it left and no readable answer came back, the outcome is unknown and the bridge
must not retry. What Fuse answers is read in responses.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chalicelib.campaigns import Campaign
from chalicelib.errors import (
    NOT_RETRIED,
    FuseCallNotFound,
    FuseOutcomeUnknown,
    FuseUnavailable,
)
from chalicelib.fuse.responses import (
    QueuedCall,
    QueuedList,
    find_call_ids,
    fuse_error,
    read_queue_response,
)
from chalicelib.http.client import HttpClient, HttpResponse, NoAnswer, NotSent, basic_auth
from chalicelib.http.deadlines import DeadlinePassed
from chalicelib.logs import logger


@dataclass(frozen=True, repr=False)
class FuseCredentials:
    """The Basic auth of every Fuse request; never printed."""

    email: str
    developer_key: str

    def __repr__(self) -> str:
        return "FuseCredentials(<redacted>)"


@dataclass(frozen=True)
class StatusRead:
    """Fuse's answer to a status read, as it came: the reconciler reads it with the readers a
    result callback uses (JSON or XML), so the client keeps its body and type rather than parse
    it twice."""

    body: bytes
    content_type: str


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

        def late(response: HttpResponse) -> None:
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

    def call_status(self, credentials: FuseCredentials, fuse_call_id: str) -> StatusRead:
        """GET /outbound/{call_id}: Fuse's view of a call, raw as it came (the caller reads it)."""
        url = f"{self._base_url}/outbound/{quote(fuse_call_id, safe='')}"
        response = self._send("GET", url, credentials, repeatable=True)
        if response.status == 200:
            content_type = response.header("content-type", "application/json")
            return StatusRead(body=response.body, content_type=content_type)
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
        late: Callable[[HttpResponse], None] | None = None,
    ) -> HttpResponse:
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
