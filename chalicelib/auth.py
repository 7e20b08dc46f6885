"""Bearer-token check for the caller-facing routes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from chalicelib.errors import Forbidden, Unauthorized


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of token length.
    return hashlib.sha256(token.encode()).digest()


def _matches(authorization: str | None, tokens: Iterable[str]) -> bool:
    scheme, _, token = (authorization or "").strip().partition(" ")
    given = _digest(token.strip())
    matched = False
    for candidate in tokens:  # every token is compared, match or not
        matched |= hmac.compare_digest(given, _digest(candidate))
    return scheme.lower() == "bearer" and bool(token.strip()) and matched


def require_api_token(authorization: str | None, api_tokens: Iterable[str]) -> None:
    """Raises Unauthorized unless the header is `Bearer <one of the configured tokens>`."""
    if not _matches(authorization, api_tokens):
        raise Unauthorized(
            "missing or invalid API token: send the header 'Authorization: Bearer <token>'"
        )


def require_admin_token(
    authorization: str | None, admin_tokens: Iterable[str], api_tokens: Iterable[str]
) -> None:
    """Admin actions: 403 for an ordinary API token, 401 for anything else."""
    if _matches(authorization, admin_tokens):
        return
    if _matches(authorization, api_tokens):
        raise Forbidden("this action needs an admin token (the SSM parameter admin_tokens)")
    raise Unauthorized("missing or invalid admin token: send 'Authorization: Bearer <token>'")
