"""The `next` of a page of calls, sealed: it reveals nothing, and opens only for the listing and
the caller it was given to.

A page ends where DynamoDB stopped, and that can be an item the caller may not see (another
integration's call with the same reference, left out by the filter): its id and time must not
leave in the cursor. So the store's position is encrypted and authenticated, HMAC-SHA256 in
counter mode for the keystream and an HMAC tag over the nonce and the ciphertext (encrypt, then
MAC), both keyed from `callback_secret` with their own labels. Our own fifteen lines rather than
`cryptography`: a compiled package of several MB, over the zip's budget, for two HMAC uses the
standard library has.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from chalicelib.errors import InvalidCursor

NONCE_BYTES, TAG_BYTES = 16, 16
BLOCK = hashlib.sha256().digest_size


def _key(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), b"fuse-bridge cursor " + purpose, hashlib.sha256).digest()


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (length + BLOCK - 1) // BLOCK
    return b"".join(
        hmac.new(key, nonce + n.to_bytes(4, "big"), hashlib.sha256).digest() for n in range(blocks)
    )[:length]


def _tag(secret: str, bound_to: str, sealed: bytes) -> bytes:
    message = bound_to.encode("utf-8", "surrogatepass") + b"\n" + sealed
    return hmac.new(_key(secret, b"tag"), message, hashlib.sha256).digest()[:TAG_BYTES]


def seal(page: str, bound_to: str, secret: str) -> str:
    """`page` (the store's position) for the listing and caller `bound_to` names."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    plain = page.encode()
    stream = _keystream(_key(secret, b"stream"), nonce, len(plain))
    sealed = nonce + bytes(a ^ b for a, b in zip(plain, stream, strict=True))
    return base64.urlsafe_b64encode(sealed + _tag(secret, bound_to, sealed)).decode().rstrip("=")


def unseal(cursor: str, bound_to: str, secret: str) -> str:
    """The position a cursor sealed, if this bridge gave it for `bound_to`; else InvalidCursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None
    sealed, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if len(sealed) <= NONCE_BYTES or not hmac.compare_digest(_tag(secret, bound_to, sealed), tag):
        raise InvalidCursor()
    nonce, cipher = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    stream = _keystream(_key(secret, b"stream"), nonce, len(cipher))
    try:
        return bytes(a ^ b for a, b in zip(cipher, stream, strict=True)).decode()
    except UnicodeDecodeError:  # only a bug could seal this: the tag held
        raise InvalidCursor() from None
