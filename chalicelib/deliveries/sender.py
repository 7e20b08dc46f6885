"""The only HTTP to integrations' receivers: one signed POST, a total deadline, no redirect.

The receiver's URL is the integration's own; nothing of the bridge's (no token, no secret) is
added to it, a redirect is not followed (it could lead anywhere, with the signed body), and it
is sent only to a public address, checked where it is resolved (http/addresses.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from chalicelib.http.addresses import AddressRefused, NameNotResolved, Resolver, check_receiver
from chalicelib.http.client import HttpClient, NoAnswer, NotSent
from chalicelib.http.deadlines import DeadlinePassed

RETRY_AFTER = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class ReceiverResponse:
    """What the receiver made of one delivery attempt, in words safe to show the integration:
    it decides between done, retry (and when) and give up."""

    status: int | None  # None: no answer (timeout, connection error)
    error: str | None = None  # what went wrong, for the call's delivery view (no URL, no secret)
    retry_after: int | None = None  # seconds, from a 429's or 503's Retry-After
    refused: bool = False  # never sent, and never to be: the receiver's address is not allowed


class DeliverySender:
    def __init__(
        self,
        timeout_seconds: float,
        *,
        private_allowed: bool = False,
        resolve: Resolver | None = None,
    ) -> None:
        """`private_allowed`: the local stage's loopback receiver; `resolve`: the name lookup
        (a test's own)."""
        self._timeout = timeout_seconds
        receivers = functools.partial(
            check_receiver, private_allowed=private_allowed, resolve=resolve
        )
        self._http = HttpClient(timeout_seconds, receivers=receivers)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> ReceiverResponse:
        try:
            response = self._http.request("POST", url, headers, body=body)
        except AddressRefused as err:
            return ReceiverResponse(None, str(err), refused=True)
        except NameNotResolved as err:  # DNS may answer later: retried
            return ReceiverResponse(None, str(err))
        except DeadlinePassed:
            return ReceiverResponse(None, f"no answer within {self._timeout:g} s")
        except NotSent as err:
            return ReceiverResponse(None, f"could not connect ({err})")
        except NoAnswer as err:
            return ReceiverResponse(None, f"no answer ({err})")
        retry_after = response.header("retry-after").strip()
        return ReceiverResponse(
            response.status,
            None if 200 <= response.status < 300 else f"the receiver answered {response.status}",
            int(retry_after) if RETRY_AFTER.fullmatch(retry_after) else None,
        )
