"""Bearer-token check for the caller-facing routes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from chalicelib.errors import Unauthorized


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of token length.
    return hashlib.sha256(token.encode()).digest()


def require_api_token(authorization: str | None, api_tokens: Iterable[str]) -> None:
    """Raises Unauthorized unless the header is `Bearer <one of the configured tokens>`."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    given = _digest(token.strip())
    matched = False
    for candidate in api_tokens:  # every token is compared, match or not
        matched |= hmac.compare_digest(given, _digest(candidate))
    if scheme.lower() != "bearer" or not token.strip() or not matched:
        raise Unauthorized(
            "missing or invalid API token: send the header 'Authorization: Bearer <token>'"
        )
