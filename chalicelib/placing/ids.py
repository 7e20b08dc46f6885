"""The ids of what the bridge places: random for a request without a key, else derived from
what names it (a keyed HMAC), so the same key always names the same record, and its creation
is the key's lock (placing/idempotency.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from chalicelib.errors import ConfigurationIncomplete
from chalicelib.records import DEFAULT_INTEGRATION, Kind

SEPARATOR = "\x1f"  # in no key (printable ASCII), list id (base32) or phone (E.164)


def _encode_id(raw: bytes) -> str:
    return base64.b32encode(raw[:15]).decode().lower()


def new_id() -> str:
    """Opaque and URL-safe: 24 characters of base32, 120 random bits."""
    return _encode_id(secrets.token_bytes(15))


def derive_id(secret: str, namespace: str, *parts: str) -> str:
    """An id from what names it: a keyed HMAC (the `id_secret` parameter), so an id cannot be
    guessed from a guessable key, in a namespace of its own, so no key of one kind can name a
    record of another (a call's key of the right shape cannot name a list contact's call)."""
    if not secret:
        raise ConfigurationIncomplete("SSM parameter id_secret is missing or empty")
    message = SEPARATOR.join((namespace, *parts)).encode()
    return _encode_id(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def id_for_key(
    secret: str, key: str, kind: Kind = Kind.CALL, integration: str = DEFAULT_INTEGRATION
) -> str:
    """The same key always names the same record, so the record is the key's lock. Keys are
    each integration's own: the same key from two integrations names two records (`default`
    keeps the derivation it had before integrations, so its keys in flight stay the same)."""
    if integration == DEFAULT_INTEGRATION:
        return derive_id(secret, kind.value, key)
    return derive_id(secret, kind.value, f"integration:{integration}", key)


def contact_call_id(secret: str, list_id: str, phone: str) -> str:
    """A list contact's call: named by the list and the phone (a result for a list names the
    phone, not the row)."""
    return derive_id(secret, "contact", list_id, phone)


def own_id(secret: str, source_id: str) -> str:
    """Where a rejected event is kept when its key already names another request."""
    return derive_id(secret, "rejected-event", source_id)
