"""The only HTTP to integrations' receivers: one signed POST, a total deadline, no redirect.

The receiver's URL is the integration's own; nothing of the bridge's (no token, no secret) is
added to it, and a redirect is not followed (it could lead anywhere, with the signed body).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests

from chalicelib.deadlines import DeadlinePassed, within

CONNECT_TIMEOUT = 3.05
RETRY_AFTER = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class SendResult:
    status: int | None  # None: no answer (timeout, connection error)
    error: str | None = None  # what went wrong, for the call's delivery view (no URL, no secret)
    retry_after: int | None = None  # seconds, from a 429's or 503's Retry-After


class WebhookSender:
    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._session = requests.Session()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        def send() -> requests.Response:
            return self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, self._timeout),
                allow_redirects=False,
            )

        try:
            response = within(self._timeout, send)
        except DeadlinePassed:
            return SendResult(None, f"no answer within {self._timeout:g} s")
        except requests.RequestException as err:
            return SendResult(None, f"could not connect ({type(err).__name__})")
        retry_after = response.headers.get("Retry-After", "").strip()
        return SendResult(
            response.status_code,
            None
            if 200 <= response.status_code < 300
            else f"the receiver answered {response.status_code}",
            int(retry_after) if RETRY_AFTER.fullmatch(retry_after) else None,
        )
