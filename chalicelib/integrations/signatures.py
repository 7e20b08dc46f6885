"""How a native webhook proves who sent it, by its integration's `auth`: a bearer token, a
token in the `api_key` query parameter (a Salesforce outbound message's too, whose org id is
checked once its envelope is read), HubSpot's v3 signature, or a Standard Webhooks signature
(http/standard_webhooks.py, the signer deliveries use too). Pure: the request's parts in, True
or False out.

Signatures are HMAC-SHA256 compared in constant time against every configured secret (several
during a rotation), and carry a timestamp that must be within five minutes of now, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.config.integrations import (
    BEARER,
    HUBSPOT_V3,
    QUERY,
    SALESFORCE,
    STANDARD_WEBHOOKS,
    Integration,
)
from chalicelib.http.standard_webhooks import any_equal, hmac_b64, is_recent
from chalicelib.integrations.callers import bearer_token, token_matches

# A signed field is read exactly as its sender writes it: HubSpot's timestamp is a plain integer
# of milliseconds, with no leading zero. Its signed string joins body and timestamp with nothing
# between, so a leading zero would let a body's trailing zeros move into the timestamp.
MILLISECONDS = re.compile(r"[1-9][0-9]{0,15}")
XML_MEDIA_TYPES = ("text/xml", "application/xml")


@dataclass(frozen=True)
class WebhookRequest:
    """What authentication and reading need of a request to POST /hooks/{integration}."""

    url: str  # as the sender called it: the public base URL, the path and the query
    headers: Mapping[str, str]  # names in lower case
    query: Mapping[str, Sequence[str]]
    body: bytes

    @property
    def is_xml(self) -> bool:
        """A SOAP body (Salesforce's outbound messages are `text/xml`), answered in SOAP."""
        media_type = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return media_type in XML_MEDIA_TYPES

    @classmethod
    def of(cls, path: str, request: Any, base_url: str | None) -> WebhookRequest:
        """From Chalice's request: its headers, every value of each query parameter, its body,
        and the URL the sender signed (HubSpot signs the URL it called)."""
        params = request.query_params
        query = {name: params.getlist(name) for name in params} if params else {}
        shown = "&".join(f"{name}={value}" for name, values in query.items() for value in values)
        return cls(
            url=f"{base_url or ''}{path}" + (f"?{shown}" if shown else ""),
            headers={name.lower(): value for name, value in request.headers.items()},
            query=query,
            body=request.raw_body or b"",
        )


def authentic(integration: Integration, request: WebhookRequest, now: float) -> bool:
    if integration.auth == BEARER:
        return token_matches(bearer_token(request.headers.get("authorization")), integration.tokens)
    if integration.auth in (QUERY, SALESFORCE):  # Salesforce's org id is checked once read
        given = request.query.get("api_key", [])
        return len(given) == 1 and token_matches(given[0], integration.tokens)
    if integration.auth == HUBSPOT_V3:
        return hubspot_v3(integration.signing_secrets, request, now)
    if integration.auth == STANDARD_WEBHOOKS and integration.signer is not None:
        return integration.signer.verify(request.headers, request.body, now)
    return False


def hubspot_v3_signature(secret: str, url: str, body: bytes, timestamp: str) -> bytes:
    """`X-HubSpot-Signature-v3`: base64 HMAC-SHA256, keyed by the app's client secret, of
    method + URL + body + `X-HubSpot-Request-Timestamp` (milliseconds)."""
    return hmac_b64(secret.encode(), b"POST" + url.encode() + body + timestamp.encode())


def hubspot_v3(secrets: Sequence[str], request: WebhookRequest, now: float) -> bool:
    timestamp = request.headers.get("x-hubspot-request-timestamp", "")
    if not MILLISECONDS.fullmatch(timestamp) or not is_recent(int(timestamp) / 1000, now):
        return False
    given = request.headers.get("x-hubspot-signature-v3", "").strip().encode()
    expected = [hubspot_v3_signature(s, request.url, request.body, timestamp) for s in secrets]
    return any_equal([given], expected)
