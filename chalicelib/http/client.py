"""The bridge's outbound HTTP, for the Fuse client and the delivery sender alone.

urllib3, not requests: botocore is built on it, so the Lambda runtime already ships it (AWS warns
that a zip bringing its own copy can break the runtime's SDK when the runtime is updated) and a
cold start has already imported it for the AWS clients. requests would add itself, certifi,
idna and charset-normalizer: about 0.5 MB of the zip and 30 ms of every cold start, for a
session and a multipart encoder urllib3 has too. Only what urllib3 1.26 and 2.x share is used:
the runtime's version is AWS's choice.

Every request is sent once (no retries: whether it may go again is the caller's decision, and a
phone call must never be placed twice), follows no redirect, reads at most MAX_RESPONSE_BYTES of
answer, and ends by a total deadline (http/deadlines.py: socket timeouts bound each read only,
and a server sending a byte a second never trips them). Failures are told apart by the one
question that matters for a retry: was a connection ever made?
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError

from chalicelib.http.deadlines import within

if TYPE_CHECKING:  # the type only: a cold POST /calls does not load the receivers' checks
    from chalicelib.http.addresses import Receiver

CONNECT_TIMEOUT_SECONDS = 3.05  # just past the 3 s TCP retransmission, as requests advises
MAX_RESPONSE_BYTES = 1_048_576  # what Fuse and receivers send back is small; a flood is cut
USER_AGENT = "fuse-bridge"


class NotSent(Exception):
    """No connection was made (refused, no such host, connect timeout): nothing was sent."""


class NoAnswer(Exception):
    """The request may have reached the server, but no whole answer came back."""


@dataclass(frozen=True)
class HttpResponse:
    """Whatever came back, read whole and bounded: a value, so no connection or stream
    outlives the request that opened it."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def text(self) -> str:
        """The body as text: the charset the answer names (if Python knows it), else UTF-8;
        bytes that do not decode are replaced, never raised."""
        charset = "utf-8"
        for part in self.header("content-type").split(";")[1:]:
            name, _, value = part.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return json.loads(self.text)


class HttpClient:
    """One pool of kept-alive connections per host, per warm container; every request over
    within `timeout_seconds`, connecting included. With `receivers`, each URL is first checked
    and resolved by it (http/addresses.py), and the request goes to the address it checked."""

    def __init__(
        self, timeout_seconds: float, receivers: Callable[[str], Receiver] | None = None
    ) -> None:
        self._deadline = timeout_seconds
        self._receivers = receivers
        connect = min(CONNECT_TIMEOUT_SECONDS, timeout_seconds)
        self._pool = urllib3.PoolManager(
            maxsize=4,  # the one request in flight, and room for abandoned stragglers
            retries=False,
            timeout=urllib3.Timeout(connect=connect, read=timeout_seconds),
        )

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        fields: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        late: Callable[[HttpResponse], None] | None = None,
    ) -> HttpResponse:
        """One request. `fields` are sent as multipart/form-data (a value, or a (filename, data,
        content type) file); `body` as it is. Raises NotSent, NoAnswer, or DeadlinePassed; an
        answer that comes after the deadline after all goes to `late`."""
        send = functools.partial(self._send, method, url, headers, fields, body)
        return within(self._deadline, send, late)

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        fields: Mapping[str, Any] | None,
        body: bytes | None,
    ) -> HttpResponse:
        sent = {"User-Agent": USER_AGENT, **headers}
        try:
            if fields is not None:
                response = self._pool.request_encode_body(
                    method,
                    url,
                    fields=dict(fields),
                    headers=sent,
                    encode_multipart=True,
                    redirect=False,
                    preload_content=False,
                )
            elif self._receivers is not None:
                response = self._send_checked(method, self._receivers(url), sent, body)
            else:
                response = self._pool.urlopen(
                    method, url, body=body, headers=sent, redirect=False, preload_content=False
                )
            try:
                data = response.read(MAX_RESPONSE_BYTES + 1)
                if len(data) > MAX_RESPONSE_BYTES:
                    data = data[:MAX_RESPONSE_BYTES]
                    response.close()  # the rest is never read: this connection is not reused
            finally:
                response.release_conn()
        except ConnectTimeoutError as err:  # urllib3's NewConnectionError is one too
            raise NotSent(type(err).__name__) from err
        except (HTTPError, OSError) as err:
            raise NoAnswer(type(err).__name__) from err
        names = {name.lower(): value for name, value in response.headers.items()}
        return HttpResponse(status=response.status, body=data, headers=names)

    def _send_checked(
        self, method: str, to: Receiver, headers: Mapping[str, str], body: bytes | None
    ) -> Any:
        """To an address checked, presenting the receiver's name (TLS SNI and certificate
        check, Host), so what was checked is where it goes. An address that takes no
        connection (nothing was sent) gives way to the next; the deadline bounds them all."""
        tls = {"server_hostname": to.host, "assert_hostname": to.host}
        name = f"[{to.host}]" if ":" in to.host else to.host
        default = 443 if to.scheme == "https" else 80
        host = name if to.port == default else f"{name}:{to.port}"
        for number, address in enumerate(to.addresses, start=1):
            pool = self._pool.connection_from_host(
                address, to.port, to.scheme, pool_kwargs=tls if to.scheme == "https" else None
            )
            try:
                return pool.urlopen(
                    method,
                    to.path,
                    body=body,
                    headers={**headers, "Host": host},
                    redirect=False,
                    preload_content=False,
                    assert_same_host=False,
                )
            except ConnectTimeoutError:  # urllib3's NewConnectionError is one too
                if number == len(to.addresses):
                    raise
        raise NotSent("no address to send to")


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header, encoded as requests and urllib3 encode it (Latin-1)."""
    return dict(urllib3.util.make_headers(basic_auth=f"{user}:{password}"))
