"""Standard Webhooks signatures, both ways: the bridge verifies them on native webhooks and signs
its deliveries with them. One class signs and verifies, as the specification's reference library
keeps both on `Webhook`, so the two directions cannot drift apart.

`webhook-signature` is space-separated `v1,<base64 HMAC-SHA256>` entries of
`{webhook-id}.{webhook-timestamp}.{body}`, keyed by the base64-decoded `whsec_` secret; one entry
per secret during a rotation. Our own lines rather than `standardwebhooks` at run time: they are
a few HMAC calls, and the tests check them against that library and the specification's vector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

WHSEC = "whsec_"
TOLERANCE_SECONDS = 300  # a signed timestamp further from now than this is refused
MAX_SIGNATURES = 10  # entries of a webhook-signature header looked at
# Read exactly as the specification writes them: the timestamp a plain integer of seconds (no
# leading zero, no sign), the id printable ASCII, so that no two (id, timestamp, body) sign the
# same string. An id may hold the separator `.` (some senders' do): `a.b` with timestamp `t`
# could then be read as id `a`, timestamp `b` only for a body that itself starts `t.`, which is
# refused with such an id.
SECONDS = re.compile(r"[1-9][0-9]{0,15}")
MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,255}")
READS_TWO_WAYS = re.compile(rb"[1-9][0-9]{0,15}\.")


def secret_key(secret: str) -> bytes | None:
    """A `whsec_` secret's key bytes; None when it is not base64, or empty."""
    try:
        return base64.b64decode(secret.removeprefix(WHSEC), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def is_recent(moment: float, now: float) -> bool:
    """Within the tolerance of now, either way: a captured request cannot be replayed later."""
    return abs(now - moment) <= TOLERANCE_SECONDS


def any_equal(given: Sequence[bytes], expected: Sequence[bytes]) -> bool:
    """Every pair is compared in constant time, match or not."""
    matched = False
    for left in given:
        for right in expected:
            matched |= hmac.compare_digest(left, right)
    return matched


def hmac_b64(key: bytes, message: bytes) -> bytes:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest())


class StandardWebhooks:
    """A signer: the keys of one sender (or receiver), never printed. A plain class, not a
    dataclass: it is built when the parameters are read, on every cold start, and a dataclass
    costs its generated methods' compilation there."""

    __slots__ = ("keys",)

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        self.keys = keys

    @classmethod
    def of(cls, secrets: Sequence[str]) -> StandardWebhooks | None:
        """From `whsec_` secrets; None unless there is at least one and every one is base64."""
        keys = tuple(secret_key(s) for s in secrets)
        if not keys or not all(keys):
            return None
        return cls(tuple(k for k in keys if k))

    def signature(self, message_id: str, timestamp: str, body: bytes) -> str:
        signed = f"{message_id}.{timestamp}.".encode() + body
        return " ".join("v1," + hmac_b64(key, signed).decode() for key in self.keys)

    def headers(self, message_id: str, body: bytes, now: float) -> dict[str, str]:
        """What a signed POST of `body` carries."""
        timestamp = str(int(now))
        return {
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": self.signature(message_id, timestamp, body),
        }

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        """`headers` with names in lower case: a recent timestamp and one matching entry."""
        message_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        if not MESSAGE_ID.fullmatch(message_id) or not SECONDS.fullmatch(timestamp):
            return False
        if "." in message_id and READS_TWO_WAYS.match(body):
            return False
        if not is_recent(int(timestamp), now):
            return False
        signed = f"{message_id}.{timestamp}.".encode() + body
        entries = headers.get("webhook-signature", "").split()[:MAX_SIGNATURES]
        given = [e.partition(",")[2].encode() for e in entries if e.startswith("v1,")]
        return any_equal(given, [hmac_b64(key, signed) for key in self.keys])

    def __repr__(self) -> str:
        return "StandardWebhooks(<redacted>)"
