"""How a native webhook proves who sent it, by its integration's `auth`: a bearer token, a
token in the `api_key` query parameter, HubSpot's v3 signature, or a Standard Webhooks
signature. Pure: the request's parts in, True or False out.

Signatures are HMAC-SHA256 compared in constant time against every configured secret (several
during a rotation), and carry a timestamp that must be within five minutes of now, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chalicelib.config.integrations import BEARER, HUBSPOT_V3, QUERY, STANDARD_WEBHOOKS, Integration
from chalicelib.integrations.callers import bearer_token, token_matches

TOLERANCE_SECONDS = 300
TIMESTAMP = re.compile(r"[0-9]{1,16}")
MAX_SIGNATURES = 10  # entries of a webhook-signature header looked at
WHSEC = "whsec_"


@dataclass(frozen=True)
class HookRequest:
    """What authentication needs of a request to POST /hooks/{integration}."""

    url: str  # as the sender called it: the public base URL, the path and the query
    headers: Mapping[str, str]  # names in lower case
    query: Mapping[str, Sequence[str]]
    body: bytes


def authentic(integration: Integration, request: HookRequest, now: float) -> bool:
    if integration.auth == BEARER:
        return token_matches(bearer_token(request.headers.get("authorization")), integration.tokens)
    if integration.auth == QUERY:
        given = request.query.get("api_key", [])
        return len(given) == 1 and token_matches(given[0], integration.tokens)
    if integration.auth == HUBSPOT_V3:
        return hubspot_v3(integration.signing_secrets, request, now)
    if integration.auth == STANDARD_WEBHOOKS:
        return standard_webhooks(integration.signing_secrets, request, now)
    return False


def recent(timestamp: str, now: float, unit: int = 1) -> bool:
    return bool(TIMESTAMP.fullmatch(timestamp)) and (
        abs(now - int(timestamp) / unit) <= TOLERANCE_SECONDS
    )


def any_equal(given: Sequence[bytes], expected: Sequence[bytes]) -> bool:
    """Every pair is compared, match or not."""
    matched = False
    for left in given:
        for right in expected:
            matched |= hmac.compare_digest(left, right)
    return matched


def hmac_b64(key: bytes, message: bytes) -> bytes:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest())


def hubspot_v3(secrets: Sequence[str], request: HookRequest, now: float) -> bool:
    """`X-HubSpot-Signature-v3`: base64 HMAC-SHA256, keyed by the app's client secret, of
    method + URL + body + `X-HubSpot-Request-Timestamp` (milliseconds)."""
    timestamp = request.headers.get("x-hubspot-request-timestamp", "")
    if not recent(timestamp, now, unit=1000):
        return False
    signed = b"POST" + request.url.encode() + request.body + timestamp.encode()
    given = request.headers.get("x-hubspot-signature-v3", "").strip().encode()
    return any_equal([given], [hmac_b64(s.encode(), signed) for s in secrets])


def standard_webhooks_key(secret: str) -> bytes | None:
    """A `whsec_`-prefixed base64 secret's key bytes; None when it is not base64."""
    try:
        return base64.b64decode(secret.removeprefix(WHSEC), validate=True)
    except (binascii.Error, ValueError):
        return None


def standard_webhooks(secrets: Sequence[str], request: HookRequest, now: float) -> bool:
    """`webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` of
    `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the base64-decoded secret."""
    message_id = request.headers.get("webhook-id", "")
    timestamp = request.headers.get("webhook-timestamp", "")
    if not message_id or not recent(timestamp, now):
        return False
    signed = f"{message_id}.{timestamp}.".encode() + request.body
    keys = [k for k in map(standard_webhooks_key, secrets) if k]
    entries = request.headers.get("webhook-signature", "").split()[:MAX_SIGNATURES]
    given = [e.partition(",")[2].encode() for e in entries if e.startswith("v1,")]
    return any_equal(given, [hmac_b64(k, signed) for k in keys])
