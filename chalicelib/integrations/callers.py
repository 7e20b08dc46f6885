"""Who is calling: a bearer token names an integration (or an admin) on the caller routes.

Every configured token is compared, in constant time, whatever matches: the time taken says
nothing about which token, or which integration, came close. The native webhook route's other
schemes (a query token, HubSpot's and Standard Webhooks' signatures) are in signatures.py.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from chalicelib.config.integrations import ADMIN, BEARER, HOOKS_ONLY, QUERY, Caller
from chalicelib.config.parameters import Parameters
from chalicelib.errors import Forbidden, Unauthorized

TOKEN_SCHEMES = (BEARER, QUERY)  # integrations with a token of their own


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of token length.
    return hashlib.sha256(token.encode()).digest()


def token_matches(given: str, tokens: Iterable[str]) -> bool:
    """Every token is compared, match or not; an empty token matches nothing."""
    digest = _digest(given)
    matched = False
    for candidate in tokens:
        matched |= hmac.compare_digest(digest, _digest(candidate))
    return matched and bool(given)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def identify_caller(
    authorization: str | None, parameters: Parameters, *, reading: bool = False
) -> Caller:
    """The integration whose token this is, or an admin; Unauthorized for anything else. A
    signed (or Salesforce) integration's `token` is a read token: it opens the reading routes
    (`reading`) alone, since it places its calls by its webhooks (a Salesforce one's token is
    in its endpoint URL, and places only with its org's outbound messages)."""
    token = bearer_token(authorization)
    found: Caller | None = ADMIN if token_matches(token, parameters.admin_tokens) else None
    for integration in parameters.integrations.values():
        schemes = TOKEN_SCHEMES if not reading else (*TOKEN_SCHEMES, *HOOKS_ONLY)
        usable = integration.problem is None and integration.auth in schemes
        if token_matches(token, integration.tokens) and usable and found is None:
            found = Caller.of(integration)
    if found is None:
        raise Unauthorized(
            "missing or invalid API token: send the header 'Authorization: Bearer <token>'"
        )
    return found


def require_admin_token(authorization: str | None, parameters: Parameters) -> None:
    """Admin actions: 403 for a caller's token, 401 for anything else."""
    if identify_caller(authorization, parameters).admin:
        return
    raise Forbidden("this action needs an admin token (the SSM parameter admin_tokens)")
